"""Properties over random walks: no level is raised twice without a clear, levels nest, the band holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.alarms import (
    BALANCE_LEVELS,
    AlarmEvent,
    AlarmKind,
    AlarmPolicy,
    AlarmState,
    BalanceThresholds,
    EventKind,
    HysteresisBand,
    MeterObservation,
    evaluate_meter,
    observe_reading,
    observe_silence,
)
from chalicelib.domain.notifications import (
    Contact,
    Language,
    NotificationPolicy,
    PlannedMessage,
    Recipients,
    plan_notifications,
)
from tests.unit.alarms.builders import NOW, at, reading

balances = st.lists(st.integers(min_value=-20_000, max_value=20_000), min_size=1, max_size=60)
UTC_ZONE = ZoneInfo("UTC")
bands = st.builds(HysteresisBand, st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=500))


@st.composite
def thresholds(draw: st.DrawFn) -> BalanceThresholds:
    arrears = draw(st.integers(min_value=-3000, max_value=0))
    alarm_2 = draw(st.integers(min_value=arrears, max_value=8000))
    return BalanceThresholds(draw(st.integers(min_value=alarm_2, max_value=15_000)), alarm_2, arrears)


def assert_raises_and_clears_alternate(events: Iterable[AlarmEvent]) -> None:
    raised: set[AlarmKind] = set()
    for event in events:
        if event.kind is EventKind.RAISED:
            assert event.alarm.kind not in raised, f"{event.alarm.kind} raised twice without a clear"
            raised.add(event.alarm.kind)
        elif event.kind is EventKind.CLEARED:
            assert event.alarm.kind in raised, f"{event.alarm.kind} cleared without being raised"
            raised.remove(event.alarm.kind)


def check_band(state: AlarmState, balance: int, policy: AlarmPolicy) -> None:
    assert policy.thresholds is not None
    active = {alarm.kind for alarm in state.active}
    for depth, kind in enumerate(BALANCE_LEVELS):
        limit = policy.thresholds.threshold(kind)
        worse_active = any(level in active for level in BALANCE_LEVELS[depth + 1:])
        if worse_active or balance <= limit:
            assert kind in active  # levels nest, and at or below the threshold the level is up
        elif balance > limit + policy.band.width(limit):
            assert kind not in active  # past the band nothing holds it


@settings(max_examples=200, deadline=None)
@given(balances, thresholds(), bands)
def test_a_random_balance_walk_never_raises_a_level_twice_without_a_clear(
        walk: list[int], limits: BalanceThresholds, band: HysteresisBand) -> None:
    policy = AlarmPolicy(limits, band)
    state: AlarmState | None = None
    events: list[AlarmEvent] = []
    for cycle, balance in enumerate(walk):
        state, step = evaluate_meter(state, observe_reading(reading(cycle, balance=balance)), policy, NOW)
        events += step
        check_band(state, balance, policy)
    assert_raises_and_clears_alternate(events)
    for clear in (e for e in events if e.kind is EventKind.CLEARED):  # only a walk past the band clears
        limit, seen = limits.threshold(clear.alarm.kind), clear.evidence["balance_minor"]
        assert isinstance(seen, int) and seen > limit + band.width(limit)
    assert state is not None
    still_raised = [e.alarm.kind for e in events if e.kind is EventKind.RAISED]
    for cleared in (e.alarm.kind for e in events if e.kind is EventKind.CLEARED):
        still_raised.remove(cleared)
    assert sorted(still_raised) == sorted(a.kind for a in state.active)


@settings(max_examples=150, deadline=None)
@given(balances, thresholds())
def test_every_crossing_is_announced_once_to_each_recipient(walk: list[int], limits: BalanceThresholds) -> None:
    policy = AlarmPolicy(limits)
    recipients = Recipients("A-1", tenant=(Contact("+861", Language.ZH_HANS),), site=(Contact("+862", Language.EN),))
    state: AlarmState | None = None
    messages: list[PlannedMessage] = []
    raises = 0
    for cycle, balance in enumerate(walk):
        state, step = evaluate_meter(state, observe_reading(reading(cycle, balance=balance)), policy, NOW)
        raises += sum(e.kind is EventKind.RAISED for e in step)
        messages += plan_notifications(step, recipients, NotificationPolicy(UTC_ZONE), NOW)
    assert len(messages) == 2 * raises
    assert len({m.dedupe_key for m in messages}) == len(messages)


@st.composite
def observation_sequences(draw: st.DrawFn) -> list[MeterObservation]:
    """Answered and silent cycles mixed; registers jump about freely, so every rule gets exercised."""
    sequence = []
    for cycle in range(draw(st.integers(min_value=1, max_value=30))):
        if draw(st.booleans()):
            sequence.append(observe_silence("m-1", at(cycle), draw(st.integers(min_value=1, max_value=6))))
            continue
        state = reading(cycle, balance=draw(st.none() | st.integers(-5000, 9000)),
                        energy=str(draw(st.integers(0, 2000))), count=draw(st.integers(0, 8)),
                        power=str(draw(st.integers(0, 40))), bits=draw(st.integers(0, 15)))
        sequence.append(observe_reading(state, expected_purchase_count=draw(st.none() | st.integers(0, 8))))
    return sequence


@settings(max_examples=100, deadline=None)
@given(observation_sequences(), thresholds())
def test_any_observation_sequence_keeps_every_kind_alternating(sequence: list[MeterObservation],
                                                              limits: BalanceThresholds) -> None:
    policy = AlarmPolicy(limits, overload_kw=Decimal("25"), collector_lost_after=timedelta(minutes=5))
    state: AlarmState | None = None
    events: list[AlarmEvent] = []
    for observation in sequence:
        state, step = evaluate_meter(state, observation, policy, NOW)
        events += step
        assert len({a.kind for a in state.active}) == len(state.active)
        assert all(a.cleared_at is None for a in state.active)
    assert_raises_and_clears_alternate(events)
