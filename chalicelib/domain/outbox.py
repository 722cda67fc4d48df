"""An SMS waiting in (or sent from) the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OutboxMessage:
    dedupe_key: str
    site_id: str
    recipient: str
    language: str
    text: str
    not_before: datetime
    alarm_id: str
    urgent: bool
    status: str
    detail: str = ""
    sent_at: datetime | None = None
