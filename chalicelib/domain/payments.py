"""Card payments, pure: what a top-up carries to the processor and back, what we read from a processor's event, and
how a payment's record moves on.

The processor (Stripe, or the local stand-in) is the authority on a payment intent. An event only says "look
again": the webhook re-fetches the intent and acts on its status then, so events arriving twice, late or out of
order change nothing. A record's status never moves backwards: a failure reported after a success, or a success
reported after a refund, leaves it where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ledger import stripe_request_id
from chalicelib.domain.tenancy import CODE_PATTERN, ID_PATTERN

TOP_UP_KEYS = ("operator_id", "site_id", "meter_id", "account_id", "tenant_id")
CHECKOUT_COMPLETED = "checkout.session.completed"
INTENT_SUCCEEDED = "payment_intent.succeeded"
INTENT_FAILED = "payment_intent.payment_failed"
DISPUTE_CREATED = "charge.dispute.created"
CHARGE_REFUNDED = "charge.refunded"  # also sent for our own refunds; only money refunded elsewhere is acted on
HANDLED_EVENTS = frozenset({CHECKOUT_COMPLETED, INTENT_SUCCEEDED, INTENT_FAILED, DISPUTE_CREATED, CHARGE_REFUNDED,
                            "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed"})
# Intent statuses after which no money will be taken without the customer trying again.
FAILED_INTENT_STATUSES = frozenset({"requires_payment_method", "canceled"})


class PaymentStatus(StrEnum):
    PENDING = "pending"  # seen, not settled yet (processing, or a declined attempt's retry may still come)
    SUCCEEDED = "succeeded"  # money taken, sale posted
    FAILED = "failed"  # the card was declined or the payment cancelled: nothing taken
    REFUNDED = "refunded"  # money returned: the sale was refused, or reversed by the operator
    REFUND_FAILED = "refund-failed"  # a refund was due but the processor refused it: a person must look
    DISPUTED = "disputed"  # the card holder disputed the charge with their bank


# How far on each status is: a record only moves to a status at least as far on (failed and pending may alternate
# while the customer retries, so they share a rank).
_RANK = {PaymentStatus.PENDING: 0, PaymentStatus.FAILED: 0, PaymentStatus.SUCCEEDED: 1,
         PaymentStatus.REFUND_FAILED: 2, PaymentStatus.REFUNDED: 3, PaymentStatus.DISPUTED: 3}


@dataclass(frozen=True)
class TopUp:
    """What a top-up's checkout carries in its metadata, and brings back on the payment intent."""

    operator_id: str
    site_id: str
    meter_id: str
    account_id: str
    tenant_id: str

    def metadata(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in TOP_UP_KEYS}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> TopUp | None:
        """The top-up a payment was for, or None when the metadata is not ours (another integration's payment on
        the same account) or malformed: such a payment is never posted."""
        values = {key: str((metadata or {}).get(key) or "") for key in TOP_UP_KEYS}
        if not CODE_PATTERN.match(values["operator_id"]):
            return None
        if not all(ID_PATTERN.match(values[key]) for key in TOP_UP_KEYS[1:]):
            return None
        return cls(**values)


@dataclass(frozen=True)
class EventFacts:
    """The few facts of a verified event the webhook acts on; everything else is re-fetched."""

    event_id: str
    event_type: str
    account: str  # the connected account the event happened on ("" on the platform's own account)
    intent_id: str | None
    operator_id: str | None  # from the object's metadata; disputes carry none (found from the intent)
    dispute_reason: str = ""

    @property
    def handled(self) -> bool:
        return self.event_type in HANDLED_EVENTS and self.intent_id is not None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def event_facts(event: Mapping[str, Any]) -> EventFacts:
    """Read a Stripe-format event (already verified): its id, type, account, payment intent and operator."""
    event_id, event_type = _text(event.get("id")), _text(event.get("type"))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not event_id or not event_type or not isinstance(obj, Mapping):
        raise ValidationError("not a Stripe event: id, type and data.object are required")
    kind = _text(obj.get("object"))
    intent_id = _text(obj.get("id")) if kind == "payment_intent" else _text(obj.get("payment_intent"))
    metadata = obj.get("metadata")
    operator = _text(metadata.get("operator_id")) if isinstance(metadata, Mapping) else ""
    return EventFacts(event_id, event_type, _text(event.get("account")), intent_id or None, operator or None,
                      dispute_reason=_text(obj.get("reason")) if kind == "dispute" else "")


