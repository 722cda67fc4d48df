"""The meter import page and JSON route through Chalice's test client: uploads, CSRF, reports, tenancy, 4xx."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from chalice.test import Client, HTTPResponse

from chalicelib.api.settings_pages import XLSX_CONTENT_TYPE
from chalicelib.bootstrap import get_services
from tests.conftest import OperatorFixture
from tests.integration.meter_import_support import (
    bad_rows,
    csv_bytes,
    good_rows,
    make_site,
    multipart,
    xlsx_bytes,
)
from tests.integration.portal_client import PortalClient, hidden_tokens

pytestmark = pytest.mark.ddb


def meter_ids(operator_id: str, site_id: str) -> set[str]:
    return {m.meter_id for m in get_services().tenancy.list_meters(operator_id, site_id)}


def upload(portal: PortalClient, site_id: str, action: str, file: tuple[str, str, bytes] | None,
           extra: dict[str, str] | None = None, *, csrf: bool = True) -> HTTPResponse:
    fields = {"action": action, **(extra or {})}
    if csrf:
        fields["csrf_token"] = hidden_tokens(portal.get(f"/sites/{site_id}/meters/import"))["csrf_token"]
    body, content_type = multipart(fields, file)
    return portal._http.post(f"/sites/{site_id}/meters/import",
                             headers=portal._headers({"content-type": content_type}), body=body)


def logged_in(portal: PortalClient, operator: OperatorFixture) -> PortalClient:
    portal.log_in(operator.operator_id, operator.admin_username, operator.admin_password)
    return portal


def test_the_site_page_links_the_import_page_and_its_template(portal: PortalClient,
                                                              new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    assert f"/sites/{site_id}/meters/import" in portal.get(f"/sites/{site_id}").body.decode()
    page = portal.get(f"/sites/{site_id}/meters/import")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.body.decode()
    template = portal.get(f"/sites/{site_id}/meters/import/template.csv")
    assert template.status_code == 200 and template.headers["Content-Type"].startswith("text/csv")
    assert template.body.decode("utf-8").startswith("\ufeffMeter ID,Serial,Model,Collector,Modbus address")
    chinese = portal.get(f"/sites/{site_id}/meters/import/template.csv", headers={"accept-language": "zh-CN"})
    assert "电表编号,表号,型号,采集器,通讯地址" in chinese.body.decode("utf-8")


def test_a_bad_file_shows_the_report_and_imports_nothing(portal: PortalClient, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    for action in ("check", "import"):
        response = upload(portal, site_id, action, ("bad.csv", "text/csv", csv_bytes(bad_rows())))
        assert response.status_code == 400
        html = response.body.decode()
        assert 'id="problems"' in html and "nothing was imported" in html
        row = re.search(r'<tr data-code="address_taken"><td class="num">5</td><td>Modbus address</td><td>(.*?)</td>',
                        html)
        assert row is not None and "m_exist" in unescape(row[1])
    assert meter_ids(new_operator.operator_id, site_id) == {"m_exist"}


def test_the_report_speaks_chinese(portal: PortalClient, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    portal.cookies["vv_lang"] = "zh_Hans"
    html = upload(portal, site_id, "check", ("bad.csv", "text/csv", csv_bytes(bad_rows()))).body.decode()
    assert "已被电表 m_exist 使用" in html and "未导入任何电表" in html


def test_an_upload_without_the_csrf_token_is_refused(portal: PortalClient, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    response = upload(portal, site_id, "import", ("good.csv", "text/csv", csv_bytes(good_rows())), csrf=False)
    assert response.status_code == 403
    assert meter_ids(new_operator.operator_id, site_id) == {"m_exist"}


def test_a_good_file_imports_and_lands_on_the_site_page(portal: PortalClient, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    response = upload(portal, site_id, "import", ("good.xlsx", XLSX_CONTENT_TYPE, xlsx_bytes(good_rows())))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/sites/{site_id}?imported=3"
    site_page = portal.get(f"/sites/{site_id}?imported=3").body.decode()
    assert all(f'data-meter="{m}"' in site_page for m in ("m_a102", "m_a201", "m_a103"))
    assert "meter.import" in portal.get("/oplog").body.decode()


def test_a_checked_file_imports_without_choosing_it_again(portal: PortalClient,
                                                          new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    checked = upload(portal, site_id, "check", ("good.csv", "text/csv", csv_bytes(good_rows())))
    html = checked.body.decode()
    assert checked.status_code == 200 and "3 meters ready to import" in html
    staged = re.search(r'name="staged" value="([^"]*)"', html)
    assert staged is not None and meter_ids(new_operator.operator_id, site_id) == {"m_exist"}
    response = upload(portal, site_id, "import", None, {"staged": unescape(staged[1]), "staged_name": "good.csv"})
    assert response.status_code == 303
    assert meter_ids(new_operator.operator_id, site_id) == {"m_exist", "m_a102", "m_a201", "m_a103"}


@pytest.mark.parametrize(("file", "status", "text"), [
    (None, 400, "Choose a CSV or .xlsx file first"),
    (("huge.csv", "text/csv", b"a," * (1024 * 1024 + 10)), 413, "larger than 2 MB"),
    (("enormous.csv", "text/csv", b"a," * (3 * 1024 * 1024)), 413, "larger than 2 MB"),  # beyond any form
    (("old.xls", "application/vnd.ms-excel", b"\xd0\xcf\x11\xe0" + b"\x00" * 600), 400, "Old .xls"),
    (("fake.xlsx", XLSX_CONTENT_TYPE, b"PK\x03\x04garbage"), 400, "cannot be read"),
    (("photo.png", "image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 400, "neither a CSV"),
    (("header.csv", "text/csv", b"Meter ID,Serial\r\n"), 400, "no meter rows"),
])
def test_files_that_cannot_be_checked_get_a_clear_4xx(portal: PortalClient, new_operator: OperatorFixture,
                                                      file: tuple[str, str, bytes] | None, status: int,
                                                      text: str) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    response = upload(portal, site_id, "check", file)
    assert response.status_code == status
    assert text in response.body.decode()


def test_another_operators_site_is_not_found(portal: PortalClient, new_operator: OperatorFixture,
                                            other_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, other_operator)
    assert portal.get(f"/sites/{site_id}/meters/import").status_code == 404
    assert portal.get(f"/sites/{site_id}/meters/import/template.csv").status_code == 404
    response = upload(portal, site_id, "import", ("good.csv", "text/csv", csv_bytes(good_rows())))
    assert response.status_code == 404
    assert meter_ids(new_operator.operator_id, site_id) == {"m_exist"}


# -- the JSON route ------------------------------------------------------------------------------------------

def bearer(client: Client, operator: OperatorFixture) -> str:
    body = json.dumps({"company": operator.operator_id, "username": operator.admin_username,
                       "password": operator.admin_password}).encode()
    response = client.http.post("/api/v1/session", headers={"content-type": "application/json"}, body=body)
    return str(response.json_body["token"])


def post_file(client: Client, token: str, site_id: str, body: bytes, content_type: str,
              query: str = "") -> HTTPResponse:
    return client.http.post(f"/api/v1/sites/{site_id}/meters/import{query}", body=body,
                            headers={"authorization": f"Bearer {token}", "content-type": content_type})


def test_the_json_route_checks_rejects_and_imports(client: Client, new_operator: OperatorFixture) -> None:
    site_id, token = make_site(new_operator), bearer(client, new_operator)
    checked = post_file(client, token, site_id, csv_bytes(bad_rows()), "text/csv", "?check=1")
    report = checked.json_body
    assert checked.status_code == 200 and report["valid"] is False and report["rows"] == 4
    assert report["problems"][0] == {"row": 5, "column": "Modbus address", "code": "address_taken",
                                     "message": "address 1 on collector coll_1 is already used by meter m_exist"}
    refused = post_file(client, token, site_id, csv_bytes(bad_rows()), "text/csv; charset=utf-8")
    assert refused.status_code == 400 and refused.json_body["problems_total"] == 1
    assert meter_ids(new_operator.operator_id, site_id) == {"m_exist"}
    done = post_file(client, token, site_id, xlsx_bytes(good_rows()), XLSX_CONTENT_TYPE, "?filename=good.xlsx")
    assert done.status_code == 201
    assert done.json_body == {"site_id": site_id, "imported": 3, "units_created": 1}


def test_the_json_route_answers_4xx_for_bad_input(client: Client, new_operator: OperatorFixture,
                                                 other_operator: OperatorFixture) -> None:
    site_id, token = make_site(new_operator), bearer(client, new_operator)
    too_big = post_file(client, token, site_id, b"x" * (2 * 1024 * 1024 + 1), "text/csv")
    assert too_big.status_code == 413 and "2 MB" in too_big.json_body["error"]
    assert post_file(client, token, site_id, b"", "text/csv").status_code == 400
    assert post_file(client, token, site_id, b"PK\x03\x04xx", XLSX_CONTENT_TYPE).status_code == 400
    assert post_file(client, token, site_id, b"{}", "application/json").status_code == 415
    foreign = post_file(client, bearer(client, other_operator), site_id, csv_bytes(good_rows()), "text/csv")
    assert foreign.status_code == 404
    assert meter_ids(new_operator.operator_id, site_id) == {"m_exist"}
