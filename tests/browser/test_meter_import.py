"""In a real browser: import meters with a bad row (report shown, nothing imported), then a good file."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.bootstrap import get_services
from tests.browser.test_operator_admin import log_in
from tests.conftest import OperatorFixture
from tests.integration.meter_import_support import bad_rows, csv_bytes, good_rows, make_site, xlsx_bytes

pytestmark = pytest.mark.browser


def choose(page: Any, name: str, mime: str, data: bytes) -> None:
    page.set_input_files("#upload input[type=file]", files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_bad_row_then_good_file(page: Any, portal_url: str, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    log_in(page, portal_url, new_operator)
    page.goto(f"{portal_url}/sites/{site_id}")
    page.click("text=Import meters from CSV or Excel")
    page.wait_for_url(f"{portal_url}/sites/{site_id}/meters/import")

    choose(page, "meters.csv", "text/csv", csv_bytes(bad_rows()))
    page.click("#upload button[value=import]")
    problem = page.locator("#problems tbody tr")
    assert problem.count() == 1
    assert problem.locator("td").nth(0).inner_text() == "5"
    assert problem.locator("td").nth(1).inner_text() == "Modbus address"
    assert "already used by meter m_exist" in problem.locator("td").nth(2).inner_text()
    assert "nothing was imported" in page.locator("#report [role=alert]").inner_text()
    assert {m.meter_id for m in get_services().tenancy.list_meters(new_operator.operator_id, site_id)} == {"m_exist"}

    xlsx_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    choose(page, "meters.xlsx", xlsx_type, xlsx_bytes(good_rows()))
    page.click("#upload button[value=check]")
    assert "3 meters ready to import" in page.locator("#report [role=status]").inner_text()
    page.click("#report button[value=import]")
    page.wait_for_url(f"{portal_url}/sites/{site_id}?imported=3")
    for meter_id in ("m_a102", "m_a201", "m_a103"):
        assert page.locator(f"#meters tr[data-meter={meter_id}]").count() == 1
    assert "A103" in page.locator("#meters tr[data-meter=m_a103]").inner_text()
