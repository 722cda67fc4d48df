"""The operation log (SPEC 4): one immutable record per state-changing action."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SECRET_KEYS = frozenset({"password", "password_hash", "new_password", "token", "secret"})


def redact(snapshot: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Copy a before/after snapshot without anything secret in it."""
    if snapshot is None:
        return None
    return {k: ("***" if k in SECRET_KEYS else v) for k, v in snapshot.items()}


@dataclass(frozen=True)
class OperationRecord:
    operator_id: str
    entry_id: str
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    source_ip: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def month(self) -> str:
        return self.at.strftime("%Y-%m")
