"""Alarm rules, pure: (a subject's previous ``AlarmState``, an observation, the policy, now) → (next state, events).

``evaluate_meter`` runs once per reading cycle of a meter (answered or silent), ``evaluate_collector`` from a
periodic sweep; the caller stores the state per subject and every ``AlarmEvent`` (each carries the full alarm
record, keyed by ``alarm_id``). Balance levels nest (arrears ⊃ alarm 2 ⊃ alarm 1) and use hysteresis: raised
at or below the threshold, cleared only above threshold + band, so a balance hovering at a threshold raises
once and the tenant gets one SMS per real crossing. Tamper hints no later reading can disprove (energy going
backwards, a meter reset) are latched: active until a person acknowledges, and so clears, them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from chalicelib.domain.bridges import LOST_CONTACT_AFTER
from chalicelib.domain.errors import Conflict, ValidationError
from chalicelib.domain.meter_state import LOST_AFTER_MISSED_CYCLES, MeterState, StatusBit

EvidenceValue = str | int | bool | None
Evidence = Mapping[str, EvidenceValue]
RATE_NAMES = ("sharp", "peak", "flat", "valley")


class AlarmKind(StrEnum):
    """Declaration order is the order alarms are raised in (and cleared in reverse)."""

    ALARM_1 = "alarm-1"
    ALARM_2 = "alarm-2"
    ARREARS = "arrears"
    OVERLOAD = "overload"
    METER_LOST = "meter-lost-contact"
    COLLECTOR_LOST = "collector-lost-contact"
    PURCHASE_COUNT_MISMATCH = "purchase-count-mismatch"
    ENERGY_BACKWARDS = "energy-backwards"
    METER_RESET = "meter-reset"
    LEDGER_DISCREPANCY = "ledger-discrepancy"  # raised by reconciliation, not by a reading: a person must look


BALANCE_LEVELS = (AlarmKind.ALARM_1, AlarmKind.ALARM_2, AlarmKind.ARREARS)  # mildest first
LATCHED = frozenset({AlarmKind.ENERGY_BACKWARDS, AlarmKind.METER_RESET, AlarmKind.LEDGER_DISCREPANCY})


class Severity(StrEnum):
    NOTICE = "notice"
    WARNING = "warning"
    CRITICAL = "critical"  # supply is off, or a whole bus is blind


SEVERITY = {kind: Severity.WARNING for kind in AlarmKind} | {
    AlarmKind.ALARM_1: Severity.NOTICE, AlarmKind.ARREARS: Severity.CRITICAL,
    AlarmKind.OVERLOAD: Severity.CRITICAL, AlarmKind.COLLECTOR_LOST: Severity.CRITICAL,
    AlarmKind.LEDGER_DISCREPANCY: Severity.CRITICAL}


class SubjectKind(StrEnum):
    METER = "meter"
    COLLECTOR = "collector"


class EventKind(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"


class BalanceSource(StrEnum):
    METER = "meter"  # prepaid meter: its remaining-amount register
    LEDGER = "ledger"  # cloud-billed account: the ledger's balance


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    subject_id: str


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    kind: AlarmKind
    subject: Subject
    level: Severity
    raised_at: datetime
    evidence: Evidence = field(default_factory=dict, hash=False)
    cleared_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    def acknowledged(self, by: str, at: datetime) -> Alarm:
        """Record who saw it. A latched alarm has no condition that could clear it, so the person does."""
        who = by.strip()
        if not who:
            raise ValidationError("say who acknowledges the alarm", field="acknowledged_by")
        if self.cleared_at is not None:
            raise Conflict(f"alarm {self.alarm_id} is already cleared: nothing to acknowledge")
        if self.acknowledged_at is not None:
            raise Conflict(f"alarm {self.alarm_id} was already acknowledged by {self.acknowledged_by}")
        if at < self.raised_at:
            raise ValidationError("an alarm cannot be acknowledged before it was raised", field="acknowledged_at")
        return replace(self, acknowledged_by=who, acknowledged_at=at,
                       cleared_at=at if self.kind in LATCHED else None)


@dataclass(frozen=True)
class AlarmEvent:
    kind: EventKind
    alarm: Alarm  # the record as it stands after this event: upsert it by alarm_id
    at: datetime
    evidence: Evidence = field(default_factory=dict, hash=False)  # what was seen when it happened


@dataclass(frozen=True)
class RegisterBaseline:
    """The last values a meter answered with: what the tamper hints compare the next reading to."""

    energy_kwh: Decimal | None = None
    energy_by_rate: tuple[Decimal, ...] | None = None
    purchase_count: int | None = None


@dataclass(frozen=True)
class AlarmState:
    """Everything the rules remember about one subject between observations; the caller stores it."""

    subject: Subject
    active: tuple[Alarm, ...] = ()
    baseline: RegisterBaseline | None = None
    observed_at: datetime | None = None

    def alarm(self, kind: AlarmKind) -> Alarm | None:
        return next((a for a in self.active if a.kind is kind), None)


@dataclass(frozen=True)
class HysteresisBand:
    """Clearing needs the balance above threshold + width; the width is a share of the threshold with a
    floor, because the arrears threshold is 0 and 1 % of 0 would be no band at all."""

    basis_points: int = 100  # 1 % of the threshold
    minimum_minor: int = 100  # 1.00 in the operator's currency

    def __post_init__(self) -> None:
        if self.basis_points < 0 or self.minimum_minor < 0:
            raise ValidationError("the hysteresis band cannot be negative", field="band")

    def width(self, threshold_minor: int) -> int:
        proportional = -(-abs(threshold_minor) * self.basis_points // 10_000)  # rounded up: never narrower
        return max(proportional, self.minimum_minor)


@dataclass(frozen=True)
class BalanceThresholds:
    """The effective amounts for one meter (its own, or the site default): raised at or below each."""

    alarm_1_minor: int
    alarm_2_minor: int
    arrears_minor: int = 0

    def __post_init__(self) -> None:
        amounts = (self.alarm_1_minor, self.alarm_2_minor, self.arrears_minor)
        if any(isinstance(a, bool) or not isinstance(a, int) for a in amounts):
            raise TypeError("alarm amounts are integer minor units")
        if not self.alarm_1_minor >= self.alarm_2_minor >= self.arrears_minor:
            raise ValidationError("alarm amount 1 ≥ alarm amount 2 ≥ arrears level", field="alarm_2_minor")

    def threshold(self, kind: AlarmKind) -> int:
        return {AlarmKind.ALARM_1: self.alarm_1_minor, AlarmKind.ALARM_2: self.alarm_2_minor,
                AlarmKind.ARREARS: self.arrears_minor}[kind]


@dataclass(frozen=True)
class AlarmPolicy:
    thresholds: BalanceThresholds | None = None  # None: no balance alarms (a plain meter without a ledger)
    band: HysteresisBand = field(default_factory=HysteresisBand)
    overload_kw: Decimal | None = None
    overload_clear_ratio: Decimal = Decimal("0.9")  # power must fall below 90 % of the threshold to clear
    lost_after_missed_cycles: int = LOST_AFTER_MISSED_CYCLES
    collector_lost_after: timedelta = LOST_CONTACT_AFTER
    reset_near_zero_kwh: Decimal = Decimal("1")
    reset_previously_above_kwh: Decimal = Decimal("100")

    def __post_init__(self) -> None:
        if self.lost_after_missed_cycles < 1:
            raise ValidationError("lost contact needs at least one missed cycle", field="lost_after_missed_cycles")
        if self.collector_lost_after <= timedelta(0):
            raise ValidationError("the collector lost-contact time must be positive", field="collector_lost_after")
        if not Decimal(0) < self.overload_clear_ratio <= Decimal(1):
            raise ValidationError("overload clear ratio: above 0, at most 1", field="overload_clear_ratio")


@dataclass(frozen=True)
class MeterObservation:
    """One reading cycle of one meter. ``reading`` is None when the meter did not answer."""

    meter_id: str
    at: datetime
    reading: MeterState | None = None
    missed_cycles: int = 0  # consecutive silent cycles, as ingestion counts them
    balance_minor: int | None = None
    balance_source: BalanceSource | None = None
    expected_purchase_count: int | None = None  # highest count the ledger has issued, pending sales included


def observe_reading(reading: MeterState, *, ledger_balance_minor: int | None = None,
                    expected_purchase_count: int | None = None) -> MeterObservation:
    """An answered reading. Cloud-billed accounts pass the ledger's balance; prepaid meters judge their own."""
    on_ledger = ledger_balance_minor is not None
    balance = ledger_balance_minor if on_ledger else reading.remaining_minor
    source = BalanceSource.LEDGER if on_ledger else None if balance is None else BalanceSource.METER
    return MeterObservation(reading.meter_id, reading.read_at, reading, 0, balance, source, expected_purchase_count)


