"""Daily roll-ups per meter, unit, floor and building, recomputed from readings, and the energy API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import get_services
from chalicelib.domain.tenancy import BillingMode, Meter, Site, Unit
from chalicelib.services.audit import operation
from tests.conftest import OperatorFixture
from tests.integration.test_json_api import auth, token_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ms(year: int, month: int, day: int, hour: int) -> int:
    return int(datetime(year, month, day, hour, tzinfo=SHANGHAI).timestamp() * 1000)


def reading(kwh: str, flat: str, remaining: str, purchased: str, count: int) -> dict[str, object]:
    return {"energy_total": kwh, "energy_sharp": "0.00", "energy_peak": "0.00", "energy_flat": flat,
            "energy_valley": "0.00", "remaining_amount": remaining, "total_purchased": purchased,
            "purchase_count": count}


@pytest.fixture()
def site(new_operator: OperatorFixture) -> Iterator[str]:
    services, op, now = get_services(), new_operator.operator_id, datetime.now(UTC)
    services.tenancy.add_site(Site(op, "site_r", "Roll park"), operation(op, "test", "site.create", "s", now))
    services.tenancy.add_units([Unit(op, "site_r", f"u{n}", "b1", "2", f"B20{n}") for n in (1, 2)])
    services.tenancy.add_meters([Meter(op, "site_r", f"m{n}", f"S{n}", "DTSY1352", "c1", n, f"u{n}",
                                       BillingMode.PREPAID_METER) for n in (1, 2)])
    # m1: opening 100.00 kWh the evening before; the day uses 12.50 kWh and buys 50.00
    services.readings.put_readings(op, [
        ("m1", ms(2026, 11, 21, 22), reading("100.00", "100.00", "80.00", "500.00", 5)),
        ("m1", ms(2026, 11, 22, 9), reading("105.00", "105.00", "76.00", "500.00", 5)),
        ("m1", ms(2026, 11, 22, 20), reading("112.50", "112.50", "120.00", "550.00", 6)),
        ("m2", ms(2026, 11, 22, 1), reading("10.00", "10.00", "30.00", "100.00", 1)),
        ("m2", ms(2026, 11, 22, 23), reading("13.25", "13.25", "27.40", "100.00", 1)),
    ])
    yield "site_r"


def test_a_day_rolls_up_exactly_per_meter_floor_and_building(site: str, new_operator: OperatorFixture) -> None:
    services, op = get_services(), new_operator.operator_id
    rows = services.rollups.roll_day(op, site, date(2026, 11, 22), SHANGHAI)
    assert rows == 6  # two meters, two units, one floor, one building
    days = {scope: f for _, scope, f in services.rollup_repo.days(op, site, "2026-11-22", "2026-11-22")}
    assert str(days["meter:m1"].energy_kwh) == "12.50"  # 112.50 − 100.00 (the opening before midnight)
    assert days["meter:m1"].spent_minor == 1000  # 80.00 + 50.00 bought − 120.00 left
    assert days["meter:m1"].purchased_minor == 5000 and days["meter:m1"].purchases == 1
    assert str(days["meter:m2"].energy_kwh) == "3.25"  # first day: from its first reading
    assert days["meter:m2"].spent_minor == 260
    assert str(days["floor:b1/2"].energy_kwh) == "15.75" and days["building:b1"].spent_minor == 1260


def test_a_late_reading_is_folded_in_when_the_day_is_rolled_again(site: str, new_operator: OperatorFixture) -> None:
    services, op = get_services(), new_operator.operator_id
    services.rollups.roll_day(op, site, date(2026, 11, 22), SHANGHAI)
    services.readings.put_readings(op, [("m2", ms(2026, 11, 22, 23) + 60_000,
                                         reading("14.00", "14.00", "26.90", "100.00", 1))])  # an outage's upload
    services.rollups.roll_day(op, site, date(2026, 11, 22), SHANGHAI)
    days = {scope: f for _, scope, f in services.rollup_repo.days(op, site, "2026-11-22", "2026-11-22")}
    assert str(days["meter:m2"].energy_kwh) == "4.00"


def test_energy_api(site: str, new_operator: OperatorFixture) -> None:
    get_services().rollups.roll_day(new_operator.operator_id, site, date(2026, 11, 22), SHANGHAI)
    with Client(app) as client:
        token = token_for(client, new_operator.operator_id, "boss", new_operator.admin_password)
        answer = client.http.get(f"/api/v1/sites/{site}/energy?from=2026-11-20&to=2026-11-23&scope=building:b1",
                                 headers=auth(token))
        assert answer.status_code == 200
        assert answer.json_body["days"] == [{"day": "2026-11-22", "energy_kwh": "15.75", "energy_by_rate": {
            "sharp": "0.00", "peak": "0.00", "flat": "15.75", "valley": "0.00"}, "spent": "12.60",
            "purchased": "50.00", "purchases": 1}]
        for query in ("from=2026-11-23&to=2026-11-20&scope=building:b1", "from=yesterday&to=2026-11-20&scope=x",
                      "from=2026-11-20&to=2026-11-23&scope=everything"):
            bad = client.http.get(f"/api/v1/sites/{site}/energy?{query}", headers=auth(token))
            assert bad.status_code == 400 and json.loads(bad.body)["error"]
