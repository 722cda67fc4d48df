"""The live status board through Chalice's test client and DynamoDB Local: the page, its JSON, the Excel export,
tenancy and site scope, bad filters, and a cost in DynamoDB calls that does not grow with the number of meters."""

from __future__ import annotations

import html
import io
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from chalice.test import Client
from pynamodb.connection import Connection

from app import app
from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Role
from chalicelib.domain.alarms import Alarm, AlarmKind, AlarmState, Severity, Subject, SubjectKind
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Building, Meter, Site, Unit
from chalicelib.services.audit import operation
from chalicelib.services.sales import new_request_token
from chalicelib.services.staff_admin import StaffDraft
from tests.conftest import OperatorFixture
from tests.integration.portal_client import PortalClient
from tests.integration.test_json_api import token_for
from tests.support.cloud_stack import admin_actor

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
READ_AT = datetime(2026, 5, 1, 8, 30, 15, tzinfo=UTC)


@dataclass(frozen=True)
class Meters:
    """(unit id, values, missed cycles, opened); values None: never answered. A prepaid meter is read before it
    can join an account, so the meters opened unread are cloud-billed ones."""

    rows: dict[str, tuple[str, dict[str, Any] | None, int, bool]]
    cloud: frozenset[str] = frozenset()


# m1 opened and fine, m2 alarm 1, m3 alarm 2 on keep power, m4 arrears and tripped, m5 on no account,
# m6 silent for 4 cycles, m7 (cloud-billed) never read.
SAMPLE = Meters({
    "m1": ("u_a101", {"remaining_amount": "88.50", "status_bits": 0, "relay_state": 0, "control_mode": 0}, 0, True),
    "m2": ("u_a102", {"remaining_amount": "30.00", "status_bits": 1, "relay_state": 0, "control_mode": 0}, 0, True),
    "m3": ("u_a201", {"remaining_amount": "12.00", "status_bits": 3, "relay_state": 0, "control_mode": 1}, 0, True),
    "m4": ("u_b101", {"remaining_amount": "-2.00", "status_bits": 7, "relay_state": 1, "control_mode": 0}, 0, True),
    "m5": ("u_b102", {"remaining_amount": "101.00", "status_bits": 0, "relay_state": 0, "control_mode": 0}, 0, False),
    "m6": ("u_b102", {"remaining_amount": "70.00", "status_bits": 0, "relay_state": 0, "control_mode": 0}, 4, True),
    "m7": ("u_b102", None, 0, True),
}, frozenset({"m7"}))


def make_site(operator: OperatorFixture, meters: Meters = SAMPLE) -> str:
    """Block A (floors 1, 2) and Block B (floor 1), units A101 A102 A201 B101 B102, and ``meters``."""
    services, op = get_services(), operator.operator_id
    site_id, now = f"site_{secrets.token_hex(4)}", datetime.now(UTC)
    services.tenancy.add_site(Site(op, site_id, "Board park"), operation(op, "test", "site.create", site_id, now))
    for building in (Building(op, site_id, "b_a", "Block A", ("1", "2")),
                     Building(op, site_id, "b_b", "Block B", ("1",))):
        services.tenancy.add_building(building, operation(op, "test", "building.create", building.building_id, now))
    services.tenancy.add_units([Unit(op, site_id, "u_a101", "b_a", "1", "A101"),
                                Unit(op, site_id, "u_a102", "b_a", "1", "A102"),
                                Unit(op, site_id, "u_a201", "b_a", "2", "A201"),
                                Unit(op, site_id, "u_b101", "b_b", "1", "B101"),
                                Unit(op, site_id, "u_b102", "b_b", "1", "B102")])
    services.tenancy.add_meters([
        Meter(op, site_id, meter_id, f"SN-{meter_id.upper()}", "DTSY1352", "c1", n, unit_id,
              BillingMode.CLOUD_BILLED if meter_id in meters.cloud else BillingMode.PREPAID_METER)
        for n, (meter_id, (unit_id, _, _, _)) in enumerate(meters.rows.items(), start=1)])
    services.readings.put_states(op, site_id, [
        StoredState(meter_id, READ_AT, {**values, "purchase_count": 3}, (),
                    READ_AT - timedelta(minutes=missed * 30) if missed else READ_AT, missed)
        for meter_id, (_, values, missed, _) in meters.rows.items() if values is not None])
    opened = [meter_id for meter_id, (_, _, _, is_open) in meters.rows.items() if is_open]
    for start in range(0, len(opened), 10):  # opening balances: one transaction holds about 20 meters' entries
        services.sales.open_account(admin_actor(operator), site_id, "Tea house", opened[start:start + 10],
                                    request_id=new_request_token())
    return site_id


