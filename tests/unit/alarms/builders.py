"""Small builders shared by the alarm tests: readings at cycle n, and walks through a series of observations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chalicelib.domain.alarms import (
    AlarmEvent,
    AlarmPolicy,
    AlarmState,
    BalanceThresholds,
    MeterObservation,
    evaluate_meter,
    observe_reading,
)
from chalicelib.domain.meter_state import MeterState

T0 = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
CYCLE = timedelta(minutes=30)
NOW = T0 + timedelta(days=365)  # evaluation time: after every reading the tests make
METER = "m-1"
POLICY = AlarmPolicy(BalanceThresholds(alarm_1_minor=5000, alarm_2_minor=2000))


def at(cycle: int) -> datetime:
    return T0 + cycle * CYCLE


def reading(cycle: int, *, balance: int | None = None, energy: str | None = None, count: int | None = None,
            power: str | None = None, bits: int = 0, relay_open: bool | None = None,
            rates: tuple[str, str, str, str] | None = None) -> MeterState:
    return MeterState(
        meter_id=METER, read_at=at(cycle), remaining_minor=balance,
        energy_kwh=None if energy is None else Decimal(energy),
        energy_by_rate=None if rates is None else (Decimal(rates[0]), Decimal(rates[1]), Decimal(rates[2]),
                                                   Decimal(rates[3])),
        purchase_count=count, power_kw=None if power is None else Decimal(power), status_bits=bits,
        relay_open=relay_open)


def walk(observations: Iterable[MeterObservation], policy: AlarmPolicy = POLICY,
         state: AlarmState | None = None) -> tuple[AlarmState | None, list[list[AlarmEvent]]]:
    """Evaluate observations in turn; returns the last state and each step's events."""
    steps = []
    for observation in observations:
        state, events = evaluate_meter(state, observation, policy, NOW)
        steps.append(events)
    return state, steps


def balance_walk(balances: Iterable[int], policy: AlarmPolicy = POLICY) -> tuple[AlarmState | None,
                                                                                 list[list[AlarmEvent]]]:
    return walk((observe_reading(reading(i, balance=b)) for i, b in enumerate(balances)), policy)


def described(events: Iterable[AlarmEvent]) -> list[tuple[str, str]]:
    return [(str(e.kind), str(e.alarm.kind)) for e in events]


def flat(steps: Iterable[list[AlarmEvent]]) -> list[AlarmEvent]:
    return [event for events in steps for event in events]
