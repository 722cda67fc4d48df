"""Storing what a bus run returned: readings in their time slot, each meter's freshest state.

Late results (uploaded after an outage) land in their place among the readings and never overwrite
a newer current state; a re-sent run is recognised and stored once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gateway_bridge.protocol import BatchResult

from chalicelib.domain.readings import StoredState, Usage
from chalicelib.domain.tenancy import BillingMode, Meter
from chalicelib.ports import ReadingsRepository
from chalicelib.services.alarm_watch import AlarmWatch, MeterSighting
from chalicelib.services.consumption import ConsumptionBilling, PricePush
from chalicelib.services.reading_plan import DecodedRead, decode_result, meters_in

# The meters' previous states and cloud-billed meters' ledger balances are fetched while the run is decoded: all are
# needed, none needs another.
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest-lookup")


@dataclass(frozen=True)
class IngestOutcome:
    duplicate: bool
    answered: int = 0
    silent: int = 0
    price_pushes: tuple[PricePush, ...] = ()  # prepaid meters whose ladder price must change now
    usage: tuple[Usage, ...] = ()  # cloud-billed meters' priced consumption, for the ledger to charge


def _exact(values: Mapping[str, object]) -> dict[str, str | int]:
    """Decimals as exact text, integers as they are: nothing passes through float."""
    return {k: v if isinstance(v, int) else str(v) for k, v in values.items()}


class ReadingIngest:
    def __init__(self, readings: ReadingsRepository, alarms: AlarmWatch | None = None,
                 billing: ConsumptionBilling | None = None) -> None:
        self._readings = readings
        self._alarms = alarms
        self._billing = billing
        # Set by the composition root: cloud-billed meters' ledger balances (operator, meter ids) → balance by meter.
        self.ledger_balances: Callable[[str, list[str]], dict[str, int]] | None = None

    def ingest(self, operator_id: str, site_id: str, collector_id: str, result: BatchResult,
               meters: list[Meter], now: datetime) -> IngestOutcome:
        on_bus = {m.meter_id: m for m in meters if m.collector_id == collector_id}
        previous = _lookups.submit(self._readings.get_states, operator_id, site_id, meters_in(result, on_bus))
        cloud_billed = [m for m, meter in on_bus.items() if meter.billing_mode is BillingMode.CLOUD_BILLED]
        balances = _lookups.submit(self.ledger_balances, operator_id, cloud_billed) \
            if cloud_billed and self.ledger_balances is not None and self._alarms is not None else None
        reads = decode_result(result, on_bus)
        answered = [r for r in reads if r.answered]
        exact = {r.meter_id: _exact(r.values) for r in answered}  # what the reading and the state both keep
        # Readings are keyed by meter and time, so a re-sent run rewrites the same items: idempotent.
        readings = [(r.meter_id, r.at_ms, exact[r.meter_id]) for r in answered]
        befores = {s.meter_id: s for s in previous.result()}
        states = _next_states(reads, exact, befores)
        usage: list[Usage] = []
        pushes: list[PricePush] = []
        if states and self._billing is not None:
            states, usage, pushes = self._billing.bill(operator_id, site_id, on_bus, befores, states)
        if states and self._alarms is not None:
            ledger = _after_charges(balances.result(), usage) if balances is not None else {}
            states = self._with_alarms(operator_id, site_id, states, {r.meter_id for r in answered}, now, ledger)
        self._readings.put_run(operator_id, site_id, readings, states, usage)
        if not states:  # a re-sent or late run: every meter already holds a newer state
            return IngestOutcome(duplicate=True, answered=len(answered))
        return IngestOutcome(False, len(answered), len(reads) - len(answered), tuple(pushes), tuple(usage))

    def _with_alarms(self, operator_id: str, site_id: str, states: list[StoredState], answered: set[str],
                     now: datetime, ledger: dict[str, int]) -> list[StoredState]:
        assert self._alarms is not None
        sightings = [MeterSighting(s.meter_id, s.read_at, dict(s.values) if s.meter_id in answered else {},
                                   s.missed_cycles, s.alarms, ledger.get(s.meter_id)) for s in states]
        judged = self._alarms.judge(operator_id, site_id, sightings, now)
        return [replace(s, alarms=judged.get(s.meter_id, s.alarms)) for s in states]


def _after_charges(balances: dict[str, int], usage: list[Usage]) -> dict[str, int]:
    """Balances once this run's charges are posted (they are, right after storing): what the alarm rules judge."""
    charged = dict(balances)
    for used in usage:
        if used.meter_id in charged:
            charged[used.meter_id] -= used.charge_minor
    return charged


def _next_states(reads: list[DecodedRead], exact: dict[str, dict[str, str | int]],
                 current: dict[str, StoredState]) -> list[StoredState]:
    updated = []
    for read in reads:
        at = datetime.fromtimestamp(read.at_ms / 1000, UTC)
        before = current.get(read.meter_id)
        if before is not None and before.read_at >= at:
            continue  # an older run arriving late: its reading is stored, the state is already newer
        updated.append(_advance(read, exact.get(read.meter_id), at, before))
    return updated


def _advance(read: DecodedRead, values: dict[str, str | int] | None, at: datetime,
             before: StoredState | None) -> StoredState:
    alarms, billing = (before.alarms, before.billing) if before else (None, None)
    if values is not None:  # the meter answered
        return StoredState(read.meter_id, at, values, tuple(read.problems), at, 0, alarms, billing)
    return StoredState(read.meter_id, at, before.values if before else {}, tuple(read.problems),
                       before.last_answer_at if before else None, (before.missed_cycles if before else 0) + 1,
                       alarms, billing)