@dataclass(frozen=True)
class IntentState:
    """A payment intent as the processor has it now."""

    intent_id: str
    status: str  # the processor's word: succeeded, processing, requires_payment_method, canceled, ...
    amount_minor: int
    currency: str  # ISO 4217, lower case as Stripe has it
    metadata: Mapping[str, str]
    failure_reason: str = ""  # the last attempt's decline message, if any
    # Refunded by someone other than Voltvend (the operator, in the processor's own dashboard): our refunds are
    # marked as ours at the processor, so they never count here, even when our record of one was lost.
    refunded_outside_minor: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        return self.status in FAILED_INTENT_STATUSES and (self.status == "canceled" or bool(self.failure_reason))


@dataclass(frozen=True)
class PaymentRecord:
    """One card payment (one payment intent): what it was for, how it stands, and the sale it became."""

    operator_id: str
    intent_id: str
    top_up: TopUp
    amount_minor: int
    currency: str
    connected_account: str
    status: PaymentStatus
    created_at: datetime
    updated_at: datetime
    failure_reason: str = ""  # why it failed, why it was refunded, or why a due refund failed
    entry_id: str | None = None  # the card sale it was posted as
    refund_id: str = ""
    refunded_minor: int = 0  # refunded by Voltvend (a refused payment, a reversed sale)
    outside_refunded_minor: int = 0  # refunded in the processor's own dashboard, and taken in since
    dispute_reason: str = ""
    version: int = 0  # as read; 0 = never stored

    @property
    def request_id(self) -> str:
        return stripe_request_id(self.intent_id)

    @property
    def site_id(self) -> str:
        return self.top_up.site_id

    @property
    def meter_id(self) -> str:
        return self.top_up.meter_id

    @property
    def settled(self) -> bool:
        """Posted or refused for good: a later event must not post it again."""
        return self.entry_id is not None or self.status in (PaymentStatus.REFUNDED, PaymentStatus.REFUND_FAILED)

    def moved(self, status: PaymentStatus, at: datetime, **changes: Any) -> PaymentRecord:
        """The record at ``status`` (when that is not a step back) with ``changes``; unchanged otherwise."""
        if _RANK[status] < _RANK[self.status]:
            return self
        return replace(self, status=status, updated_at=at, **changes)


def new_record(operator_id: str, intent: IntentState, top_up: TopUp, connected_account: str,
               at: datetime) -> PaymentRecord:
    return PaymentRecord(operator_id, intent.intent_id, top_up, intent.amount_minor, intent.currency.lower(),
                         connected_account, PaymentStatus.PENDING, at, at)


def succeeded(record: PaymentRecord, entry_id: str, at: datetime) -> PaymentRecord:
    return record.moved(PaymentStatus.SUCCEEDED, at, entry_id=entry_id, failure_reason="")


def declined(record: PaymentRecord, reason: str, at: datetime) -> PaymentRecord:
    return record.moved(PaymentStatus.FAILED, at, failure_reason=reason or "declined")


def refunded(record: PaymentRecord, *, refund_id: str, amount_minor: int, reason: str,
             at: datetime) -> PaymentRecord:
    return record.moved(PaymentStatus.REFUNDED, at, refund_id=refund_id, refunded_minor=amount_minor,
                        failure_reason=reason)


def refund_failed(record: PaymentRecord, reason: str, at: datetime) -> PaymentRecord:
    """A refund we owed failed: always recorded, whatever the payment's status (a person must act on it)."""
    return replace(record, status=PaymentStatus.REFUND_FAILED, updated_at=at, failure_reason=reason)


def disputed(record: PaymentRecord, reason: str, at: datetime) -> PaymentRecord:
    return record.moved(PaymentStatus.DISPUTED, at, dispute_reason=reason or "disputed")


def refunded_outside(record: PaymentRecord, intent: IntentState) -> int:
    """What was refunded outside Voltvend (an operator, in the processor's dashboard, where our ledger cannot see
    it) and not yet taken in."""
    return max(intent.refunded_outside_minor - record.outside_refunded_minor, 0)


def outside_refund_taken_in(record: PaymentRecord, amount_minor: int, note: str, at: datetime) -> PaymentRecord:
    return record.moved(PaymentStatus.REFUNDED, at, outside_refunded_minor=record.outside_refunded_minor + amount_minor,
                        failure_reason=note)


def owed_a_sale(records: list[PaymentRecord]) -> list[PaymentRecord]:
    """Every payment that must stand behind a card sale: each posted one, whatever happened to it afterwards (a
    reversal or a dispute does not unpost the sale), and each whose money we kept because its refund failed."""
    return [r for r in records if r.entry_id is not None or r.status is PaymentStatus.REFUND_FAILED]


@dataclass(frozen=True)
class PaymentSettings:
    """An operator's card-payment set-up: the processor's connected account its tenants' payments go to."""

    operator_id: str
    connected_account: str
    updated_at: datetime
    updated_by: str
