"""Log-in sessions: short-lived, server-side, each with its own CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Session:
    operator_id: str
    session_id: str
    username: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at
