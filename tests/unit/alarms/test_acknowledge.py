"""Acknowledgement: who and when, once, only while the alarm is active; a latched hint clears with it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.alarms import Alarm, AlarmKind, AlarmState, EventKind, acknowledge, observe_reading
from chalicelib.domain.errors import Conflict, ValidationError
from tests.unit.alarms.builders import NOW, at, balance_walk, described, reading, walk


def low_balance_state() -> tuple[AlarmState, Alarm]:
    state, steps = balance_walk([10_000, 4000])
    assert state is not None
    return state, steps[1][0].alarm


def test_acknowledging_records_who_and_when_and_leaves_the_alarm_active() -> None:
    state, alarm = low_balance_state()
    state, events = acknowledge(state, alarm.alarm_id, "  li.wei ", at(2))
    assert [e.kind for e in events] == [EventKind.ACKNOWLEDGED]
    done = events[0].alarm
    assert (done.acknowledged_by, done.acknowledged_at, done.cleared_at) == ("li.wei", at(2), None)
    assert state.alarm(AlarmKind.ALARM_1) == done


def test_the_acknowledgement_survives_the_clear() -> None:
    state, alarm = low_balance_state()
    state, _ = acknowledge(state, alarm.alarm_id, "li.wei", at(2))
    _, events = walk([observe_reading(reading(3, balance=20_000))], state=state)
    assert described(events[0]) == [("cleared", "alarm-1")]
    assert events[0][0].alarm.acknowledged_by == "li.wei"


def test_an_alarm_is_acknowledged_once() -> None:
    state, alarm = low_balance_state()
    state, _ = acknowledge(state, alarm.alarm_id, "li.wei", at(2))
    with pytest.raises(Conflict, match=r"already acknowledged by li\.wei"):
        acknowledge(state, alarm.alarm_id, "zhang.san", at(3))


def test_a_cleared_alarm_cannot_be_acknowledged() -> None:
    _, steps = balance_walk([10_000, 4000, 20_000])
    cleared = steps[2][0].alarm
    with pytest.raises(Conflict, match="already cleared"):
        cleared.acknowledged("li.wei", NOW)
    state, _ = balance_walk([10_000, 4000, 20_000])
    assert state is not None
    with pytest.raises(Conflict, match="cleared or never raised"):
        acknowledge(state, cleared.alarm_id, "li.wei", NOW)


def test_someone_must_be_named_and_the_time_must_make_sense() -> None:
    state, alarm = low_balance_state()
    with pytest.raises(ValidationError):
        acknowledge(state, alarm.alarm_id, "   ", at(2))
    with pytest.raises(ValidationError):
        acknowledge(state, alarm.alarm_id, "li.wei", alarm.raised_at - timedelta(seconds=1))


def test_after_acknowledging_a_latched_hint_a_new_step_back_raises_again() -> None:
    energies = ["500", "400", "450", "300"]
    state, steps = walk([observe_reading(reading(i, energy=e)) for i, e in enumerate(energies[:2])])
    assert state is not None
    first = steps[1][0].alarm
    state, _ = acknowledge(state, first.alarm_id, "ops", at(1))
    _, later = walk([observe_reading(reading(i, energy=e)) for i, e in enumerate(energies[2:], start=2)],
                    state=state)
    assert [described(events) for events in later] == [[], [("raised", "energy-backwards")]]
    assert later[1][0].alarm.alarm_id != first.alarm_id
