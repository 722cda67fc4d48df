"""Balance alarms: levels raised at or below their thresholds, cleared only past the hysteresis band."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.alarms import (
    AlarmKind,
    AlarmPolicy,
    AlarmState,
    BalanceSource,
    BalanceThresholds,
    EventKind,
    HysteresisBand,
    Severity,
    Subject,
    SubjectKind,
    evaluate_meter,
    observe_reading,
    observe_silence,
)
from chalicelib.domain.errors import ValidationError
from tests.unit.alarms.builders import NOW, POLICY, at, balance_walk, described, flat, reading, walk


def test_a_balance_hovering_at_the_threshold_raises_once() -> None:
    _, steps = balance_walk([6000, 5000, 5001, 4999, 5060, 5000, 5100, 4990])
    assert described(flat(steps)) == [("raised", "alarm-1")]
    assert steps[1] and not any(steps[2:])


def test_clearing_needs_the_balance_above_threshold_plus_band() -> None:
    state, steps = balance_walk([6000, 4000, 5100, 5101])
    assert described(steps[2]) == []  # at threshold + band: still inside the band
    assert described(steps[3]) == [("cleared", "alarm-1")]
    assert state is not None and state.active == ()


@pytest.mark.parametrize(("threshold", "width"), [(0, 100), (5000, 100), (10_000, 100), (50_000, 500),
                                                  (12_345, 124), (-20_000, 200)])
def test_the_band_is_one_percent_with_a_floor_of_one_unit(threshold: int, width: int) -> None:
    assert HysteresisBand().width(threshold) == width


def test_the_band_is_configurable() -> None:
    band = HysteresisBand(basis_points=500, minimum_minor=0)
    assert band.width(0) == 0
    assert band.width(5000) == 250
    _, steps = balance_walk([6000, 4000, 5250, 5251], AlarmPolicy(POLICY.thresholds, band))
    assert described(flat(steps)) == [("raised", "alarm-1"), ("cleared", "alarm-1")]
    with pytest.raises(ValidationError):
        HysteresisBand(basis_points=-1)


def test_fine_to_arrears_in_one_step_raises_all_three_in_order() -> None:
    state, steps = balance_walk([10_000, -250])
    assert described(steps[1]) == [("raised", "alarm-1"), ("raised", "alarm-2"), ("raised", "arrears")]
    assert [e.alarm.level for e in steps[1]] == [Severity.NOTICE, Severity.WARNING, Severity.CRITICAL]
    assert all(e.alarm.raised_at == at(1) and e.alarm.evidence["balance_minor"] == -250 for e in steps[1])
    assert state is not None and [a.kind for a in state.active] == list(AlarmKind)[:3]


def test_arrears_is_raised_at_exactly_zero() -> None:
    _, steps = balance_walk([2500, 0])
    assert described(steps[1]) == [("raised", "alarm-2"), ("raised", "arrears")]


def test_a_purchase_clears_the_levels_worst_first() -> None:
    state, steps = balance_walk([10_000, -250, 30_000])
    assert described(steps[2]) == [("cleared", "arrears"), ("cleared", "alarm-2"), ("cleared", "alarm-1")]
    assert all(e.alarm.cleared_at == at(2) and e.evidence["balance_minor"] == 30_000 for e in steps[2])
    assert state is not None and state.active == ()


def test_a_small_purchase_clears_only_the_levels_it_lifts_past() -> None:
    state, steps = balance_walk([10_000, -250, 3000])
    assert described(steps[2]) == [("cleared", "arrears"), ("cleared", "alarm-2")]
    assert state is not None and [a.kind for a in state.active] == [AlarmKind.ALARM_1]


def test_a_re_raise_after_a_proper_clear_is_a_new_alarm() -> None:
    _, steps = balance_walk([6000, 4000, 9000, 4000])
    first, again = steps[1][0].alarm, steps[3][0].alarm
    assert first.kind == again.kind == AlarmKind.ALARM_1
    assert first.alarm_id != again.alarm_id


def test_the_ledger_balance_serves_a_cloud_billed_account() -> None:
    plain = reading(0, energy="120.00")  # a plain meter has no remaining-amount register
    _, steps = walk([observe_reading(plain, ledger_balance_minor=1500),
                     observe_silence("m-1", at(1), 1, ledger_balance_minor=80_000)])
    assert described(steps[0]) == [("raised", "alarm-1"), ("raised", "alarm-2")]
    assert steps[0][0].alarm.evidence["source"] == BalanceSource.LEDGER
    assert described(steps[1]) == [("cleared", "alarm-2"), ("cleared", "alarm-1")]  # a purchase while silent


def test_the_ledger_balance_wins_over_the_meter_register() -> None:
    observation = observe_reading(reading(0, balance=90_000), ledger_balance_minor=1000)
    assert (observation.balance_minor, observation.balance_source) == (1000, BalanceSource.LEDGER)
    assert observe_reading(reading(0, balance=90_000)).balance_source == BalanceSource.METER
    assert observe_reading(reading(0)).balance_source is None


def test_a_silent_prepaid_meter_keeps_its_balance_alarms() -> None:
    state, steps = walk([observe_reading(reading(0, balance=1000)), observe_silence("m-1", at(1), 1)])
    assert steps[1] == []
    assert state is not None and len(state.active) == 2


def test_without_thresholds_there_are_no_balance_alarms() -> None:
    _, steps = balance_walk([10_000, -500], AlarmPolicy())
    assert flat(steps) == []


def test_thresholds_are_ordered_integer_minor_units() -> None:
    with pytest.raises(ValidationError):
        BalanceThresholds(alarm_1_minor=1000, alarm_2_minor=2000)
    with pytest.raises(ValidationError):
        BalanceThresholds(alarm_1_minor=1000, alarm_2_minor=500, arrears_minor=600)
    with pytest.raises(TypeError):
        BalanceThresholds(alarm_1_minor=50.0, alarm_2_minor=20)  # type: ignore[arg-type]
    assert BalanceThresholds(1000, 1000).threshold(AlarmKind.ALARM_2) == 1000


def test_equal_alarm_amounts_raise_both_levels_together() -> None:
    _, steps = balance_walk([5000, 1000], AlarmPolicy(BalanceThresholds(1000, 1000)))
    assert described(steps[1]) == [("raised", "alarm-1"), ("raised", "alarm-2")]


def test_a_late_or_repeated_observation_changes_nothing() -> None:
    state, _ = balance_walk([10_000, 1000])
    assert state is not None
    for stale in (reading(1, balance=90_000), reading(0, balance=90_000)):
        again, events = evaluate_meter(state, observe_reading(stale), POLICY, NOW)
        assert (again, events) == (state, [])


def test_a_bridge_clock_ahead_does_not_date_alarms_in_the_future() -> None:
    now = at(1) + timedelta(minutes=5)
    state, events = evaluate_meter(None, observe_reading(reading(3, balance=100)), POLICY, now)
    assert {e.alarm.raised_at for e in events} == {now}
    assert state.observed_at == now


def test_the_arrears_evidence_says_whether_the_relay_is_open() -> None:
    _, steps = walk([observe_reading(reading(0, balance=-10, relay_open=True))])
    assert steps[0][-1].alarm.kind == AlarmKind.ARREARS
    assert steps[0][-1].alarm.evidence == {"balance_minor": -10, "threshold_minor": 0, "source": "meter",
                                           "relay_open": True}


def test_another_subjects_state_is_refused() -> None:
    other = AlarmState(Subject(SubjectKind.METER, "m-2"))
    with pytest.raises(ValidationError):
        evaluate_meter(other, observe_reading(reading(0, balance=100)), POLICY, NOW)


def test_events_carry_records_to_store_by_id() -> None:
    _, steps = balance_walk([10_000, 1000, 10_000])
    raised, cleared = steps[1][0], steps[2][-1]
    assert raised.kind is EventKind.RAISED and cleared.kind is EventKind.CLEARED
    assert raised.alarm.alarm_id == cleared.alarm.alarm_id
    assert raised.alarm.cleared_at is None and cleared.alarm.cleared_at == at(2)
