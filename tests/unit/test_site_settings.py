"""System settings, pure: effective settings (site → meter), parsing and the rules of a site's tree."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chalicelib.domain.meter_form import MeterInvalid, checked_meter
from chalicelib.domain.meter_import import ModelInfo, SiteContext
from chalicelib.domain.settings import (
    SettingsInvalid,
    SettingsRefused,
    building_removable,
    check_building,
    check_unit,
    collector_removable,
    effective_settings,
    flat_tariff,
    meter_with_overrides,
    meters_broken_by,
    parse_endpoint,
    parse_floors,
    parse_money,
    parse_overload,
    parse_price,
    parse_sms_number,
    site_with_defaults,
    snapshot,
    unit_removable,
)
from chalicelib.domain.tariffs.json_format import tariff_from_json
from chalicelib.domain.tenancy import BillingMode, Building, Collector, Meter, Site, Transport, Unit

OP, SITE = "op", "site_1"


def site(**changes: object) -> Site:
    return replace(Site(OP, SITE, "Park", alarm_amount_1_minor=5000, alarm_amount_2_minor=2000,
                        hoarding_limit_minor=500_000), **changes)


def meter(meter_id: str = "m1", address: int = 1, **changes: object) -> Meter:
    return replace(Meter(OP, SITE, meter_id, f"SN-{meter_id}", "DTSY1352", "coll_1", address, "unit_a"), **changes)


# -- effective settings -------------------------------------------------------------------------------

def test_a_meter_without_overrides_inherits_every_site_default() -> None:
    the_site = site(overload_threshold_kw=Decimal("12.50"), alarm_sms_number="+8613800000000")
    e = effective_settings(the_site, meter())
    assert (e.alarm_amount_1_minor, e.alarm_amount_2_minor, e.hoarding_limit_minor) == (5000, 2000, 500_000)
    assert e.overload_threshold_kw == Decimal("12.50")
    assert (e.reading_interval_s, e.alarm_sms_number) == (1800, "+8613800000000")
    assert e.overridden == frozenset()
    assert effective_settings(the_site) == e


def test_each_override_replaces_only_its_own_value() -> None:
    e = effective_settings(site(), meter(alarm_amount_1_minor=8000, overload_threshold_kw=Decimal("3.00")))
    assert (e.alarm_amount_1_minor, e.alarm_amount_2_minor, e.hoarding_limit_minor) == (8000, 2000, 500_000)
    assert e.overload_threshold_kw == Decimal("3.00")
    assert e.overridden == {"alarm_amount_1_minor", "overload_threshold_kw"}


def test_an_override_of_zero_is_an_override_not_inherit() -> None:
    e = effective_settings(site(), meter(alarm_amount_2_minor=0))
    assert e.alarm_amount_2_minor == 0 and "alarm_amount_2_minor" in e.overridden


def test_register_values_in_currency_and_kw_and_no_threshold_when_none() -> None:
    values = effective_settings(site(), meter(hoarding_limit_minor=123_456)).register_values()
    assert values == {"alarm_amount_1": Decimal("50.00"), "alarm_amount_2": Decimal("20.00"),
                      "hoarding_limit": Decimal("1234.56")}
    with_threshold = effective_settings(site(overload_threshold_kw=Decimal("7.25")), meter()).register_values()
    assert with_threshold["overload_threshold"] == Decimal("7.25")


def test_alarm_policy_hook_uses_the_meters_own_amounts() -> None:
    from chalicelib.services.alarm_watch import policy_for

    the_site = site(overload_threshold_kw=Decimal("10.00"))
    assert policy_for(the_site).thresholds is not None
    own = policy_for(the_site, meter(alarm_amount_1_minor=9000, overload_threshold_kw=Decimal("4.00")))
    assert own.thresholds is not None and own.thresholds.alarm_1_minor == 9000
    assert own.overload_kw == Decimal("4.00")
    # overrides that no longer fit the site (alarm 1 under the site's alarm 2): the site's amounts hold
    broken = policy_for(the_site, meter(alarm_amount_1_minor=1000))
    assert broken.thresholds is not None and broken.thresholds.alarm_1_minor == 5000


# -- the site's defaults ------------------------------------------------------------------------------

def test_defaults_parse_text_into_minor_units_and_seconds() -> None:
    changed = site_with_defaults(site(), {"name": "  New   name ", "reading_interval_min": "15",
                                          "overload_threshold_kw": "12.5", "alarm_amount_1": "80",
                                          "alarm_amount_2": "30.50", "hoarding_limit": "3000.00",
                                          "alarm_sms_number": "+86 138-0000-0000"})
    assert changed.name == "New name" and changed.reading_interval_s == 900
    assert changed.overload_threshold_kw == Decimal("12.50")
    assert (changed.alarm_amount_1_minor, changed.alarm_amount_2_minor, changed.hoarding_limit_minor) == \
        (8000, 3050, 300_000)
    assert changed.alarm_sms_number == "+8613800000000"


def test_absent_fields_keep_what_the_site_has_and_json_seconds_work() -> None:
    changed = site_with_defaults(site(), {"reading_interval_s": 60})
    assert changed == replace(site(), reading_interval_s=60)


@pytest.mark.parametrize(("values", "code", "field"), [
    ({"reading_interval_min": "0"}, "bad_interval", "reading_interval"),
    ({"reading_interval_min": "1441"}, "bad_interval", "reading_interval"),
    ({"reading_interval_s": 59}, "bad_interval", "reading_interval"),
    ({"reading_interval_min": "2.5"}, "bad_interval", "reading_interval"),
    ({"alarm_amount_1": "12.345"}, "bad_amount", "alarm_amount_1"),
    ({"alarm_amount_1": "-1"}, "bad_amount", "alarm_amount_1"),
    ({"alarm_amount_1": "lots"}, "bad_amount", "alarm_amount_1"),
    ({"alarm_amount_1": ""}, "required", "alarm_amount_1"),
    ({"alarm_amount_2": "99999999999"}, "bad_amount", "alarm_amount_2"),
    ({"hoarding_limit": "0"}, "hoarding_low", "alarm_amount_1"),
    ({"alarm_amount_1": "10", "alarm_amount_2": "20"}, "amounts_order", "alarm_amount_1"),
    ({"hoarding_limit": "50.00"}, "hoarding_low", "alarm_amount_1"),
    ({"overload_threshold_kw": "0"}, "bad_overload", "overload_threshold_kw"),
    ({"overload_threshold_kw": "655.36"}, "bad_overload", "overload_threshold_kw"),
    ({"overload_threshold_kw": "1.234"}, "bad_overload", "overload_threshold_kw"),
    ({"overload_threshold_kw": "NaN"}, "bad_overload", "overload_threshold_kw"),
    ({"alarm_sms_number": "call me"}, "bad_sms", "alarm_sms_number"),
    ({"name": ""}, "required", "name"),
    ({"name": "x" * 121}, "too_long", "name"),
])
def test_bad_defaults_are_refused_with_a_code_and_field(values: dict[str, object], code: str, field: str) -> None:
    with pytest.raises(SettingsInvalid) as refused:
        site_with_defaults(site(), values)
    assert (refused.value.code, refused.value.field, refused.value.status) == (code, field, 400)
    assert refused.value.message


def test_json_values_of_the_wrong_type_are_refused_not_crashed() -> None:
    for values in ({"alarm_amount_1": [1]}, {"alarm_amount_1": True}, {"overload_threshold_kw": {"kw": 1}},
                   {"reading_interval_s": "soon"}, {"name": ["x"]}):
        with pytest.raises(SettingsInvalid):
            site_with_defaults(site(), values)


def test_defaults_that_break_a_meters_overrides_are_refused_naming_the_meter() -> None:
    stricter = site(alarm_amount_2_minor=4000)
    fine = meter("m_fine", alarm_amount_1_minor=9000)
    broken = meter("m_low", 2, alarm_amount_1_minor=3000)
    meters_broken_by(stricter, [fine, meter("m_plain", 3)])
    with pytest.raises(SettingsInvalid) as refused:
        meters_broken_by(stricter, [fine, broken])
    assert refused.value.code == "meters_conflict" and refused.value.params["meters"] == "m_low"
    assert refused.value.params["reason_code"] == "amounts_order"


def test_parsers_of_single_values() -> None:
    assert parse_money(Decimal("12.5"), field="a", label="a") == 1250
    assert parse_money(" ", field="a", label="a", optional=True) is None
    assert parse_overload("") is None and parse_overload("7") == Decimal("7.00")
    assert parse_price("0.65") == Decimal("0.6500") and parse_price(None) is None
    for bad in ("0", "1000.0001", "0.12345", "free"):
        with pytest.raises(SettingsInvalid):
            parse_price(bad)
    assert parse_sms_number("") == "" and parse_sms_number("(0571) 8888 6666") == "057188886666"


def test_a_flat_tariff_from_the_default_price_is_a_valid_tariff_version() -> None:
    body = flat_tariff(Decimal("0.65"), datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    tariff = tariff_from_json(body)
    assert tariff.schedule is None and set(tariff.prices.as_tuple()) == {6500}


# -- a meter's overrides ------------------------------------------------------------------------------

def test_meter_overrides_blank_inherits_and_absent_keeps() -> None:
    own = meter_with_overrides(meter(), site(), {"alarm_amount_1": "90.00", "overload_threshold_kw": "5"})
    assert own.alarm_amount_1_minor == 9000 and own.overload_threshold_kw == Decimal("5.00")
    assert own.hoarding_limit_minor is None
    back = meter_with_overrides(own, site(), {"alarm_amount_1": "", "overload_threshold_kw": None})
    assert back.alarm_amount_1_minor is None and back.overload_threshold_kw is None
    kept = meter_with_overrides(own, site(), {"hoarding_limit": "600"})
    assert kept.alarm_amount_1_minor == 9000 and kept.hoarding_limit_minor == 60_000


def test_meter_overrides_are_checked_with_what_they_inherit() -> None:
    with pytest.raises(SettingsInvalid) as refused:
        meter_with_overrides(meter(), site(), {"alarm_amount_1": "10.00"})  # below the site's alarm 2 (20.00)
    assert refused.value.code == "amounts_order"
    with pytest.raises(SettingsInvalid) as low:
        meter_with_overrides(meter(), site(), {"hoarding_limit": "40.00"})  # not above the site's alarm 1
    assert low.value.code == "hoarding_low"


# -- buildings, units, collectors ------------------------------------------------------------------------

BLDG_A = Building(OP, SITE, "bldg_a", "Building A", ("B1", "1", "2"))
BLDG_B = Building(OP, SITE, "bldg_b", "Building B")


def test_floors_from_a_form_or_json() -> None:
    assert parse_floors("B1, 1 ,2，3") == ("B1", "1", "2", "3")
    assert parse_floors(["G", " 1 "]) == ("G", "1")
    assert parse_floors("") == ()
    with pytest.raises(SettingsInvalid, match="listed twice"):
        parse_floors("1, 2, 1")
    with pytest.raises(SettingsInvalid):
        parse_floors(",".join(str(n) for n in range(201)))


def test_building_names_are_unique_and_floors_in_use_stay() -> None:
    with pytest.raises(SettingsInvalid, match="exists already"):
        check_building(replace(BLDG_B, name=" building a "), [BLDG_A, BLDG_B], [])
    units = [Unit(OP, SITE, "u1", "bldg_a", "2", "A201")]
    check_building(replace(BLDG_A, floors=("1", "2")), [BLDG_A], units)
    with pytest.raises(SettingsRefused) as refused:
        check_building(replace(BLDG_A, floors=("B1", "1")), [BLDG_A], units)
    assert refused.value.code == "floor_in_use" and refused.value.status == 409


def test_units_need_a_known_building_and_floor_and_a_unique_number() -> None:
    existing = [Unit(OP, SITE, "u1", "bldg_a", "1", "A101")]
    unit = check_unit(Unit(OP, SITE, "u2", "bldg_a", "b1", "A-B1"), [BLDG_A, BLDG_B], existing)
    assert unit.floor == "B1"  # spelt as the building spells it
    assert check_unit(Unit(OP, SITE, "u3", "bldg_b", "anything", "B1"), [BLDG_A, BLDG_B], existing).floor == "anything"
    for bad, code in ((Unit(OP, SITE, "u4", "bldg_x", "1", "X1"), "unknown_building"),
                      (Unit(OP, SITE, "u4", "bldg_a", "9", "A901"), "unknown_floor"),
                      (Unit(OP, SITE, "u4", "bldg_a", "1", "a101"), "duplicate_unit")):
        with pytest.raises(SettingsInvalid) as refused:
            check_unit(bad, [BLDG_A, BLDG_B], existing)
        assert refused.value.code == code
    check_unit(existing[0], [BLDG_A], existing)  # itself is no duplicate


def test_removals_are_refused_while_something_depends_on_them() -> None:
    unit = Unit(OP, SITE, "unit_a", "bldg_a", "1", "A101")
    collector = Collector(OP, SITE, "coll_1", "Bus 1", Transport.RTU_OVER_TCP, "10.0.0.5", 502, "bldg_a")
    with pytest.raises(SettingsRefused, match="unit A101 is still supplied by meters m1"):
        unit_removable(unit, [meter()])
    with pytest.raises(SettingsRefused, match="1 units and 1 collectors"):
        building_removable(BLDG_A, [unit], [collector])
    with pytest.raises(SettingsRefused, match="carries meters m1"):
        collector_removable(collector, [meter()], None)
    with pytest.raises(SettingsRefused, match=r"gateway bridge op\.gw"):
        collector_removable(collector, [], "op.gw")
    unit_removable(unit, [])
    building_removable(BLDG_B, [unit], [collector])
    collector_removable(collector, [], None)


@pytest.mark.parametrize(("transport", "host", "port", "ok"), [
    (Transport.RTU_OVER_TCP, "10.0.0.5", "502", ("10.0.0.5", 502)),
    (Transport.MODBUS_TCP, "collector-1.site.local", 5020, ("collector-1.site.local", 5020)),
    (Transport.MODBUS_TCP, "fe80::1", "502", ("fe80::1", 502)),
    (Transport.SERIAL, "/dev/ttyUSB0", "", ("/dev/ttyUSB0", 0)),
    (Transport.RTU_OVER_TCP, "bad host", "502", None),
    (Transport.RTU_OVER_TCP, "10.0.0.5", "0", None),
    (Transport.RTU_OVER_TCP, "10.0.0.5", "65536", None),
    (Transport.RTU_OVER_TCP, "10.0.0.5", "", None),
    (Transport.SERIAL, "10.0.0.5", "", None),
])
def test_collector_endpoints(transport: Transport, host: str, port: object, ok: tuple[str, int] | None) -> None:
    if ok is None:
        with pytest.raises(SettingsInvalid):
            parse_endpoint(transport, host, port)
    else:
        assert parse_endpoint(transport, host, port) == ok


def test_the_log_snapshot_is_plain_json() -> None:
    shot = snapshot(meter(overload_threshold_kw=Decimal("2.50")))
    assert shot["billing_mode"] == "prepaid" and shot["overload_threshold_kw"] == "2.50"
    assert "operator_id" not in shot and shot["alarm_amount_1_minor"] is None
    assert snapshot(BLDG_A)["floors"] == ["B1", "1", "2"]


# -- one meter by the import's rules ----------------------------------------------------------------------

def context(meters: list[Meter], elsewhere: list[Meter] | None = None) -> SiteContext:
    models = {"DTSY1352": ModelInfo("DTSY1352", True), "ACR": ModelInfo("ACR", False)}
    units = [Unit(OP, SITE, "unit_a", "bldg_a", "1", "A101"), Unit(OP, SITE, "unit_b", "bldg_b", "1", "A101")]
    collectors = [Collector(OP, SITE, "coll_1", "Bus 1", Transport.RTU_OVER_TCP, "h", 1),
                  Collector(OP, SITE, "coll_2", "Bus 2", Transport.RTU_OVER_TCP, "h", 2)]
    return SiteContext(OP, SITE, [BLDG_A, BLDG_B], units, collectors, meters, meters + (elsewhere or []),
                       lambda text: models.get(text.strip().upper()), sorted(models))


GOOD = {"meter_id": "m_new", "serial": "SN-NEW", "model": "dtsy1352", "collector_id": "coll_1", "address": "5",
        "unit_id": "unit_b", "ct_ratio": "200/5", "billing_mode": ""}


def test_a_good_meter_comes_out_as_the_import_would_make_it() -> None:
    made = checked_meter(GOOD, context([meter()]))
    assert (made.meter_id, made.model, made.address, made.unit_id, made.ct_ratio) == ("m_new", "DTSY1352", 5,
                                                                                       "unit_b", 40)
    assert made.billing_mode is BillingMode.PREPAID_METER


@pytest.mark.parametrize(("changes", "code", "field"), [
    ({"address": "1"}, "address_taken", "address"),
    ({"address": "248"}, "bad_address", "address"),
    ({"model": "XYZ-9"}, "unknown_model", "model"),
    ({"unit_id": "unit_zz"}, "unknown_unit", "unit_id"),
    ({"collector_id": "coll_9"}, "unknown_collector", "collector_id"),
    ({"meter_id": "m1"}, "meter_id_taken", "meter_id"),
    ({"meter_id": "bad id!"}, "bad_meter_id", "meter_id"),
    ({"serial": "SN-m_far"}, "serial_taken", "serial"),
    ({"model": "ACR", "billing_mode": "prepaid"}, "model_not_prepaid", "billing_mode"),
    ({"ct_ratio": "7/2"}, "bad_ct_ratio", "ct_ratio"),
    ({"serial": ""}, "required", "serial"),
])
def test_a_bad_meter_gets_the_imports_problem_on_its_field(changes: dict[str, str], code: str, field: str) -> None:
    with pytest.raises(MeterInvalid) as invalid:
        checked_meter({**GOOD, **changes}, context([meter()], [meter("m_far", site_id="site_2")]))
    problems = invalid.value.as_json()
    assert (problems[0]["code"], problems[0]["field"]) == (code, field)
    assert invalid.value.field == field and invalid.value.status == 400


def test_a_full_bus_refuses_the_33rd_meter() -> None:
    full = [meter(f"m{n}", n) for n in range(1, 33)]
    with pytest.raises(MeterInvalid) as invalid:
        checked_meter({**GOOD, "address": "40"}, context(full))
    assert invalid.value.problems[0].code == "bus_full"
    assert checked_meter({**GOOD, "address": "40", "collector_id": "coll_2"}, context(full)).collector_id == "coll_2"


def test_editing_a_meter_keeps_its_id_and_overrides_and_may_keep_its_own_address() -> None:
    mine = meter("m1", 1, alarm_amount_1_minor=7000)
    others = [meter("m2", 2)]
    moved = checked_meter({"address": "3", "unit_id": "unit_b"}, context(others), existing=mine)
    assert (moved.meter_id, moved.address, moved.unit_id, moved.alarm_amount_1_minor) == ("m1", 3, "unit_b", 7000)
    assert checked_meter({}, context(others), existing=mine) == mine
    with pytest.raises(MeterInvalid):
        checked_meter({"address": "2"}, context(others), existing=mine)
