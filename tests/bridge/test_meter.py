"""The meter model behaves like the prepaid meters of METER.md."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal as D

import pytest
from gateway_bridge.simulator.meter import WMS_PER_KWH, Meter, MeterState, Mode, Status
from gateway_bridge.simulator.tou import TouError, TouPlan

PRICES = {"sharp": D("1.2000"), "peak": D("0.9000"), "flat": D("0.6000"), "valley": D("0.3000")}
PLAN = TouPlan.from_mapping({"00:00": "valley", "08:00": "flat", "10:00": "peak", "18:00": "sharp"})


def prepaid(balance: str = "100.00", **changes: object) -> Meter:
    state = MeterState(serial="T-1", clock=datetime(2026, 3, 2, 7, 0), balance=D(balance), purchase_count=5,
                       total_purchased=D("500.00"), alarm_amount_1=D("50.00"), alarm_amount_2=D("20.00"),
                       hoarding_limit=D("1000.00"), prices=dict(PRICES))
    for name, value in changes.items():
        setattr(state, name, value)
    return Meter(state, prepaid=True, phases=3, tou=PLAN)


# -- purchase and refund ------------------------------------------------------------------------------


def test_purchase_with_next_count_adds_and_increments() -> None:
    meter = prepaid("100.00")
    assert meter.purchase(D("50.00"), 6)
    assert (meter.remaining_amount, meter.state.purchase_count, meter.state.total_purchased) == (
        D("150.00"), 6, D("550.00"))


@pytest.mark.parametrize("count", [5, 4, 7, 0, 600])
def test_purchase_with_wrong_or_repeated_count_changes_nothing(count: int) -> None:
    meter = prepaid("100.00")
    before = copy.deepcopy(meter.state)
    assert not meter.purchase(D("50.00"), count)
    assert meter.state == before


def test_repeating_a_delivered_purchase_is_refused() -> None:
    meter = prepaid("100.00")
    assert meter.purchase(D("10.00"), 6)
    assert not meter.purchase(D("10.00"), 6)  # the lost-acknowledgement retry: meter already at 6
    assert meter.remaining_amount == D("110.00")


def test_hoarding_limit() -> None:
    meter = prepaid("900.00")
    assert not meter.purchase(D("100.01"), 6)
    assert meter.purchase(D("100.00"), 6)  # exactly at the limit is allowed
    assert meter.remaining_amount == D("1000.00")


def test_arrears_are_deducted_from_the_next_purchase() -> None:
    meter = prepaid("-15.50")
    assert meter.purchase(D("20.00"), 6)
    assert meter.remaining_amount == D("4.50")


def test_zero_amount_is_refused() -> None:
    assert not prepaid().purchase(D("0.00"), 6)


def test_refund_rules() -> None:
    meter = prepaid("30.00")
    before = copy.deepcopy(meter.state)
    assert not meter.refund(D("30.01"), 6)  # balance does not cover it
    assert not meter.refund(D("10.00"), 5)  # wrong count
    assert meter.state == before
    assert meter.refund(D("30.00"), 6)
    assert (meter.remaining_amount, meter.state.purchase_count) == (D("0.00"), 6)
    assert meter.state.total_purchased == D("500.00")
    assert not meter.refund(D("1.00"), 7)


def test_plain_meter_has_no_prepaid_function() -> None:
    meter = Meter(MeterState(serial="P", clock=datetime(2026, 1, 1), load_kw=D(5)), prepaid=False)
    assert not meter.purchase(D(1), 1) and not meter.set_mode(2)
    assert not meter.relay_open and meter.status == Status(0)
    meter.advance(3600)
    assert meter.energy_kwh() == D("5.00")


# -- relay ---------------------------------------------------------------------------------------------


def test_relay_per_mode() -> None:
    meter = prepaid("0.00")
    assert meter.relay_open  # prepaid control: zero opens
    meter.set_mode(Mode.KEEP_POWER)
    assert not meter.relay_open
    meter.set_balance(D("100"))
    meter.set_mode(Mode.FORCED_TRIP)
    assert meter.relay_open
    meter.set_mode(Mode.PREPAID)
    assert not meter.relay_open
    assert not meter.set_mode(3)


def test_relay_closes_when_a_purchase_lifts_balance_above_zero() -> None:
    meter = prepaid("-2.00")
    assert meter.relay_open
    assert meter.purchase(D("2.00"), 6)
    assert meter.relay_open  # exactly zero is still no credit
    assert meter.purchase(D("0.01"), 7)
    assert not meter.relay_open


def test_overload_opens_the_relay_in_any_mode() -> None:
    meter = prepaid("100", overload_threshold_kw=D("10.00"))
    meter.set_load(D("10.000"))
    assert not meter.relay_open
    meter.set_load(D("10.001"))
    assert meter.relay_open and Status.OVERLOAD in meter.status
    meter.set_mode(Mode.KEEP_POWER)
    assert meter.relay_open
    meter.advance(600)
    assert meter.energy_kwh() == 0  # nothing flows through an open relay
    meter.set_load(D("2"))
    assert not meter.relay_open and Status.OVERLOAD not in meter.status


# -- alarms --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("balance", "bits"), [
    ("50.01", Status(0)),
    ("50.00", Status.ALARM_1),
    ("20.00", Status.ALARM_1 | Status.ALARM_2),
    ("0.01", Status.ALARM_1 | Status.ALARM_2),
    ("0.00", Status.ALARM_1 | Status.ALARM_2 | Status.EXHAUSTED),
    ("-3.00", Status.ALARM_1 | Status.ALARM_2 | Status.EXHAUSTED),
])
def test_alarm_bits_follow_balance(balance: str, bits: Status) -> None:
    assert prepaid(balance).status == bits


# -- energy and money over time -------------------------------------------------------------------------


def test_tou_accumulation_across_a_rate_boundary() -> None:
    meter = prepaid("100.00", load_kw=D("6"))  # 07:00, valley until 08:00, then flat
    meter.advance(2 * 3600)
    assert meter.energy_kwh("valley") == D("6.00")
    assert meter.energy_kwh("flat") == D("6.00")
    assert meter.energy_kwh() == D("12.00")
    assert meter.remaining_amount == D("100.00") - D("6") * D("0.3") - D("6") * D("0.6")
    assert meter.state.clock == datetime(2026, 3, 2, 9, 0)


def test_many_small_steps_equal_one_big_step() -> None:
    one, many = prepaid("100", load_kw=D("3.333")), prepaid("100", load_kw=D("3.333"))
    one.advance(5400)
    for _ in range(5400):
        many.advance(D("1"))
    assert one.state == many.state  # integer watt-ms and exact Decimals: no drift


def test_credit_runs_out_at_zero_and_relay_opens() -> None:
    meter = prepaid("1.00", load_kw=D("10"))  # valley: 0.003 per 0.01 kWh step
    meter.advance(3600)
    assert meter.relay_open
    # After 331 steps the balance is 0.007, shown as 0.00: the relay opens there, not an hour later.
    assert meter.state.balance == D("0.007") and meter.remaining_amount == D("0.00")
    assert meter.energy_kwh("valley") == D("3.31")
    assert meter.electrical().power_kw == 0


def test_keep_power_runs_into_arrears() -> None:
    meter = prepaid("1.00", load_kw=D("10"), control_mode=Mode.KEEP_POWER)
    meter.advance(3600)
    assert not meter.relay_open
    assert meter.remaining_amount == D("1.00") - D("3.00")
    assert Status.EXHAUSTED in meter.status


def test_partial_energy_is_remembered_between_steps() -> None:
    meter = prepaid("100", load_kw=D("0.036"))  # 36 W: one 0.01 kWh step every 1000 s
    meter.advance(999)
    assert meter.energy_kwh() == 0 and meter.remaining_amount == D("100.00")
    meter.advance(1)
    assert meter.energy_kwh() == D("0.01")
    assert meter.state.balance == D("100") - D("0.003")


def test_electrical_measurements() -> None:
    meter = prepaid("100", load_kw=D("6.9"))
    now = meter.electrical()
    assert now.power_kw == D("6.9") and now.voltage == D(230)
    assert now.apparent_kva == D("6.9") / D("0.95")
    assert now.current.quantize(D("0.01")) == D("10.53")  # per phase of three


def test_time_only_moves_forward() -> None:
    with pytest.raises(ValueError):
        prepaid().advance(-1)
    with pytest.raises(ValueError):
        prepaid().set_load(D(-1))


def test_energy_state_is_integer_watt_ms() -> None:
    meter = prepaid("100", load_kw=D("1"))
    meter.advance(D("3600"))
    assert sum(meter.state.energy_wms.values()) == WMS_PER_KWH


# -- time-of-use plan ---------------------------------------------------------------------------------


def test_tou_plan_wraps_past_midnight() -> None:
    plan = TouPlan.from_mapping({"08:00": "flat", "22:00": "valley"})
    assert plan.rate_at(datetime(2026, 1, 1, 3, 0)) == "valley"
    assert plan.rate_at(datetime(2026, 1, 1, 8, 0)) == "flat"
    assert plan.ms_to_next_switch(datetime(2026, 1, 1, 23, 0)) == 9 * 3_600_000
    assert plan.as_mapping() == {"08:00": "flat", "22:00": "valley"}


@pytest.mark.parametrize("bad", [{}, {"8:00": "flat"}, {"24:00": "flat"}, {"08:00": "cheap"}])
def test_tou_plan_validation(bad: dict[str, str]) -> None:
    with pytest.raises(TouError):
        TouPlan.from_mapping(bad)
