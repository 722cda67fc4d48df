"""Lost contact of a meter (missed cycles) and of a collector (silence), and overload."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.alarms import (
    AlarmKind,
    AlarmPolicy,
    Severity,
    evaluate_collector,
    observe_reading,
    observe_silence,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.meter_state import StatusBit
from tests.unit.alarms.builders import T0, at, described, reading, walk


@pytest.mark.parametrize("lost_after", [1, 3, 5])
def test_a_meter_is_lost_after_exactly_n_missed_cycles_and_recovers(lost_after: int) -> None:
    policy = AlarmPolicy(lost_after_missed_cycles=lost_after)
    silent = [observe_silence("m-1", at(n), n) for n in range(1, lost_after + 3)]
    state, steps = walk([observe_reading(reading(0, energy="10")), *silent,
                         observe_reading(reading(lost_after + 3, energy="10"))], policy)
    raised_at = [i for i, events in enumerate(steps) if described(events) == [("raised", "meter-lost-contact")]]
    assert raised_at == [lost_after]  # step n is the n-th missed cycle
    assert described(steps[-1]) == [("cleared", "meter-lost-contact")]
    assert sum(len(events) for events in steps) == 2
    lost = steps[lost_after][0].alarm
    assert lost.evidence == {"missed_cycles": lost_after} and lost.level is Severity.WARNING
    assert state is not None and state.active == ()


def test_the_default_is_the_boards_three_cycles() -> None:
    _, steps = walk([observe_silence("m-1", at(n), n) for n in (1, 2, 3)])
    assert [bool(events) for events in steps] == [False, False, True]


def test_lost_contact_needs_at_least_one_cycle() -> None:
    with pytest.raises(ValidationError):
        AlarmPolicy(lost_after_missed_cycles=0)


def test_a_collector_is_lost_after_the_configured_silence_and_recovers() -> None:
    policy = AlarmPolicy(collector_lost_after=timedelta(minutes=20))
    state, events = evaluate_collector(None, "c-1", T0, policy, T0 + timedelta(minutes=19, seconds=59))
    assert events == []
    state, events = evaluate_collector(state, "c-1", T0, policy, T0 + timedelta(minutes=20))
    assert described(events) == [("raised", "collector-lost-contact")]
    assert events[0].alarm.level is Severity.CRITICAL
    assert events[0].alarm.evidence == {"last_heard_at": T0.isoformat(), "silent_seconds": 1200}
    state, events = evaluate_collector(state, "c-1", T0, policy, T0 + timedelta(hours=3))
    assert events == []  # still lost: no second raise
    heard = T0 + timedelta(hours=3, minutes=1)
    state, events = evaluate_collector(state, "c-1", heard, policy, heard + timedelta(seconds=30))
    assert described(events) == [("cleared", "collector-lost-contact")]
    assert state.active == ()


def test_the_collector_default_matches_the_bridge_presence_rule() -> None:
    _, events = evaluate_collector(None, "c-1", T0, AlarmPolicy(), T0 + timedelta(minutes=15))
    assert described(events) == [("raised", "collector-lost-contact")]
    with pytest.raises(ValidationError):
        AlarmPolicy(collector_lost_after=timedelta(0))


def test_the_overload_trip_bit_raises_overload() -> None:
    tripped = reading(0, power="0", bits=1 << StatusBit.OVERLOAD_TRIP)
    _, steps = walk([observe_reading(tripped), observe_reading(reading(1, power="0"))])
    assert described(steps[0]) == [("raised", "overload")]
    assert steps[0][0].alarm.evidence == {"overload_trip_bit": True, "power_kw": "0", "threshold_kw": None}
    assert described(steps[1]) == [("cleared", "overload")]


def test_power_over_the_threshold_raises_and_must_fall_clearly_below_to_clear() -> None:
    policy = AlarmPolicy(overload_kw=Decimal("20"))
    powers = ["19.9", "20.5", "19.5", "18.1", "20.0", "17.9"]
    _, steps = walk([observe_reading(reading(i, power=p)) for i, p in enumerate(powers)], policy)
    assert [described(events) for events in steps] == [
        [], [("raised", "overload")], [], [], [], [("cleared", "overload")]]


def test_no_threshold_and_no_bit_means_no_overload() -> None:
    _, steps = walk([observe_reading(reading(0, power="999"))])
    assert steps == [[]]
    with pytest.raises(ValidationError):
        AlarmPolicy(overload_clear_ratio=Decimal("1.5"))


def test_a_meter_back_in_contact_is_judged_on_its_reading() -> None:
    silent = [observe_silence("m-1", at(n), n) for n in (1, 2, 3)]
    state, steps = walk([*silent, observe_reading(reading(4, balance=-100))])
    assert described(steps[-1]) == [("cleared", "meter-lost-contact"), ("raised", "alarm-1"),
                                    ("raised", "alarm-2"), ("raised", "arrears")]
    assert state is not None and AlarmKind.METER_LOST not in {a.kind for a in state.active}