def observe_silence(meter_id: str, at: datetime, missed_cycles: int, *,
                    ledger_balance_minor: int | None = None) -> MeterObservation:
    """A cycle the meter did not answer; a ledger balance still moves (a purchase), a meter's is unknown."""
    source = None if ledger_balance_minor is None else BalanceSource.LEDGER
    return MeterObservation(meter_id, at, None, missed_cycles, ledger_balance_minor, source)


@dataclass(frozen=True)
class _Verdict:  # whether a kind should be active now; a kind without a verdict stays as it is
    active: bool
    evidence: Evidence


def _balance_verdicts(state: AlarmState, obs: MeterObservation, policy: AlarmPolicy) -> dict[AlarmKind, _Verdict]:
    balance, thresholds = obs.balance_minor, policy.thresholds
    if balance is None or thresholds is None:
        return {}
    verdicts: dict[AlarmKind, _Verdict] = {}
    worse_active = False
    for kind in reversed(BALANCE_LEVELS):  # most severe first: a level never clears while a worse one holds
        limit = thresholds.threshold(kind)
        holding = state.alarm(kind) is not None and balance <= limit + policy.band.width(limit)
        worse_active = worse_active or balance <= limit or holding
        evidence: dict[str, EvidenceValue] = {"balance_minor": balance, "threshold_minor": limit,
                                              "source": _text(obs.balance_source)}
        if obs.reading is not None and obs.reading.relay_open is not None:
            evidence["relay_open"] = obs.reading.relay_open
        verdicts[kind] = _Verdict(worse_active, evidence)
    return verdicts


