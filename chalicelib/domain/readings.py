"""What the cloud keeps of each meter between bus runs, and what a cloud-billed interval cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.alarms import AlarmState

READINGS_HOT = timedelta(days=90)  # readings older than this move to the archive

@dataclass(frozen=True)
class StoredState:
    meter_id: str
    read_at: datetime
    values: dict[str, Any]
    problems: tuple[str, ...]
    last_answer_at: datetime | None
    missed_cycles: int
    alarms: AlarmState | None = None  # what the alarm rules remember of this meter, kept with its state
    billing: dict[str, Any] | None = None  # cloud-billed meters: month energy and charge accumulator


Reading = tuple[str, int, dict[str, Any]]  # meter id, time in ms, decoded values


@dataclass(frozen=True)
class Usage:
    """Priced consumption of a cloud-billed meter between two readings (the ledger posts ``charge_minor``)."""

    meter_id: str
    start_ms: int
    end_ms: int
    energy_centi_kwh: int
    cost_micro: int  # exact, 1/1,000,000 of the currency
    charge_minor: int  # what to charge now, drift-free over the month
    month: str


