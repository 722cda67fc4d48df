"""One meter's page, its daily history and Excel export, and the batch routes' refusals (Chalice's test client,
DynamoDB Local; no bridge: commands have nowhere to go and say so)."""

from __future__ import annotations

import io
import json
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from chalice.test import Client

from chalicelib.bootstrap import get_services
from chalicelib.domain.history import chart, daily_lines
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.services.audit import operation
from tests.conftest import OperatorFixture
from tests.integration.portal_client import PortalClient, hidden_tokens
from tests.integration.test_json_api import auth, token_for


def _site_with_history(operator: OperatorFixture) -> str:
    services, op, site_id = get_services(), operator.operator_id, f"site_{secrets.token_hex(3)}"
    services.tenancy.add_site(Site(op, site_id, "History park"), operation(op, "t", "site.create", site_id,
                                                                           datetime.now(UTC)))
    services.tenancy.add_meters([Meter(op, site_id, "m_h", "SN-H", "DTSY1352", "c1", 1, "u1",
                                       BillingMode.PREPAID_METER)])
    now = datetime.now(UTC)
    readings = [("m_h", int((now - timedelta(hours=h)).timestamp() * 1000),
                 {"energy_total": f"{1000 - h}.50", "remaining_amount": f"{50 + h}.25", "purchase_count": 4})
                for h in range(0, 72, 6)]
    services.readings.put_readings(op, readings)
    services.readings.put_states(op, site_id, [StoredState("m_h", now, readings[0][2], (), now, 0)])
    return site_id


def test_the_meter_page_shows_its_days_and_exports_its_readings(client: Client,
                                                                 new_operator: OperatorFixture) -> None:
    from openpyxl import load_workbook

    site_id = _site_with_history(new_operator)
    portal = PortalClient(client)
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    html = portal.get(f"/sites/{site_id}/meters/m_h?days=5").body.decode()
    assert "SN-H" in html and "50.25" in html and html.count("<rect ") == 5
    response = portal.get(f"/sites/{site_id}/meters/m_h/readings.xlsx?days=2",
                          headers={"Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.body), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("time", "energy_total")
    assert len(rows) == 1 + 8  # readings every 6 h over the last 48 h
    assert rows[-1][1] == pytest.approx(1000.5) and rows[-1][9] == pytest.approx(50.25) and rows[-1][10] == 4
    assert portal.get(f"/sites/{site_id}/meters/m_h?days=abc").status_code == 400
    assert portal.get(f"/sites/{site_id}/meters/nope").status_code == 404


def test_batches_refuse_bad_input_and_strangers_and_say_when_nothing_could_be_sent(
        client: Client, new_operator: OperatorFixture, other_operator: OperatorFixture) -> None:
    site_id = _site_with_history(new_operator)
    headers = auth(token_for(client, new_operator.operator_id, "boss", new_operator.admin_password))
    for body, message in [({"meters": ["m_h"], "operation": "explode"}, "operation is one of"),
                          ({"meters": [], "operation": "trip"}, "choose 1 to"),
                          ({"meters": "m_h", "operation": "trip"}, "list of strings"),
                          ({"meters": ["ghost"], "operation": "trip"}, "no such meter")]:
        response = client.http.post(f"/api/v1/sites/{site_id}/batches", headers=headers,
                                    body=json.dumps(body).encode())
        assert response.status_code in (400, 404) and message in json.loads(response.body)["error"]
    nowhere = client.http.post(f"/api/v1/sites/{site_id}/batches", headers=headers,
                               body=json.dumps({"meters": ["m_h"], "operation": "trip"}).encode())
    assert nowhere.status_code == 201 and json.loads(nowhere.body)["skipped"] == {
        "m_h": "no bridge serves its collector"}
    stranger = auth(token_for(client, other_operator.operator_id, "boss", other_operator.admin_password))
    foreign = client.http.post(f"/api/v1/sites/{site_id}/batches", headers=stranger,
                               body=json.dumps({"meters": ["m_h"], "operation": "trip"}).encode())
    assert foreign.status_code == 404
    portal = PortalClient(client)
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    page = portal.get(f"/sites/{site_id}/control")
    refused = portal.post_form(f"/sites/{site_id}/control", {"meters": ["m_h"], "operation": "trip",
                                                             "confirmed": "yes", **hidden_tokens(page)})
    assert refused.status_code == 409 and "nothing was sent" in refused.body.decode()


def test_daily_lines_and_chart_from_boundary_readings() -> None:
    from datetime import date

    days = [date(2026, 11, 1), date(2026, 11, 2)]
    lines = daily_lines(days, [{"energy_total": "10.00", "remaining_amount": "30.00", "purchase_count": 1},
                               {"energy_total": "12.50", "remaining_amount": "28.40", "purchase_count": 1},
                               {"energy_total": "15.00", "remaining_amount": "76.00", "purchase_count": 2}])
    assert [(line.energy_kwh, line.balance_minor, line.purchases) for line in lines] == [
        (Decimal("2.50"), 2_840, 0), (Decimal("2.50"), 7_600, 1)]
    assert daily_lines(days, [None, None, {"energy_total": "1.00"}])[0].energy_kwh is None
    drawn = chart(lines, width=200, height=100)
    assert [bar.height for bar in drawn.bars] == [100.0, 100.0] and drawn.balance_range == (2_840, 7_600)
    assert drawn.balance_points == "50.0,100.0 150.0,0.0"