def logged_in(portal: PortalClient, operator: OperatorFixture) -> PortalClient:
    portal.log_in(operator.operator_id, operator.admin_username, operator.admin_password)
    return portal


def test_the_page_colours_every_meter_with_a_legend_counts_and_links(portal: PortalClient,
                                                                     new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    response = portal.get(f"/sites/{site_id}/board")
    assert response.status_code == 200
    page = response.body.decode()
    expected = {"m1": "opened", "m2": "alarm-1", "m3": "alarm-2", "m4": "arrears", "m5": "not-opened",
                "m6": "lost-contact", "m7": "never-read"}
    for meter_id, state in expected.items():
        assert f'<tr class="board-{state}" data-meter="{meter_id}" data-state="{state}">' in page
        assert f'href="/sites/{site_id}/meters/{meter_id}"' in page
        assert f'<span class="board-count" data-count="{state}">1</span>' in page
    assert "Keep power" in page and "tripped" in page and "-2.00" in page and "2026-05-01 08:30:15" in page
    assert '<script src="/static/board.js"></script>' in page
    assert f'data-source="/api/v1/sites/{site_id}/board"' in page
    assert f'href="/sites/{site_id}/board.xlsx"' in page
    assert f'href="/sites/{site_id}/board"' in portal.get(f"/sites/{site_id}").body.decode()
    assert portal.get("/static/board.js").status_code == 200


def test_the_page_speaks_chinese(portal: PortalClient, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    portal.cookies["vv_lang"] = "zh_Hans"
    text = portal.get(f"/sites/{site_id}/board").body.decode()
    assert "实时状态" in text and "未开户" in text and "失联" in text and "保电" in text


def test_the_json_filters_counts_and_pages(portal: PortalClient, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    subject = Subject(SubjectKind.METER, "m1")
    get_services().readings.set_alarm_state(new_operator.operator_id, site_id, "m1", AlarmState(subject, (
        Alarm("a1", AlarmKind.ALARM_1, subject, Severity.NOTICE, READ_AT, cleared_at=READ_AT),
        Alarm("a2", AlarmKind.OVERLOAD, subject, Severity.CRITICAL, READ_AT))))
    logged_in(portal, new_operator)
    board = portal.get(f"/api/v1/sites/{site_id}/board").json_body
    assert (board["total"], board["matched"], board["page"], board["pages"]) == (7, 7, 1, 1)
    assert board["counts"] == {"opened": 1, "alarm-1": 1, "alarm-2": 1, "arrears": 1, "not-opened": 1,
                               "lost-contact": 1, "never-read": 1}
    m1 = next(r for r in board["rows"] if r["meter_id"] == "m1")
    assert m1["alarms"] == ["overload"]  # the active one; the cleared alarm 1 is history
    m4 = next(r for r in board["rows"] if r["meter_id"] == "m4")
    assert m4 == {"meter_id": "m4", "serial": "SN-M4", "building_id": "b_b", "building": "Block B", "floor": "1",
                  "unit": "B101", "billing_mode": "prepaid", "state": "arrears", "remaining": "-2.00", "relay": "open",
                  "mode": "prepaid", "alarms": [], "read_at": "2026-05-01T08:30:15+00:00"}

    block_b = portal.get(f"/api/v1/sites/{site_id}/board?building=b_b&state=not-opened").json_body
    assert [r["meter_id"] for r in block_b["rows"]] == ["m5"] and block_b["matched"] == 1
    assert block_b["counts"]["not-opened"] == 1 and block_b["counts"]["opened"] == 0 and block_b["total"] == 7
    assert block_b["filter"] == {"building": "b_b", "state": "not-opened"}
    floor_1 = portal.get(f"/api/v1/sites/{site_id}/board?floor=1").json_body
    assert [r["unit"] for r in floor_1["rows"]] == ["A101", "A102", "B101", "B102", "B102", "B102"]
    search = portal.get(f"/api/v1/sites/{site_id}/board?q=sn-m3").json_body
    assert [r["meter_id"] for r in search["rows"]] == ["m3"]
    past_the_end = portal.get(f"/api/v1/sites/{site_id}/board?page=4").json_body
    assert past_the_end["page"] == 1 and len(past_the_end["rows"]) == 7


@pytest.mark.parametrize(("query", "words"), [
    ("building=b_zz", "no building 'b_zz' on this site"),
    ("floor=9", "no floor '9' on this site"),
    ("building=b_b&floor=2", "no floor '2' in that building"),
    ("state=green", "state must be one of opened, alarm-1"),
    ("page=0", "page must be a whole number from 1 to 10000"),
    ("q=" + "x" * 80, "search text: at most 64 characters"),
])
def test_bad_filter_values_are_400_with_a_message_everywhere(portal: PortalClient, new_operator: OperatorFixture,
                                                             query: str, words: str) -> None:
    site_id = make_site(new_operator, Meters({"m1": SAMPLE.rows["m1"]}))
    logged_in(portal, new_operator)
    as_json = portal.get(f"/api/v1/sites/{site_id}/board?{query}")
    assert as_json.status_code == 400 and words in as_json.json_body["error"]
    as_page = portal.get(f"/sites/{site_id}/board?{query}")
    assert as_page.status_code == 400 and words in html.unescape(as_page.body.decode())
    as_sheet = portal.get(f"/sites/{site_id}/board.xlsx?{query}", headers={"Accept": XLSX})
    assert as_sheet.status_code == 400


def test_another_operators_site_is_not_found_and_a_login_is_needed(portal: PortalClient, new_operator: OperatorFixture,
                                                                   other_operator: OperatorFixture) -> None:
    theirs = make_site(other_operator, Meters({"m1": SAMPLE.rows["m1"]}))
    assert portal.get(f"/sites/{theirs}/board").status_code == 303  # to the log-in page
    assert portal.get(f"/api/v1/sites/{theirs}/board").status_code == 401
    logged_in(portal, new_operator)
    for path in (f"/sites/{theirs}/board", f"/api/v1/sites/{theirs}/board", f"/sites/{theirs}/board.xlsx"):
        response = portal.get(path, headers={"Accept": f"text/html, application/json, {XLSX}"})
        assert response.status_code == 404, path
        assert b"SN-M1" not in response.body
    assert portal.get("/api/v1/sites/bad%20id/board").status_code == 400


def test_a_staff_member_scoped_to_one_site_cannot_see_another(portal: PortalClient,
                                                             new_operator: OperatorFixture) -> None:
    mine, other = make_site(new_operator, Meters({"m1": SAMPLE.rows["m1"]})), make_site(new_operator, Meters({}))
    get_services().staff_admin.create(admin_actor(new_operator),
                                      StaffDraft("scoped", "Scoped", Role.ENGINEER, sites=frozenset({other})),
                                      "relay-bus-pass-0001")
    client = Client(app)
    token = token_for(client, new_operator.operator_id, "scoped", "relay-bus-pass-0001")
    bearer = {"authorization": f"Bearer {token}"}
    assert client.http.get(f"/api/v1/sites/{other}/board", headers=bearer).status_code == 200
    assert client.http.get(f"/api/v1/sites/{mine}/board", headers=bearer).status_code == 404


def test_the_export_has_the_filtered_rows_cell_by_cell(portal: PortalClient, new_operator: OperatorFixture) -> None:
    from openpyxl import load_workbook

    site_id = make_site(new_operator)
    logged_in(portal, new_operator)
    response = portal.get(f"/sites/{site_id}/board.xlsx?building=b_b", headers={"Accept": XLSX})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == XLSX
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="board-{site_id}-') and disposition.endswith('.xlsx"')
    book = load_workbook(io.BytesIO(response.body))
    sheet = book.worksheets[0]
    assert sheet.title == "Status board"
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == ["Building", "Floor", "Unit", "Meter serial", "Meter ID", "Remaining amount", "Relay",
                       "Control mode", "Alarms", "Last reading (UTC)", "State"]
    when = READ_AT.replace(tzinfo=None)
    assert rows[1:] == [
        ["Block B", "1", "B101", "SN-M4", "m4", -2, "tripped", "Prepaid control", None, when, "Arrears"],
        ["Block B", "1", "B102", "SN-M5", "m5", 101, "on", "Prepaid control", None, when, "Not opened"],
        ["Block B", "1", "B102", "SN-M6", "m6", 70, "on", "Prepaid control", None, when - timedelta(hours=2),
         "Lost contact"],
        ["Block B", "1", "B102", "SN-M7", "m7", 0, None, None, None, None, "Not read yet"],  # the ledger's credit
    ]
    assert sheet["F2"].number_format == "0.00" and sheet["J2"].number_format == "yyyy-mm-dd hh:mm:ss"
    everything = load_workbook(io.BytesIO(portal.get(f"/sites/{site_id}/board.xlsx?page=2",
                                                     headers={"Accept": XLSX}).body)).worksheets[0]
    assert everything.max_row == 8  # every matching row, whatever page the screen was on


def _calls_for_board(portal: PortalClient, site_id: str) -> Counter[str]:
    calls: Counter[str] = Counter()
    dispatch = Connection.dispatch

    def counting(self: Connection, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
        calls[operation_name] += 1
        return dispatch(self, operation_name, operation_kwargs)

    with mock.patch.object(Connection, "dispatch", counting):
        assert portal.get(f"/api/v1/sites/{site_id}/board").status_code == 200
    return calls


def test_the_board_costs_the_same_calls_for_two_meters_or_forty(portal: PortalClient,
                                                               new_operator: OperatorFixture) -> None:
    # Meter ids are unique across an operator's sites (money states are kept per operator).
    small = make_site(new_operator, Meters({"a1": SAMPLE.rows["m1"], "a2": SAMPLE.rows["m2"]}))
    big = make_site(new_operator, Meters({f"b{n}": SAMPLE.rows[f"m{n % 6 + 1}"] for n in range(40)}))
    logged_in(portal, new_operator)
    few, many = _calls_for_board(portal, small), _calls_for_board(portal, big)
    assert few == many
    assert few["Query"] == 5  # buildings, units, meters, states, money states
    assert set(few) <= {"Query", "GetItem"}


def test_the_layout_is_kept_briefly_and_only_the_states_are_read_each_time(portal: PortalClient,
                                                                           new_operator: OperatorFixture,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services import status_board

    site_id = make_site(new_operator, Meters({"c1": SAMPLE.rows["m1"]}))
    logged_in(portal, new_operator)
    assert _calls_for_board(portal, site_id)["Query"] == 5
    again = _calls_for_board(portal, site_id)
    assert again["Query"] == 1  # the states: the layout and the accounts are the ones read a moment ago
    op = new_operator.operator_id
    get_services().tenancy.add_meters([Meter(op, site_id, "c2", "SN-C2", "DTSY1352", "c1", 9, "u_a101",
                                             BillingMode.PREPAID_METER)])
    before = portal.get(f"/api/v1/sites/{site_id}/board").body.decode()
    assert "SN-C2" not in before  # within the layout's lifetime a new meter is not on the board yet
    monkeypatch.setattr(status_board, "LAYOUT_TTL_S", 0.0)
    assert "SN-C2" in portal.get(f"/api/v1/sites/{site_id}/board").body.decode()


def test_states_stored_before_board_summaries_existed_show_the_same(portal: PortalClient,
                                                                   new_operator: OperatorFixture) -> None:
    import json

    from chalicelib.adapters.dynamodb.keys import site_pk
    from chalicelib.adapters.dynamodb.models import MeterStateItem

    site_id = make_site(new_operator, Meters({"d1": SAMPLE.rows["m1"], "d2": SAMPLE.rows["m2"]}))
    logged_in(portal, new_operator)
    before = json.loads(portal.get(f"/api/v1/sites/{site_id}/board").body)["rows"]
    legacy = MeterStateItem.get(site_pk(new_operator.operator_id, site_id), "STATE#d1")
    legacy.update(actions=[MeterStateItem.board.remove()])  # as written before the board summary was added
    after = json.loads(portal.get(f"/api/v1/sites/{site_id}/board").body)["rows"]
    assert sorted(after, key=lambda r: r["meter_id"]) == sorted(before, key=lambda r: r["meter_id"])
    assert {r["meter_id"] for r in after} == {"d1", "d2"}