def _overload_verdict(state: AlarmState, reading: MeterState, policy: AlarmPolicy) -> _Verdict:
    tripped = reading.has(StatusBit.OVERLOAD_TRIP)
    limit, power = policy.overload_kw, reading.power_kw
    over = holding = False
    if limit is not None and power is not None:
        over = power > limit
        # without the trip bit, power dancing around the threshold must fall clearly below it to clear
        holding = state.alarm(AlarmKind.OVERLOAD) is not None and power > limit * policy.overload_clear_ratio
    evidence = {"overload_trip_bit": tripped, "power_kw": _text(power), "threshold_kw": _text(limit)}
    return _Verdict(tripped or over or holding, evidence)


def _contact_verdict(obs: MeterObservation, policy: AlarmPolicy) -> dict[AlarmKind, _Verdict]:
    if obs.reading is not None:
        return {AlarmKind.METER_LOST: _Verdict(False, {"answered_at": obs.at.isoformat()})}
    if obs.missed_cycles >= policy.lost_after_missed_cycles:
        return {AlarmKind.METER_LOST: _Verdict(True, {"missed_cycles": obs.missed_cycles})}
    return {}


def _purchase_count_verdict(reading: MeterState, expected: int | None) -> dict[AlarmKind, _Verdict]:
    """A count above what the ledger issued means credit arrived without a sale; below is a sale in flight."""
    if reading.purchase_count is None or expected is None:
        return {}
    evidence = {"meter_purchase_count": reading.purchase_count, "expected_purchase_count": expected}
    return {AlarmKind.PURCHASE_COUNT_MISMATCH: _Verdict(reading.purchase_count > expected, evidence)}


