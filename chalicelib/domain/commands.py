"""A command sent to one meter through its bridge, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CommandRecord:
    command_id: str
    kind: str
    meter_id: str
    bus: str
    status: str  # sent, delivered, failed
    detail: str
    created_at: datetime
    updated_at: datetime
    expected: dict[str, str] | None = None
    batch_id: str = ""  # set when the command is one meter's part of a batch operation
