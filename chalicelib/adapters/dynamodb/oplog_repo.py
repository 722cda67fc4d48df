"""Operation log storage: append-only items partitioned by operator and month, newest first."""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.keys import oplog_pk
from chalicelib.adapters.dynamodb.models import OperationItem
from chalicelib.domain.oplog import OperationRecord

PAGE_SIZE = 50


def record_to_item(record: OperationRecord) -> OperationItem:
    return OperationItem(
        pk=oplog_pk(record.operator_id, record.month),
        sk=f"{record.at.isoformat()}#{record.entry_id}",
        entry_id=record.entry_id,
        at=record.at,
        actor=record.actor,
        action=record.action,
        target=record.target,
        before=record.before,
        after=record.after,
        source_ip=record.source_ip,
        details=record.details or None,
    )


def item_to_record(operator_id: str, item: OperationItem) -> OperationRecord:
    return OperationRecord(
        operator_id=operator_id,
        entry_id=item.entry_id,
        at=item.at,
        actor=item.actor,
        action=item.action,
        target=item.target,
        before=_snapshot(item.before),
        after=_snapshot(item.after),
        source_ip=item.source_ip,
        details=_snapshot(item.details) or {},
    )


def _snapshot(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


def add_to_transaction(transaction: TransactWrite, record: OperationRecord) -> None:
    """Append the record inside a caller's transaction; the condition makes a rewrite impossible."""
    item = record_to_item(record)
    transaction.save(item, condition=OperationItem.pk.does_not_exist())


class DynamoOperationLog:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def append(self, record: OperationRecord) -> None:
        with TransactWrite(connection=self._connection) as transaction:
            add_to_transaction(transaction, record)

    def page(self, operator_id: str, month: str, *, after: str | None = None,
             limit: int = PAGE_SIZE) -> tuple[list[OperationRecord], str | None]:
        """One page of a month's entries, newest first, and the cursor of the next page."""
        start = {"pk": {"S": oplog_pk(operator_id, month)}, "sk": {"S": after}} if after else None
        result = OperationItem.query(
            oplog_pk(operator_id, month), scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        records = [item_to_record(operator_id, item) for item in result]
        cursor = result.last_evaluated_key
        return records, (cursor["sk"]["S"] if cursor else None)
