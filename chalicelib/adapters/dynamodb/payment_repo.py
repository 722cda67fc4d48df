"""Card payments in the main table: payment records, the webhook's de-duplication records, per-intent locks and each
operator's payment settings.

Keys (the operator's id leads each):

- payment record (one per payment intent):   ``OP#<op>#PAYMENTS``   ``PAYMENT#<payment intent id>``
- the intent's settle lock:                  ``OP#<op>#PAYMENTS``   ``LOCK#<payment intent id>``
- processor event seen (de-duplication):     ``OP#<op>#PAYMENTS``   ``EVENT#<event id>``
- payment settings (connected account):      ``OP#<op>``            ``PAYMENTS``

Why the event record sits under the operator although an event reaches us before we know whose it is: the webhook
writes it only after the event's signature verified (it comes from the processor), the operator was read from the
event (its metadata, or the re-fetched intent's for disputes) and the event's connected account was checked to be
that operator's own. So an event can only ever write into the partition of the operator whose account it happened
on; an event we cannot attribute is logged and dropped, never stored, so it needs no de-duplication: acting on it
is nothing. Event ids are unique across the processor, so keying them per operator loses nothing either, and no
global partition (see docs/decisions/0001) is needed.

Payments live in one partition per operator (not per site): the webhook and a reversal find a record by operator
and intent alone, and the operator's pages filter by site and month. At the volumes of one operator's card top-ups
(hundreds a month) a query of the partition is cheap; a time-ordered index is the step if that changes.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.keys import operator_pk
from chalicelib.adapters.dynamodb.models import (
    PaymentItem,
    PaymentLockItem,
    PaymentSettingsItem,
    ProcessorEventItem,
)
from chalicelib.adapters.dynamodb.oplog_repo import add_to_transaction
from chalicelib.domain.oplog import OperationRecord
from chalicelib.domain.payments import PaymentRecord, PaymentSettings, PaymentStatus, TopUp
from chalicelib.ports import EventClaim, StalePayment

EVENT_LEASE_MS = 60_000  # a handler that died holding an event frees it after this: the processor's retry may go on
IN_PROGRESS, DONE = "in-progress", "done"


def payments_pk(operator_id: str) -> str:
    return f"OP#{operator_id}#PAYMENTS"


def _record_to_dict(record: PaymentRecord) -> dict[str, Any]:
    data = asdict(record)
    data.pop("version")
    data["status"] = record.status.value
    data["created_at"] = record.created_at.isoformat()
    data["updated_at"] = record.updated_at.isoformat()
    return data


def _record_from_item(item: PaymentItem) -> PaymentRecord:
    data = dict(item.record)
    return PaymentRecord(
        operator_id=data["operator_id"], intent_id=data["intent_id"], top_up=TopUp(**data["top_up"]),
        amount_minor=int(data["amount_minor"]), currency=data["currency"],
        connected_account=data["connected_account"], status=PaymentStatus(data["status"]),
        created_at=datetime.fromisoformat(data["created_at"]), updated_at=datetime.fromisoformat(data["updated_at"]),
        failure_reason=data.get("failure_reason", ""), entry_id=data.get("entry_id"),
        refund_id=data.get("refund_id", ""), refunded_minor=int(data.get("refunded_minor", 0)),
        outside_refunded_minor=int(data.get("outside_refunded_minor", 0)),
        dispute_reason=data.get("dispute_reason", ""), version=item.version or 0)


def _conditional_failed(error: Exception) -> bool:
    return "ConditionalCheckFailed" in str(error)


class DynamoPaymentRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # -- processor events ------------------------------------------------------------------------------------------
    def claim_event(self, operator_id: str, event_id: str, event_type: str, now: datetime) -> EventClaim:
        """Take the event for handling: a conditional put that only the first delivery (or the retry of a handler
        that died, once its lease ran out) wins."""
        now_ms = int(now.timestamp() * 1000)
        item = ProcessorEventItem(pk=payments_pk(operator_id), sk=f"EVENT#{event_id}", event_type=event_type,
                                  status=IN_PROGRESS, lease_until_ms=now_ms + EVENT_LEASE_MS, received_at=now)
        stale = (ProcessorEventItem.status == IN_PROGRESS) & (ProcessorEventItem.lease_until_ms < now_ms)
        try:
            item.save(condition=ProcessorEventItem.pk.does_not_exist() | stale)
        except PutError as error:
            if not _conditional_failed(error):
                raise
            try:
                seen = ProcessorEventItem.get(payments_pk(operator_id), f"EVENT#{event_id}", consistent_read=True)
            except ProcessorEventItem.DoesNotExist:
                return EventClaim.BUSY  # its handler failed and let go a moment ago: the processor's retry takes it
            return EventClaim.DONE if seen.status == DONE else EventClaim.BUSY
        return EventClaim.NEW

    def finish_event(self, operator_id: str, event_id: str, outcome: str, now: datetime) -> None:
        """Mark the claimed event handled (one update by key, no read first)."""
        ProcessorEventItem(pk=payments_pk(operator_id), sk=f"EVENT#{event_id}").update(actions=[
            ProcessorEventItem.status.set(DONE), ProcessorEventItem.outcome.set(outcome[:200]),
            ProcessorEventItem.finished_at.set(now)])

    def release_event(self, operator_id: str, event_id: str) -> None:
        """The handler failed: forget the claim so the processor's retry is handled, not taken for a duplicate."""
        try:
            ProcessorEventItem(pk=payments_pk(operator_id), sk=f"EVENT#{event_id}").delete(
                condition=ProcessorEventItem.status == IN_PROGRESS)
        except DeleteError:
            return

    # -- the settle lock ----------------------------------------------------------------------------------------------
    def lock_payment(self, operator_id: str, intent_id: str, holder: str, now_ms: int, hold_ms: int) -> bool:
        item = PaymentLockItem(pk=payments_pk(operator_id), sk=f"LOCK#{intent_id}", holder=holder,
                               until_ms=now_ms + hold_ms)
        try:
            item.save(condition=PaymentLockItem.pk.does_not_exist() | (PaymentLockItem.until_ms < now_ms))
        except PutError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def unlock_payment(self, operator_id: str, intent_id: str, holder: str) -> None:
        try:
            PaymentLockItem(pk=payments_pk(operator_id), sk=f"LOCK#{intent_id}").delete(
                condition=PaymentLockItem.holder == holder)
        except DeleteError:
            return  # the lease ran out and another holds it now: theirs to release

    # -- payment records ----------------------------------------------------------------------------------------------
    def payment(self, operator_id: str, intent_id: str) -> PaymentRecord | None:
        try:
            item = PaymentItem.get(payments_pk(operator_id), f"PAYMENT#{intent_id}", consistent_read=True)
        except PaymentItem.DoesNotExist:
            return None
        return _record_from_item(item)

    def save_payment(self, record: PaymentRecord) -> PaymentRecord:
        item = PaymentItem(pk=payments_pk(record.operator_id), sk=f"PAYMENT#{record.intent_id}",
                           intent_id=record.intent_id, site_id=record.site_id, meter_id=record.meter_id,
                           status=record.status.value, amount_minor=record.amount_minor,
                           created_at=record.created_at, record=_record_to_dict(record))
        if record.version:  # VersionAttribute: conditional on the version read (or on no item) and adds one
            item.version = record.version
        try:
            item.save()
        except PutError as error:
            if _conditional_failed(error):
                raise StalePayment(f"payment {record.intent_id} changed meanwhile") from error
            raise
        return _record_from_item(item)

    def payments(self, operator_id: str) -> list[PaymentRecord]:
        items = PaymentItem.query(payments_pk(operator_id), PaymentItem.sk.startswith("PAYMENT#"))
        return sorted((_record_from_item(item) for item in items), key=lambda r: r.created_at)

    # -- settings -----------------------------------------------------------------------------------------------------
    def settings(self, operator_id: str) -> PaymentSettings | None:
        try:
            item = PaymentSettingsItem.get(operator_pk(operator_id), "PAYMENTS", consistent_read=True)
        except PaymentSettingsItem.DoesNotExist:
            return None
        return PaymentSettings(operator_id, item.connected_account, item.updated_at.astimezone(UTC), item.updated_by)

    def save_settings(self, settings: PaymentSettings, record: OperationRecord) -> None:
        """The settings and their operation-log record, together."""
        with TransactWrite(connection=self._connection) as transaction:
            transaction.save(PaymentSettingsItem(pk=operator_pk(settings.operator_id), sk="PAYMENTS",
                                                 connected_account=settings.connected_account,
                                                 updated_at=settings.updated_at, updated_by=settings.updated_by))
            add_to_transaction(transaction, record)
