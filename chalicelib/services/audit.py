"""Building operation-log records for services (one helper, so every record has the same shape)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.oplog import OperationRecord, redact


def operation(operator_id: str, actor: str, action: str, target: str, at: datetime, *,
              before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
              source_ip: str = "", **details: Any) -> OperationRecord:
    return OperationRecord(
        operator_id=operator_id,
        entry_id=secrets.token_hex(6),
        at=at,
        actor=actor,
        action=action,
        target=target,
        before=redact(before),
        after=redact(after),
        source_ip=source_ip,
        details=dict(details),
    )
