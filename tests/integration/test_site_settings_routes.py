"""System settings by hand through Chalice's test client and DynamoDB Local: pages and JSON routes, the operation
log, refusals (4xx with a reason), tenancy (another operator's ids answer 404) and permissions (a cashier 403)."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from html import unescape

import pytest
from chalice.test import Client, HTTPResponse

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Role
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Building, Collector, Meter, Site, Transport, Unit
from chalicelib.services.audit import operation
from chalicelib.services.staff_admin import StaffDraft
from tests.conftest import OperatorFixture
from tests.integration.portal_client import PortalClient, hidden_tokens
from tests.integration.test_json_api import auth, token_for

pytestmark = pytest.mark.ddb


def portal_for(client: Client, operator: OperatorFixture) -> PortalClient:
    portal = PortalClient(client)
    assert portal.log_in(operator.operator_id, operator.admin_username, operator.admin_password).status_code == 303
    return portal


def empty_site(operator: OperatorFixture) -> str:
    op, site_id = operator.operator_id, f"site_{secrets.token_hex(3)}"
    get_services().tenancy.add_site(Site(op, site_id, "Settings park"),
                                    operation(op, "test", "site.create", site_id, datetime.now(UTC)))
    return site_id


def post(portal: PortalClient, path: str, fields: dict[str, str], site_id: str) -> HTTPResponse:
    return portal.post_form(path, fields, with_token_from=f"/sites/{site_id}/settings")


Logged = tuple[str, str, dict[str, object] | None, dict[str, object] | None]


def _oplog(operator_id: str) -> tuple[list[Logged], str | None]:
    """The latest log records of the operator (one page, newest first): (action, target, before, after)."""
    from chalicelib.domain.access import Grant
    from chalicelib.domain.actor import Actor

    auditor = Actor(operator_id, "boss", "Boss", Grant(Role.ADMINISTRATOR), "s", "c")
    _, records, cursor = get_services().oplog.page(auditor, None, None)
    return [(r.action, r.target, r.before, r.after) for r in records], cursor


def error_text(response: HTTPResponse) -> str:
    match = re.search(r'id="settings-error">(.*?)</div>', response.body.decode(), re.S)
    return unescape(re.sub(r"<[^>]+>", " ", match.group(1))) if match else ""


def test_configure_a_building_unit_collector_and_meter_through_the_pages(client: Client,
                                                                        new_operator: OperatorFixture) -> None:
    op, services = new_operator.operator_id, get_services()
    site_id = empty_site(new_operator)
    portal = portal_for(client, new_operator)
    assert f"/sites/{site_id}/settings" in portal.get(f"/sites/{site_id}").body.decode()
    base = f"/sites/{site_id}/settings"

    added = post(portal, f"{base}/buildings", {"name": "Tower A", "floors": "B1, 1, 2"}, site_id)
    assert added.status_code == 303 and added.headers["Location"].endswith("#buildings")
    building = services.tenancy.list_buildings(op, site_id)[0]
    assert (building.name, building.floors) == ("Tower A", ("B1", "1", "2"))

    assert post(portal, f"{base}/units", {"building_id": building.building_id, "floor": "1", "number": "A101"},
                site_id).status_code == 303
    unit = services.tenancy.list_units(op, site_id)[0]
    assert (unit.building_id, unit.floor, unit.number) == (building.building_id, "1", "A101")

    assert post(portal, f"{base}/collectors", {"collector_id": "bus_1", "name": "Room 1 bus", "transport": "rtutcp",
                                               "host": "10.1.2.3", "port": "5020",
                                               "building_id": building.building_id}, site_id).status_code == 303
    assert services.tenancy.list_collectors(op, site_id)[0].port == 5020

    created = post(portal, f"{base}/meters", {"meter_id": f"m_{site_id}", "serial": f"SN-{site_id}",
                                              "model": "DTSY1352", "collector_id": "bus_1", "address": "7",
                                              "unit_id": unit.unit_id, "ct_ratio": "200/5", "billing_mode": ""},
                   site_id)
    assert created.status_code == 303
    assert created.headers["Location"].endswith(f"{base}/meters/m_{site_id}?saved=created#meter-form")
    meter = services.tenancy.list_meters(op, site_id)[0]
    assert (meter.address, meter.ct_ratio, meter.unit_id, meter.billing_mode) == (7, 40, unit.unit_id,
                                                                                  BillingMode.PREPAID_METER)
    page = portal.get(f"{base}/meters/m_{site_id}")
    assert page.status_code == 200 and "Own settings" in page.body.decode()

    in_use = post(portal, f"{base}/units/{unit.unit_id}/remove", {}, site_id)
    assert in_use.status_code == 409 and f"still supplied by meters m_{site_id}" in error_text(in_use)
    on_page = post(portal, f"{base}/meters/m_{site_id}/remove", {"back": "meter"}, site_id)
    assert on_page.status_code == 303  # nothing holds it: no account, no credit on its way
    assert services.tenancy.list_meters(op, site_id) == []
    assert post(portal, f"{base}/units/{unit.unit_id}/remove", {}, site_id).status_code == 303

    actions = [(a, t) for a, t, _, _ in _oplog(op)[0]]
    for action in ("building.create", "unit.create", "collector.create", "meter.create", "meter.remove",
                   "unit.remove"):
        assert any(a == action and site_id in t for a, t in actions), action


def test_editing_defaults_and_a_meters_overrides_is_logged_before_and_after(client: Client,
                                                                           new_operator: OperatorFixture) -> None:
    op, services = new_operator.operator_id, get_services()
    site_id = empty_site(new_operator)
    portal = portal_for(client, new_operator)
    base = f"/sites/{site_id}/settings"
    saved = post(portal, base, {"name": "Settings park", "address": "1 Road", "reading_interval_min": "15",
                                "overload_threshold_kw": "20", "alarm_amount_1": "60.00", "alarm_amount_2": "25.00",
                                "hoarding_limit": "4000.00", "alarm_sms_number": "+86 138 0000 1111",
                                "default_price": "0.65"}, site_id)
    assert saved.status_code == 303 and "tariff=1" in saved.headers["Location"]
    site = services.tenancy.get_site(op, site_id)
    assert site is not None
    assert (site.reading_interval_s, site.alarm_amount_1_minor, site.alarm_amount_2_minor,
            site.hoarding_limit_minor, site.alarm_sms_number) == (900, 6000, 2500, 400_000, "+8613800001111")
    assert str(site.overload_threshold_kw) == "20.00"  # as given, not as DynamoDB keeps it
    versions = client.http.get(f"/api/v1/sites/{site_id}/tariff", headers=auth(
        token_for(client, op, "boss", new_operator.admin_password))).json_body["versions"]
    assert [v["prices"]["flat"] for v in versions] == ["0.6500"] and versions[0]["schedule"] is None
    # the site has a tariff now: another default price is refused, and the page says how to change prices
    again = post(portal, base, {"default_price": "0.70"}, site_id)
    assert again.status_code == 409 and "tariff version" in error_text(again)
    assert "tariff version" in portal.get(base).body.decode()

    update = next(e for e in _oplog(op)[0] if e[0] == "site.update" and e[1] == f"site:{site_id}")
    assert update[2] is not None and update[3] is not None
    assert (update[2]["alarm_amount_1_minor"], update[3]["alarm_amount_1_minor"]) == (5000, 6000)

    services.tenancy.add_building(Building(op, site_id, "bldg_1", "One", ("1",)),
                                  operation(op, "test", "building.create", "bldg_1", datetime.now(UTC)))
    services.tenancy.add_units([Unit(op, site_id, "u", "bldg_1", "1", "101")])
    services.tenancy.add_collectors([Collector(op, site_id, "bus_1", "Bus", Transport.RTU_OVER_TCP, "h", 1)])
    services.tenancy.add_meters([Meter(op, site_id, f"m_{site_id}", f"SN-{site_id}", "DTSY1352", "bus_1", 1, "u")])
    meter_path = f"{base}/meters/m_{site_id}"
    own = post(portal, meter_path, {"alarm_amount_1": "90.00", "alarm_amount_2": "", "hoarding_limit": "",
                                    "overload_threshold_kw": "5.5"}, site_id)
    assert own.status_code == 303
    meter = services.tenancy.get_meters(op, site_id, [f"m_{site_id}"])[0]
    assert (meter.alarm_amount_1_minor, meter.alarm_amount_2_minor, str(meter.overload_threshold_kw)) == \
        (9000, None, "5.50")
    listed = portal.get(base).body.decode()
    assert "90.00" in listed and "25.00" in listed  # its own alarm 1, the site's alarm 2
    # defaults that would put the site's alarm 2 above this meter's own alarm 1 are refused, naming it
    clash = post(portal, base, {"alarm_amount_1": "150.00", "alarm_amount_2": "100.00"}, site_id)
    assert clash.status_code == 400 and f"m_{site_id}" in error_text(clash)
    # write to meters: no bridge serves the bus, so nothing is sent, and the page says so
    pushed = post(portal, f"{base}/push", {}, site_id)
    assert pushed.status_code == 303 and "pushed=0" in pushed.headers["Location"]
    assert any(a == "meter.push_settings" for a, *_ in _oplog(op)[0])
    api = auth(token_for(client, op, "boss", new_operator.admin_password))
    settings = client.http.get(f"/api/v1/sites/{site_id}/settings", headers=api).json_body
    assert settings["meters"][0]["overrides"]["alarm_amount_1"] == "90.00"
    assert settings["meters"][0]["effective"]["alarm_amount_2"] == "25.00"


def test_bad_values_answer_400_with_the_reason_and_keep_what_was_typed(client: Client,
                                                                      new_operator: OperatorFixture) -> None:
    site_id = empty_site(new_operator)
    portal = portal_for(client, new_operator)
    base = f"/sites/{site_id}/settings"
    bad = post(portal, base, {"name": "Park", "reading_interval_min": "0", "alarm_amount_1": "50",
                              "alarm_amount_2": "20", "hoarding_limit": "5000"}, site_id)
    assert bad.status_code == 400 and "Reading interval: 1 minute to 1 day" in error_text(bad)
    order = post(portal, base, {"alarm_amount_1": "10.00", "alarm_amount_2": "20.00"}, site_id)
    assert order.status_code == 400 and 'value="10.00"' in order.body.decode()
    unit = post(portal, f"{base}/units", {"building_id": "bldg_none", "floor": "1", "number": "X1"}, site_id)
    assert unit.status_code == 400 and "No building bldg_none" in error_text(unit)
    collector = post(portal, f"{base}/collectors", {"name": "Bus", "transport": "rtutcp", "host": "not a host",
                                                    "port": "502"}, site_id)
    assert collector.status_code == 400 and "Host:" in error_text(collector)
    meter = post(portal, f"{base}/meters", {"meter_id": "m_x", "serial": "SN-X", "model": "NOPE",
                                            "collector_id": "nobus", "address": "300", "unit_id": "u"}, site_id)
    assert meter.status_code == 400
    problems = error_text(meter)
    assert "Unknown model NOPE" in problems and "a Modbus address is a whole number from 1 to 247" in problems
    assert get_services().tenancy.list_meters(new_operator.operator_id, site_id) == []

    api = auth(token_for(client, new_operator.operator_id, "boss", new_operator.admin_password))
    cases = [("PATCH", f"/api/v1/sites/{site_id}/settings", {"alarm_amount_1": "50.001"}, "bad_amount"),
             ("PATCH", f"/api/v1/sites/{site_id}/settings", {"hoarding_limit_minor": 5}, None),
             ("POST", f"/api/v1/sites/{site_id}/buildings", {"name": ""}, "required"),
             ("POST", f"/api/v1/sites/{site_id}/collectors", {"name": "B", "transport": "x", "host": "h", "port": 1},
              "bad_transport")]
    for method, path, body, code in cases:
        answer = client.http.request(method, path, headers=api, body=json.dumps(body).encode())
        assert answer.status_code == 400, (path, answer.body)
        assert answer.json_body.get("code") == code and answer.json_body["error"]
    meter_api = client.http.post(f"/api/v1/sites/{site_id}/meters", headers=api,
                                 body=json.dumps({"meter_id": "m_y", "serial": "S", "model": "DTSY1352",
                                                  "collector_id": "none", "address": 1, "unit_id": "u"}).encode())
    assert meter_api.status_code == 400
    assert {p["field"] for p in meter_api.json_body["problems"]} == {"collector_id", "unit_id"}


def test_the_json_api_builds_a_site_and_refuses_removals_in_use(client: Client,
                                                               new_operator: OperatorFixture) -> None:
    op, services = new_operator.operator_id, get_services()
    api = auth(token_for(client, op, "boss", new_operator.admin_password))

    def call(method: str, path: str, body: dict[str, object] | None = None) -> HTTPResponse:
        return client.http.request(method, path, headers=api, body=json.dumps(body or {}).encode())

    created = call("POST", "/api/v1/sites", {"name": "API park", "address": "2 Lane"})
    assert created.status_code == 201
    site_id = created.json_body["site_id"]
    from chalicelib.adapters.dynamodb.keys import PLATFORM_PK
    from chalicelib.adapters.dynamodb.models import RegistryItem

    assert RegistryItem.get(PLATFORM_PK, f"SITE#{op}#{site_id}").site_id == site_id  # the schedulers find it
    building = call("POST", f"/api/v1/sites/{site_id}/buildings", {"name": "North", "floors": ["1", "2"]}).json_body
    unit = call("POST", f"/api/v1/sites/{site_id}/units", {"building_id": building["building_id"], "floor": "2",
                                                            "number": "N201"}).json_body
    call("POST", f"/api/v1/sites/{site_id}/collectors", {"collector_id": "bus_n", "name": "North bus",
                                                          "transport": "tcp", "host": "10.0.0.9", "port": 502})
    meter_id = f"m_{secrets.token_hex(4)}"
    made = call("POST", f"/api/v1/sites/{site_id}/meters", {"meter_id": meter_id, "serial": f"SN-{meter_id}",
                                                             "model": "DTSY1352", "collector_id": "bus_n",
                                                             "address": 3, "unit_id": unit["unit_id"],
                                                             "alarm_amount_1": "70.00"})
    assert made.status_code == 201, made.body
    assert made.json_body["overrides"]["alarm_amount_1"] == "70.00"
    assert made.json_body["effective"]["alarm_amount_2"] == "20.00"

    # a second meter at the same bus address, and a floor still in use, are refused
    twin = call("POST", f"/api/v1/sites/{site_id}/meters", {"meter_id": f"{meter_id}b", "serial": "SN-other",
                                                             "model": "DTSY1352", "collector_id": "bus_n",
                                                             "address": 3, "unit_id": unit["unit_id"]})
    assert twin.status_code == 400 and twin.json_body["problems"][0]["code"] == "address_taken"
    floors = call("PATCH", f"/api/v1/sites/{site_id}/buildings/{building['building_id']}", {"floors": ["1"]})
    assert floors.status_code == 409 and floors.json_body["code"] == "floor_in_use"
    for path, code in ((f"units/{unit['unit_id']}", "unit_in_use"), ("collectors/bus_n", "collector_in_use"),
                       (f"buildings/{building['building_id']}", "building_in_use")):
        refused = call("DELETE", f"/api/v1/sites/{site_id}/{path}")
        assert refused.status_code == 409 and refused.json_body["code"] == code

    # on an open account the meter cannot go; once off it (here: a fresh meter) removal cascades cleanly
    services.readings.put_states(op, site_id, [StoredState(meter_id, datetime.now(UTC),
                                                           {"remaining_amount": "5.00", "purchase_count": 1}, (),
                                                           datetime.now(UTC), 0)])
    opened = call("POST", f"/api/v1/sites/{site_id}/accounts", {"customer": "Cafe", "meters": [meter_id],
                                                                 "request_id": f"open-{meter_id}"})
    assert opened.status_code == 201, opened.body
    on_account = call("DELETE", f"/api/v1/sites/{site_id}/meters/{meter_id}")
    assert on_account.status_code == 409 and on_account.json_body["code"] == "meter_on_account"
    changed_mode = call("PATCH", f"/api/v1/sites/{site_id}/meters/{meter_id}", {"billing_mode": "cloud"})
    assert changed_mode.status_code == 409 and changed_mode.json_body["code"] == "billing_on_account"
    moved = call("PATCH", f"/api/v1/sites/{site_id}/meters/{meter_id}", {"address": 4})
    assert moved.status_code == 200 and moved.json_body["address"] == 4

    spare_id = f"{meter_id}s"
    assert call("POST", f"/api/v1/sites/{site_id}/meters", {
        "meter_id": spare_id, "serial": f"SN-{spare_id}", "model": "ACR", "collector_id": "bus_n", "address": 9,
        "unit_id": unit["unit_id"]}).json_body["billing_mode"] == "cloud"
    assert call("DELETE", f"/api/v1/sites/{site_id}/meters/{spare_id}").status_code == 200
    assert call("DELETE", f"/api/v1/sites/{site_id}/meters/{spare_id}").status_code == 404
    removed = next(e for e in _oplog(op)[0] if e[0] == "meter.remove")
    assert removed[2] is not None and removed[2]["meter_id"] == spare_id and removed[3] is None
    assert call("PATCH", f"/api/v1/sites/{site_id}/settings", {"reading_interval_s": 300}).json_body[
        "reading_interval_s"] == 300


def test_another_operators_ids_answer_404_and_a_cashier_403(client: Client, new_operator: OperatorFixture,
                                                           other_operator: OperatorFixture) -> None:
    op, services = new_operator.operator_id, get_services()
    site_id = empty_site(new_operator)
    api = auth(token_for(client, op, "boss", new_operator.admin_password))
    building = client.http.post(f"/api/v1/sites/{site_id}/buildings", headers=api,
                                body=json.dumps({"name": "Mine"}).encode()).json_body
    stranger = auth(token_for(client, other_operator.operator_id, "boss", other_operator.admin_password))
    for method, path in (("GET", f"/api/v1/sites/{site_id}/settings"),
                         ("PATCH", f"/api/v1/sites/{site_id}/settings"),
                         ("POST", f"/api/v1/sites/{site_id}/units"),
                         ("PATCH", f"/api/v1/sites/{site_id}/buildings/{building['building_id']}"),
                         ("DELETE", f"/api/v1/sites/{site_id}/buildings/{building['building_id']}"),
                         ("DELETE", f"/api/v1/sites/{site_id}/meters/m_nothing")):
        answer = client.http.request(method, path, headers=stranger, body=b'{"name": "Theirs"}')
        assert answer.status_code == 404, (method, path, answer.body)
    # their own site: an id of another operator's building is just as unknown
    theirs = empty_site(other_operator)
    answer = client.http.request("PATCH", f"/api/v1/sites/{theirs}/buildings/{building['building_id']}",
                                 headers=stranger, body=b'{"name": "x"}')
    assert answer.status_code == 404
    stranger_portal = portal_for(client, other_operator)
    assert stranger_portal.get(f"/sites/{site_id}/settings").status_code == 404
    assert services.tenancy.list_buildings(op, site_id)[0].name == "Mine"

    from chalicelib.domain.access import Grant
    from chalicelib.domain.actor import Actor

    boss = Actor(op, "boss", "Boss", Grant(Role.ADMINISTRATOR), "s", "c")
    services.staff_admin.create(boss, StaffDraft("till", "Till", Role.CASHIER), "kiosk-secret-5678")
    till = services.staff_repo.get(op, "till")
    assert till is not None
    services.staff_repo.save(replace(till, must_change_password=False), None)  # straight to the pages
    cashier = PortalClient(client)
    cashier.log_in(op, "till", "kiosk-secret-5678")
    assert cashier.get(f"/sites/{site_id}/settings").status_code == 403
    assert cashier.get("/sites/new").status_code == 403
    token = token_for(client, op, "till", "kiosk-secret-5678")
    for method, path in (("POST", f"/api/v1/sites/{site_id}/buildings"), ("POST", "/api/v1/sites"),
                         ("PATCH", f"/api/v1/sites/{site_id}/settings")):
        answer = client.http.request(method, path, headers=auth(token), body=b'{"name": "Till"}')
        assert answer.status_code == 403
    assert "settings-link" not in cashier.get(f"/sites/{site_id}").body.decode()
    # an engineer manages settings but may not create sites
    services.staff_admin.create(boss, StaffDraft("eng", "Eng", Role.ENGINEER), "relay-secret-1234")
    engineer = client.http.post("/api/v1/session", headers={"content-type": "application/json"}, body=json.dumps(
        {"company": op, "username": "eng", "password": "relay-secret-1234"}).encode())
    assert engineer.status_code == 201
    refused = client.http.post("/api/v1/sites", headers=auth(engineer.json_body["token"]),
                               body=b'{"name": "Side park"}')
    assert refused.status_code == 403 and refused.json_body["code"] == "admin_only"


def test_a_page_form_without_the_csrf_token_is_refused(client: Client, new_operator: OperatorFixture) -> None:
    site_id = empty_site(new_operator)
    portal = portal_for(client, new_operator)
    answer = portal.post_form(f"/sites/{site_id}/settings/buildings", {"name": "Sneaky"})
    assert answer.status_code == 403
    assert get_services().tenancy.list_buildings(new_operator.operator_id, site_id) == []
    assert hidden_tokens(portal.get(f"/sites/{site_id}/settings"))["csrf_token"]


def test_write_to_meters_sends_each_meters_own_values_and_a_bridged_collector_stays(
        client: Client, new_operator: OperatorFixture) -> None:
    """No bridge is connected: each command is recorded as pending with the register values it carries."""
    from chalicelib.domain.access import Grant
    from chalicelib.domain.actor import Actor

    op = new_operator.operator_id
    api = auth(token_for(client, op, "boss", new_operator.admin_password))

    def call(method: str, path: str, body: dict[str, object] | None = None) -> HTTPResponse:
        return client.http.request(method, path, headers=api, body=json.dumps(body or {}).encode())

    site_id = empty_site(new_operator)
    building = call("POST", f"/api/v1/sites/{site_id}/buildings", {"name": "Hall"}).json_body
    unit = call("POST", f"/api/v1/sites/{site_id}/units", {"building_id": building["building_id"], "floor": "G",
                                                            "number": "G01"}).json_body
    call("POST", f"/api/v1/sites/{site_id}/collectors", {"collector_id": "bus_g", "name": "Hall bus",
                                                          "transport": "rtutcp", "host": "10.0.0.2", "port": 4001})
    assert call("POST", f"/api/v1/sites/{site_id}/bridges", {"name": "gw"}).status_code == 201
    bridged = call("DELETE", f"/api/v1/sites/{site_id}/collectors/bus_g")
    assert bridged.status_code == 409 and bridged.json_body["code"] == "collector_bridged"
    assert call("PATCH", f"/api/v1/sites/{site_id}/settings", {"overload_threshold_kw": "30"}).status_code == 200

    own, plain = f"m_own_{site_id}", f"m_plain_{site_id}"
    for meter_id, address, extra in ((own, 1, {"alarm_amount_1": "90.00", "overload_threshold_kw": "5.5"}),
                                     (plain, 2, {})):
        made = call("POST", f"/api/v1/sites/{site_id}/meters", {
            "meter_id": meter_id, "serial": f"SN-{meter_id}", "model": "DTSY1352", "collector_id": "bus_g",
            "address": address, "unit_id": unit["unit_id"], **extra})
        assert made.status_code == 201, made.body
    pushed = call("POST", f"/api/v1/sites/{site_id}/settings/push")
    assert pushed.status_code == 202 and pushed.json_body["meters"] == 2
    assert {c["status"] for c in pushed.json_body["commands"]} == {"pending"}  # the bridge is offline

    boss = Actor(op, "boss", "Boss", Grant(Role.ADMINISTRATOR), "s", "c")
    written = {r.meter_id: r.expected for r in get_services().tariffs.commands(boss, site_id) if r.kind == "settings"}
    assert written[own] == {"alarm_amount_1": "90.00", "alarm_amount_2": "20.00", "hoarding_limit": "5000.00",
                            "overload_threshold": "5.50"}
    assert written[plain] == {"alarm_amount_1": "50.00", "alarm_amount_2": "20.00", "hoarding_limit": "5000.00",
                              "overload_threshold": "30.00"}
    one = call("POST", f"/api/v1/sites/{site_id}/settings/push", {"meter_ids": [plain]})
    assert one.status_code == 202 and [c["meter_id"] for c in one.json_body["commands"]] == [plain]
    assert call("POST", f"/api/v1/sites/{site_id}/settings/push", {"meter_ids": "all"}).status_code == 400