def _looks_reset(before: RegisterBaseline, reading: MeterState, policy: AlarmPolicy) -> bool:
    """Energy back near zero from well above it, with the purchase count (when known) back near zero too."""
    if before.energy_kwh is None or reading.energy_kwh is None:
        return False
    energy_wiped = reading.energy_kwh <= policy.reset_near_zero_kwh and \
        before.energy_kwh >= policy.reset_previously_above_kwh
    if before.purchase_count is None or reading.purchase_count is None:
        return energy_wiped
    return energy_wiped and reading.purchase_count <= min(1, before.purchase_count)


def _registers_gone_back(before: RegisterBaseline, reading: MeterState) -> list[str]:
    pairs = [("energy_total", before.energy_kwh, reading.energy_kwh)]
    if before.energy_by_rate is not None and reading.energy_by_rate is not None:
        pairs += [(f"energy_{name}", old, new)
                  for name, old, new in zip(RATE_NAMES, before.energy_by_rate, reading.energy_by_rate, strict=True)]
    return [name for name, old, new in pairs if old is not None and new is not None and new < old]


def _tamper_verdicts(before: RegisterBaseline | None, reading: MeterState,
                     policy: AlarmPolicy) -> dict[AlarmKind, _Verdict]:
    if before is None:
        return {}
    evidence = {"energy_before_kwh": _text(before.energy_kwh), "energy_now_kwh": _text(reading.energy_kwh),
                "purchase_count_before": before.purchase_count, "purchase_count_now": reading.purchase_count}
    if _looks_reset(before, reading, policy):
        return {AlarmKind.METER_RESET: _Verdict(True, evidence)}
    gone_back = _registers_gone_back(before, reading)
    if gone_back:
        return {AlarmKind.ENERGY_BACKWARDS: _Verdict(True, {**evidence, "registers": ",".join(gone_back)})}
    return {}


def _text(value: Decimal | BalanceSource | None) -> str | None:
    return None if value is None else str(value)


def _meter_verdicts(state: AlarmState, obs: MeterObservation, policy: AlarmPolicy) -> dict[AlarmKind, _Verdict]:
    verdicts = {**_balance_verdicts(state, obs, policy), **_contact_verdict(obs, policy)}
    reading = obs.reading
    if reading is not None:
        verdicts[AlarmKind.OVERLOAD] = _overload_verdict(state, reading, policy)
        verdicts.update(_purchase_count_verdict(reading, obs.expected_purchase_count))
        verdicts.update(_tamper_verdicts(state.baseline, reading, policy))
    return verdicts


def _alarm_id(subject: Subject, kind: AlarmKind, raised_at: datetime) -> str:
    """One id per crossing: a subject cannot raise the same kind twice at one instant."""
    return f"{subject.kind}:{subject.subject_id}:{kind}:{raised_at.isoformat()}"


def _apply(state: AlarmState, verdicts: Mapping[AlarmKind, _Verdict],
           at: datetime) -> tuple[tuple[Alarm, ...], list[AlarmEvent]]:
    active = {alarm.kind: alarm for alarm in state.active}
    events: list[AlarmEvent] = []
    for kind in reversed(AlarmKind):  # worst balance level clears first, mirroring the raise order
        verdict, alarm = verdicts.get(kind), active.get(kind)
        if verdict is not None and not verdict.active and alarm is not None and kind not in LATCHED:
            del active[kind]
            events.append(AlarmEvent(EventKind.CLEARED, replace(alarm, cleared_at=at), at, verdict.evidence))
    for kind in AlarmKind:
        verdict = verdicts.get(kind)
        if verdict is not None and verdict.active and kind not in active:
            active[kind] = Alarm(_alarm_id(state.subject, kind, at), kind, state.subject, SEVERITY[kind], at,
                                 verdict.evidence)
            events.append(AlarmEvent(EventKind.RAISED, active[kind], at, verdict.evidence))
    return tuple(active[kind] for kind in AlarmKind if kind in active), events


