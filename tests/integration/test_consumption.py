"""Cloud-billed meters: each interval's energy priced by the site's tariff, charges drift-free."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from chalicelib.bootstrap import get_services
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.services.audit import operation
from tests.conftest import OperatorFixture
from tests.support.bus_runs import bus_run
from tests.support.cloud_stack import admin_actor

SHANGHAI = ZoneInfo("Asia/Shanghai")
TARIFF = {"effective_from": "2026-01-01T00:00:00+08:00",
          "prices": {"sharp": "1.2000", "peak": "0.9500", "flat": "0.6500", "valley": "0.3500"},
          "schedule": [{"starts_on": [1, 1], "bands": [["00:00", "valley"], ["08:00", "flat"]]}]}


def at(hour: int, minute: int) -> int:
    return int(datetime(2026, 11, 20, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


def test_an_interval_across_a_rate_switch_is_priced_exactly(new_operator: OperatorFixture) -> None:
    services, op = get_services(), new_operator.operator_id
    services.tenancy.add_site(Site(op, "site_c", "Cloud park"), operation(op, "t", "site.create", "s",
                                                                        datetime.now(UTC)))
    plain = Meter(op, "site_c", "acr_1", "ACR1", "DTSY1352", "bus0", 1, "u1", BillingMode.CLOUD_BILLED)
    prepaid = Meter(op, "site_c", "pre_1", "PRE1", "DTSY1352", "bus0", 2, "u2", BillingMode.PREPAID_METER)
    services.tenancy.add_meters([plain, prepaid])
    services.tariffs.add_site_version(admin_actor(new_operator), "site_c", TARIFF)
    ingest = services.bridge_link._ingest
    for cycle, (hour, minute, kwh) in enumerate([(7, 30, "100.00"), (8, 30, "102.00"), (9, 30, "105.00")]):
        run = bus_run([plain, prepaid], f"c{cycle}", "bus0", at(hour, minute),
                      lambda _meter, kwh=kwh: {"energy_total": Decimal(kwh), "remaining_amount": Decimal("50.00")})
        ingest.ingest(op, "site_c", "bus0", run, [plain, prepaid], datetime.now(UTC))
    usage = services.readings.usage(op, "site_c", "acr_1")
    # 07:30–08:30: 2.00 kWh, half in valley (0.35) and half in flat (0.65) → 0.35 + 0.65 = 1.00
    # 08:30–09:30: 3.00 kWh, all flat → 1.95
    assert [(u.energy_centi_kwh, u.cost_micro, u.charge_minor, u.month) for u in usage] == [
        (200, 1_000_000, 100, "2026-11"), (300, 1_950_000, 195, "2026-11")]
    assert services.readings.usage(op, "site_c", "pre_1") == []  # a prepaid meter charges itself
    state = services.readings.get_states(op, "site_c", ["acr_1"])[0]
    assert state.billing == {"month": "2026-11", "month_energy": 500, "exact_micro": 2_950_000, "posted_minor": 295}


LADDER_TARIFF = {**TARIFF, "ladder": {"upper_bounds_kwh": ["3.00"], "increments": ["0", "0.1000"]}}


def test_a_prepaid_meter_crossing_a_ladder_tier_gets_the_next_tier_prices(new_operator: OperatorFixture) -> None:
    services, op = get_services(), new_operator.operator_id
    services.tenancy.add_site(Site(op, "site_l", "Ladder park"), operation(op, "t", "site.create", "s",
                                                                          datetime.now(UTC)))
    prepaid = Meter(op, "site_l", "pre_9", "PRE9", "DTSY1352", "bus0", 9, "u9", BillingMode.PREPAID_METER)
    services.tenancy.add_meters([prepaid])
    services.tariffs.add_site_version(admin_actor(new_operator), "site_l", LADDER_TARIFF)
    ingest, outcomes = services.bridge_link._ingest, []
    for cycle, (hour, minute, kwh) in enumerate([(7, 30, "100.00"), (8, 30, "102.00"), (9, 30, "105.00")]):
        run = bus_run([prepaid], f"l{cycle}", "bus0", at(hour, minute),
                      lambda _meter, kwh=kwh: {"energy_total": Decimal(kwh), "remaining_amount": Decimal("50.00")})
        outcomes.append(ingest.ingest(op, "site_l", "bus0", run, [prepaid], datetime.now(UTC)))
    # month energy: 2.00 kWh after the first interval (tier 1), 5.00 after the second: past 3.00 → tier 2
    assert [len(o.price_pushes) for o in outcomes] == [0, 0, 1]
    pushed = outcomes[2].price_pushes[0]
    assert pushed.meter.meter_id == "pre_9"
    assert pushed.prices.as_tuple() == (13000, 10500, 7500, 4500)  # every rate + 0.1000 per kWh


def test_a_meters_own_price_overrides_the_site_default(new_operator: OperatorFixture) -> None:
    import json

    from chalice.test import Client

    from app import app
    from tests.integration.test_json_api import auth, token_for

    services, op = get_services(), new_operator.operator_id
    created = operation(op, "t", "site.create", "s", datetime.now(UTC))
    services.tenancy.add_site(Site(op, "site_o", "Own price"), created)
    plain = Meter(op, "site_o", "own_1", "OWN1", "DTSY1352", "bus0", 1, "u1", BillingMode.CLOUD_BILLED)
    services.tenancy.add_meters([plain])
    own = {"effective_from": "2026-01-01T00:00:00+08:00", "schedule": None,
           "prices": {"sharp": "0.5000", "peak": "0.5000", "flat": "0.5000", "valley": "0.5000"}}
    with Client(app) as client:
        token = token_for(client, op, "boss", new_operator.admin_password)
        for path, body in (("/api/v1/sites/site_o/tariff", TARIFF), ("/api/v1/sites/site_o/meters/own_1/tariff", own)):
            assert client.http.post(path, headers=auth(token), body=json.dumps(body).encode()).status_code == 201
        again = client.http.post("/api/v1/sites/site_o/tariff", headers=auth(token), body=json.dumps(TARIFF).encode())
        assert again.status_code == 409 and "never edited" in again.json_body["error"]
        missing = client.http.post("/api/v1/sites/site_o/meters/nobody/tariff", headers=auth(token),
                                   body=json.dumps(own).encode())
        assert missing.status_code == 404
        bad = dict(own, prices={"flat": 0.5})
        assert client.http.post("/api/v1/sites/site_o/meters/own_1/tariff", headers=auth(token),
                                body=json.dumps(bad).encode()).status_code == 400
    for cycle, (hour, minute, kwh) in enumerate([(7, 30, "100.00"), (8, 30, "102.00")]):
        run = bus_run([plain], f"o{cycle}", "bus0", at(hour, minute),
                      lambda _meter, kwh=kwh: {"energy_total": Decimal(kwh), "remaining_amount": Decimal("0")})
        services.bridge_link._ingest.ingest(op, "site_o", "bus0", run, [plain], datetime.now(UTC))
    usage = services.readings.usage(op, "site_o", "own_1")
    assert [(u.energy_centi_kwh, u.cost_micro) for u in usage] == [(200, 1_000_000)]  # 2.00 kWh × 0.50 flat


BAD_TARIFFS = [
    {**TARIFF, "schedule": [{"starts_on": [1, 1], "bands": [["25:99", "valley"]]}]},
    {**TARIFF, "schedule": [{"starts_on": [1, 1], "bands": [["08:00", "cheap"]]}]},
    {**TARIFF, "schedule": [{"starts_on": [13, 40], "bands": [["08:00", "flat"]]}]},
    {**TARIFF, "schedule": [{"starts_on": [1, 1], "bands": [[8, "flat"]]}]},
    {**TARIFF, "ladder": {"upper_bounds_kwh": "3", "increments": ["0", "0.1"]}},
    {**TARIFF, "ladder": {"upper_bounds_kwh": ["3"], "increments": ["0.2", "0.1"]}},
    {**TARIFF, "prices": {"sharp": "1e400", "peak": "1", "flat": "1", "valley": "1"}},
    {**TARIFF, "prices": {"sharp": "NaN", "peak": "1", "flat": "1", "valley": "1"}},
    {**TARIFF, "effective_from": 5},
]


def test_bad_tariffs_get_a_400_with_a_short_message(new_operator: OperatorFixture) -> None:
    import json

    from chalice.test import Client

    from app import app
    from tests.integration.test_json_api import auth, token_for

    services, op = get_services(), new_operator.operator_id
    services.tenancy.add_site(Site(op, "site_b", "Bad"), operation(op, "t", "site.create", "s", datetime.now(UTC)))
    with Client(app) as client:
        token = token_for(client, op, "boss", new_operator.admin_password)
        for body in BAD_TARIFFS:
            payload = json.dumps(body).encode()
            answer = client.http.post("/api/v1/sites/site_b/tariff", headers=auth(token), body=payload)
            assert answer.status_code == 400, body
            assert 0 < len(answer.json_body["error"]) < 200
        assert services.tariffs.history(admin_actor(new_operator), "site_b") is None


def test_cloud_billed_usage_is_charged_to_the_account_once_and_its_balance_drives_the_alarms(
        new_operator: OperatorFixture) -> None:
    from chalicelib.domain.ledger import EntryKind
    from chalicelib.services.sales import new_request_token

    services, op, admin = get_services(), new_operator.operator_id, admin_actor(new_operator)
    services.tenancy.add_site(Site(op, "site_b", "Billed park", alarm_amount_1_minor=300, alarm_amount_2_minor=150),
                              operation(op, "t", "site.create", "s", datetime.now(UTC)))
    plain = Meter(op, "site_b", "acr_2", "ACR2", "DTSY1352", "bus0", 1, "u1", BillingMode.CLOUD_BILLED)
    services.tenancy.add_meters([plain])
    services.tariffs.add_site_version(admin, "site_b", TARIFF)
    services.sales.open_account(admin, "site_b", "Laundry", ["acr_2"], request_id=new_request_token())
    services.sales.sell(admin, "site_b", "acr_2", request_id=new_request_token(), amount="5.00", channel="transfer")
    ingest, alarms_seen = services.bridge_link._ingest, []
    for cycle, (hour, minute, kwh) in enumerate([(7, 30, "100.00"), (8, 30, "102.00"), (9, 30, "105.00"),
                                                 (10, 30, "115.00")]):
        run = bus_run([plain], f"b{cycle}", "bus0", at(hour, minute),
                      lambda _m, kwh=kwh: {"energy_total": Decimal(kwh)})
        outcome = ingest.ingest(op, "site_b", "bus0", run, [plain], datetime.now(UTC))
        assert services.bridge_link.charge_poster is not None
        services.bridge_link.charge_poster(op, outcome.usage)  # what the bridge link does
        services.bridge_link.charge_poster(op, outcome.usage)  # a retry: charged once
        state = services.readings.get_states(op, "site_b", ["acr_2"])[0]
        alarms_seen.append(sorted(a.kind.value for a in state.alarms.active) if state.alarms else [])
    money = services.money.money(op, "acr_2")
    charges = [e for e in services.money.meter_entries(op, "acr_2") if e.kind is EntryKind.CHARGE]
    # 1.00, 1.95, then 10.00 kWh of flat at 0.65 = 6.50: 5.00 − 9.45 = −4.45
    assert [c.amount_minor for c in charges] == [100, 195, 650]
    assert money is not None and money.credit_minor == 500 - 100 - 195 - 650
    assert alarms_seen == [[], [], ["alarm-1"], ["alarm-1", "alarm-2", "arrears"]]
