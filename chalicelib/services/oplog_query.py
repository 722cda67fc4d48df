"""Viewing the operation log (SPEC 4)."""

from __future__ import annotations

import re

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.oplog import OperationRecord
from chalicelib.ports import Clock, OperationLog

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CURSOR = re.compile(r"^[0-9T:.+\-]{19,40}#[0-9a-f]{12}$")


class OperationLogQuery:
    def __init__(self, oplog: OperationLog, clock: Clock) -> None:
        self._oplog = oplog
        self._clock = clock

    def page(self, actor: Actor, month: str | None,
             cursor: str | None) -> tuple[str, list[OperationRecord], str | None]:
        actor.require(Permission.OPLOG_VIEW)
        month = month or self._clock.now().strftime("%Y-%m")
        if not MONTH.match(month):
            raise ValidationError("month must look like 2026-11", field="month")
        if cursor and not CURSOR.match(cursor):
            raise ValidationError("bad page cursor", field="after")
        records, next_cursor = self._oplog.page(actor.operator_id, month, after=cursor)
        return month, records, next_cursor