def _baseline_after(before: RegisterBaseline | None, reading: MeterState | None) -> RegisterBaseline | None:
    """Registers a reading lacks keep their last known value, so a partial read hides nothing later."""
    if reading is None:
        return before
    old = before or RegisterBaseline()
    return RegisterBaseline(
        energy_kwh=old.energy_kwh if reading.energy_kwh is None else reading.energy_kwh,
        energy_by_rate=old.energy_by_rate if reading.energy_by_rate is None else reading.energy_by_rate,
        purchase_count=old.purchase_count if reading.purchase_count is None else reading.purchase_count)


def _start(previous: AlarmState | None, subject: Subject) -> AlarmState:
    if previous is None:
        return AlarmState(subject)
    if previous.subject != subject:
        raise ValidationError(f"alarm state of {previous.subject} given for {subject}", field="subject")
    return previous


def evaluate_meter(previous: AlarmState | None, observation: MeterObservation, policy: AlarmPolicy,
                   now: datetime) -> tuple[AlarmState, list[AlarmEvent]]:
    """Judge one reading cycle of a meter; ``previous`` is None the first time the meter is judged."""
    state = _start(previous, Subject(SubjectKind.METER, observation.meter_id))
    at = min(observation.at, now)  # a bridge clock running ahead must not date alarms in the future
    if state.observed_at is not None and at <= state.observed_at:
        return state, []  # late or re-sent: the state already reflects a newer cycle
    active, events = _apply(state, _meter_verdicts(state, observation, policy), at)
    return replace(state, active=active, baseline=_baseline_after(state.baseline, observation.reading),
                   observed_at=at), events


def evaluate_collector(previous: AlarmState | None, collector_id: str, last_heard_at: datetime,
                       policy: AlarmPolicy, now: datetime) -> tuple[AlarmState, list[AlarmEvent]]:
    """Sweep one collector. Pass its registration time as ``last_heard_at`` if it was never heard from,
    so one that never comes up is reported too."""
    state = _start(previous, Subject(SubjectKind.COLLECTOR, collector_id))
    silent_for = now - last_heard_at
    evidence: Evidence = {"last_heard_at": last_heard_at.isoformat(),
                          "silent_seconds": silent_for // timedelta(seconds=1)}
    verdict = _Verdict(silent_for >= policy.collector_lost_after, evidence)
    active, events = _apply(state, {AlarmKind.COLLECTOR_LOST: verdict}, now)
    return replace(state, active=active, observed_at=now), events


def acknowledge(state: AlarmState, alarm_id: str, by: str, at: datetime) -> tuple[AlarmState, list[AlarmEvent]]:
    """Acknowledge one of the subject's active alarms; a latched tamper hint is cleared by it."""
    alarm = next((a for a in state.active if a.alarm_id == alarm_id), None)
    if alarm is None:
        raise Conflict(f"alarm {alarm_id} is not active on {state.subject.subject_id}: it was cleared or never raised")
    done = alarm.acknowledged(by, at)
    events = [AlarmEvent(EventKind.ACKNOWLEDGED, done, at, {"acknowledged_by": done.acknowledged_by})]
    if done.cleared_at is not None:
        events.append(AlarmEvent(EventKind.CLEARED, done, at, {"cleared_by": done.acknowledged_by}))
        return replace(state, active=tuple(a for a in state.active if a is not alarm)), events
    return replace(state, active=tuple(done if a is alarm else a for a in state.active)), events
