"""Tamper hints: energy going backwards, a meter reset, a purchase count with no sale behind it."""

from __future__ import annotations

from chalicelib.domain.alarms import AlarmKind, acknowledge, observe_reading
from tests.unit.alarms.builders import NOW, at, described, flat, reading, walk


def test_energy_going_backwards_is_a_hint_that_stays_until_acknowledged() -> None:
    energies = ["1000.00", "1000.40", "999.50", "1001.00", "998.00"]
    state, steps = walk([observe_reading(reading(i, energy=e, count=4)) for i, e in enumerate(energies)])
    assert [described(events) for events in steps] == [[], [], [("raised", "energy-backwards")], [], []]
    assert steps[2][0].alarm.evidence == {"energy_before_kwh": "1000.40", "energy_now_kwh": "999.50",
                                          "purchase_count_before": 4, "purchase_count_now": 4,
                                          "registers": "energy_total"}
    assert state is not None
    state, events = acknowledge(state, steps[2][0].alarm.alarm_id, "ops", NOW)
    assert described(events) == [("acknowledged", "energy-backwards"), ("cleared", "energy-backwards")]
    assert state.active == ()


def test_energy_moving_forward_or_standing_still_is_no_hint() -> None:
    energies = ["1000.00", "1000.00", "1000.01", "1250.00"]
    _, steps = walk([observe_reading(reading(i, energy=e, count=4)) for i, e in enumerate(energies)])
    assert flat(steps) == []


def test_a_rate_register_going_backwards_is_a_hint_even_when_the_total_grows() -> None:
    first = reading(0, energy="100", rates=("10", "40", "30", "20"))
    second = reading(1, energy="101", rates=("10", "39", "32", "20"))
    _, steps = walk([observe_reading(first), observe_reading(second)])
    assert described(steps[1]) == [("raised", "energy-backwards")]
    assert steps[1][0].alarm.evidence["registers"] == "energy_peak"


def test_the_first_reading_has_nothing_to_compare_to() -> None:
    _, steps = walk([observe_reading(reading(0, energy="0.00", count=0))])
    assert steps == [[]]


def test_a_meter_reset_is_told_apart_from_energy_going_backwards() -> None:
    before = observe_reading(reading(0, energy="15230.55", count=12), expected_purchase_count=12)
    after = observe_reading(reading(1, energy="0.20", count=0), expected_purchase_count=12)
    _, steps = walk([before, after])
    assert described(steps[1]) == [("raised", "meter-reset")]
    assert steps[1][0].alarm.evidence["purchase_count_before"] == 12


def test_a_plain_meter_without_counters_is_judged_on_energy_alone() -> None:
    _, steps = walk([observe_reading(reading(0, energy="500")), observe_reading(reading(1, energy="0"))])
    assert described(steps[1]) == [("raised", "meter-reset")]


def test_energy_wiped_with_counters_intact_or_from_a_low_start_is_not_a_reset() -> None:
    intact = [observe_reading(reading(0, energy="800", count=7)), observe_reading(reading(1, energy="0.5", count=7))]
    low = [observe_reading(reading(0, energy="50", count=0)), observe_reading(reading(1, energy="0.5", count=0))]
    for series in (intact, low):
        _, steps = walk(series)
        assert described(steps[1]) == [("raised", "energy-backwards")]


def test_a_purchase_count_ahead_of_the_ledger_is_a_hint_until_the_ledger_agrees() -> None:
    observations = [observe_reading(reading(0, count=5), expected_purchase_count=5),
                    observe_reading(reading(1, count=6), expected_purchase_count=5),
                    observe_reading(reading(2, count=6), expected_purchase_count=5),
                    observe_reading(reading(3, count=6), expected_purchase_count=6)]
    _, steps = walk(observations)
    assert [described(events) for events in steps] == [
        [], [("raised", "purchase-count-mismatch")], [], [("cleared", "purchase-count-mismatch")]]
    assert steps[1][0].alarm.evidence == {"meter_purchase_count": 6, "expected_purchase_count": 5}


def test_a_normal_purchase_with_its_sale_is_no_hint() -> None:
    observations = [observe_reading(reading(0, count=5, balance=1000), expected_purchase_count=5),
                    observe_reading(reading(1, count=6, balance=60_000), expected_purchase_count=6)]
    state, steps = walk(observations)
    assert AlarmKind.PURCHASE_COUNT_MISMATCH not in {e.alarm.kind for e in flat(steps)}
    assert state is not None and state.active == ()


def test_a_sale_still_on_its_way_to_the_meter_is_no_hint() -> None:
    _, steps = walk([observe_reading(reading(0, count=5), expected_purchase_count=6)])
    assert steps == [[]]


def test_without_the_ledgers_count_the_purchase_count_is_not_judged() -> None:
    _, steps = walk([observe_reading(reading(0, count=5)), observe_reading(reading(1, count=9))])
    assert flat(steps) == []


def test_a_partial_read_keeps_the_last_known_registers_for_comparison() -> None:
    observations = [observe_reading(reading(0, energy="900", count=3)), observe_reading(reading(1, balance=100)),
                    observe_reading(reading(2, energy="850", count=3))]
    _, steps = walk(observations)
    assert ("raised", "energy-backwards") in described(steps[2])
    assert at(2) == steps[2][-1].at
