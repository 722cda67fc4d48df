"""The payment processor's webhook (issue 8.3): a verified event becomes a card sale, a refund or a record, once.

1. The signature over the raw body and its timestamp are verified (the gateway; a failure is a 400).
2. The event is attributed to an operator: the top-up's metadata names it (a dispute's intent is fetched to find
   it), and the account the event happened on must be that operator's connected account. Anything else is logged
   and ignored, never stored or posted.
3. The event id is claimed (a conditional put under that operator): a duplicate delivery ends here.
4. The payment intent is locked and re-fetched from the processor: its status now, not the event's payload or the
   order events came in, decides. A succeeded intent is posted with ``SalesDesk.card_sale`` (idempotent on the
   intent: a sale already posted is found, never posted twice); if the rules refuse it (the hoarding limit was
   reached meanwhile, the meter left the account) the payment is refunded in full and the record says why.
5. Money refunded in the processor's own dashboard (seen as a refunded total above what Voltvend refunded) is
   taken back out of the meter's credit as a card refund, once per refunded total; when the rules cannot (the
   credit is used), the payment's record says so for a person. A payment refunded in full before its sale was
   posted is not posted.
6. A failure of the handler frees the claim, so the processor's retry is handled afresh.
"""

from __future__ import annotations

import logging
import secrets
import time

from chalicelib.domain.errors import Conflict, DomainError
from chalicelib.domain.ledger import (
    Channel,
    Entry,
    EntryKind,
    entry_id_for,
    reversal_entry_id,
    stripe_refund_request_id,
    stripe_request_id,
)
from chalicelib.domain.money import format_amount
from chalicelib.domain.payments import (
    DISPUTE_CREATED,
    EventFacts,
    IntentState,
    PaymentRecord,
    TopUp,
    declined,
    disputed,
    event_facts,
    new_record,
    outside_refund_taken_in,
    refund_failed,
    refunded,
    refunded_outside,
    succeeded,
)
from chalicelib.domain.tenancy import CODE_PATTERN, Meter
from chalicelib.ports import (
    Clock,
    EventClaim,
    GatewayError,
    MoneyRepository,
    PaymentGateway,
    PaymentRepository,
    TenancyRepository,
)
from chalicelib.services.sales import SalesDesk

LOG = logging.getLogger("voltvend.payments")
LOCK_HOLD_MS = 30_000  # longer than any one settlement; a holder that died frees the intent after it
REVERSAL_LOCK_WAIT_S = 5.0


class EventBusy(Exception):
    """The event, or its payment intent, is being handled by another invocation: the processor should retry."""


class PaymentEvents:
    def __init__(self, gateway: PaymentGateway, payments: PaymentRepository, tenancy: TenancyRepository,
                 money: MoneyRepository, sales: SalesDesk, clock: Clock) -> None:
        self._gateway = gateway
        self._payments = payments
        self._tenancy = tenancy
        self._money = money
        self._sales = sales
        self._clock = clock

    def take(self, payload: bytes, signature_header: str) -> str:
        """Handle one webhook delivery; returns what became of it. Raises BadSignature (answer 400), EventBusy
        (409: retry later) or anything unexpected (500: the processor retries)."""
        facts = event_facts(self._gateway.parse_event(payload, signature_header))
        if not facts.handled:
            return "ignored"
        operator_id = self._operator(facts)
        if operator_id is None:
            return "ignored"
        claim = self._payments.claim_event(operator_id, facts.event_id, facts.event_type, self._clock.now())
        if claim is EventClaim.DONE:
            return "duplicate"
        if claim is EventClaim.BUSY:
            raise EventBusy(f"event {facts.event_id} is being handled")
        try:
            outcome = self._locked(operator_id, facts)
        except BaseException:
            self._payments.release_event(operator_id, facts.event_id)
            raise
        self._payments.finish_event(operator_id, facts.event_id, outcome, self._clock.now())
        return outcome

    def _operator(self, facts: EventFacts) -> str | None:
        """The operator the event belongs to, or None (logged) when it is not one of our operators' top-ups."""
        operator_id = facts.operator_id
        if operator_id is None and facts.account and facts.intent_id:  # a dispute: its intent says whose
            top_up = TopUp.from_metadata(self._gateway.payment_intent(facts.intent_id, facts.account).metadata)
            operator_id = top_up.operator_id if top_up else None
        if operator_id is None:
            LOG.info("event %s (%s) is no top-up of ours: ignored", facts.event_id, facts.event_type)
            return None
        # An id from outside goes into a key only once it is a well-formed company code.
        settings = self._payments.settings(operator_id) if CODE_PATTERN.match(operator_id) else None
        if settings is None or not facts.account or settings.connected_account != facts.account:
            LOG.warning("event %s (%s) on account %r names operator %r, whose account is %r: ignored",
                        facts.event_id, facts.event_type, facts.account, operator_id,
                        settings.connected_account if settings else None)
            return None
        return operator_id

    def _locked(self, operator_id: str, facts: EventFacts) -> str:
        assert facts.intent_id is not None
        holder = secrets.token_hex(8)
        if not self._payments.lock_payment(operator_id, facts.intent_id, holder, _now_ms(self._clock), LOCK_HOLD_MS):
            raise EventBusy(f"payment {facts.intent_id} is being settled")
        try:
            return self._settle(operator_id, facts)
        finally:
            self._payments.unlock_payment(operator_id, facts.intent_id, holder)

    def _settle(self, operator_id: str, facts: EventFacts) -> str:
        assert facts.intent_id is not None
        intent = self._gateway.payment_intent(facts.intent_id, facts.account)  # the processor's word, now
        top_up = TopUp.from_metadata(intent.metadata)
        if top_up is None or top_up.operator_id != operator_id:
            LOG.warning("payment %s on %s is no top-up of operator %s: ignored", intent.intent_id, facts.account,
                        operator_id)
            return "ignored: not this operator's top-up"
        if not self._tenancy.get_meters(operator_id, top_up.site_id, [top_up.meter_id]):
            LOG.warning("payment %s names meter %s/%s, which is not operator %s's: ignored", intent.intent_id,
                        top_up.site_id, top_up.meter_id, operator_id)
            return "ignored: not this operator's meter"
        now = self._clock.now()
        record = self._payments.payment(operator_id, intent.intent_id) or new_record(
            operator_id, intent, top_up, facts.account, now)
        if facts.event_type == DISPUTE_CREATED:
            return self._store(disputed(record, facts.dispute_reason, now))
        if intent.succeeded and record.entry_id is None:
            # A sale posted by a run that died before it stored the record: the ledger is the word.
            sale = self._money.entry(operator_id, entry_id_for(operator_id, stripe_request_id(intent.intent_id)))
            if sale is not None:
                self._store(succeeded(record, sale.entry_id, now))
                record = self._payments.payment(operator_id, intent.intent_id) or record
        if intent.succeeded and record.entry_id is None and refunded_outside(record, intent) > 0 \
                and intent.refunded_outside_minor >= intent.amount_minor:
            note = "refunded in full in the processor's dashboard before its sale was posted: not posted"
            return self._store(outside_refund_taken_in(record, refunded_outside(record, intent), note, now))
        if intent.succeeded:
            status = self._post(record, intent)
            posted = self._payments.payment(operator_id, intent.intent_id)
            if posted is not None and posted.entry_id is not None and refunded_outside(posted, intent) > 0:
                return self._take_back(posted, intent)
            return status
        if intent.failed:
            return self._store(declined(record, intent.failure_reason, now))
        return self._store(record)  # processing, or waiting for the customer: pending

    def _post(self, record: PaymentRecord, intent: IntentState) -> str:
        if record.settled:
            return f"already {record.status}"
        op, top_up = record.operator_id, record.top_up
        refusal = self._refusal(record, intent)
        if refusal is None:
            try:
                entry = self._sales.card_sale(op, top_up.site_id, top_up.meter_id, intent.amount_minor,
                                              payment_intent_id=intent.intent_id, payer=f"tenant:{top_up.tenant_id}")
            except DomainError as error:
                refusal = self._still_refused(record, intent, error)
            else:
                return self._store(succeeded(record, entry.entry_id, self._clock.now()))
        return self._refund_refused(record, refusal)

    def _take_back(self, record: PaymentRecord, intent: IntentState) -> str:
        """A refund made in the processor's dashboard: its credit comes back out of the meter, once."""
        amount, now = refunded_outside(record, intent), self._clock.now()
        note = f"{format_amount(amount)} refunded in the processor's dashboard"
        assert record.entry_id is not None
        if self._money.entry(record.operator_id, reversal_entry_id(record.operator_id, record.entry_id)):
            # The sale was reversed here already (its credit is out): the dashboard refund is the card side of it,
            # made by hand after our own refund failed.
            return self._store(outside_refund_taken_in(record, amount, f"{note}: the sale was already reversed",
                                                       now))
        try:
            entry = self._sales.card_refund(record.operator_id, record.site_id, record.meter_id, amount,
                                            request_id=stripe_refund_request_id(intent.intent_id,
                                                                                intent.refunded_outside_minor),
                                            payer="processor")
        except DomainError as error:
            money = self._money.money(record.operator_id, record.meter_id)
            if isinstance(error, Conflict) and money is not None and money.account_id == record.top_up.account_id:
                raise  # the meter was busy: the processor's retry judges it again
            # The rules refuse (the credit is used), or the meter left the account: no retry will change that.
            LOG.error("payment %s: %s, and its credit could not be taken back: %s", intent.intent_id, note,
                      error.message)
            return self._store(outside_refund_taken_in(
                record, amount, f"{note}; its credit could not be taken back ({error.message}): settle it with "
                                f"the account", now))
        LOG.warning("payment %s: %s; taken back from meter %s as %s", intent.intent_id, note, record.meter_id,
                    entry.entry_id)
        return self._store(outside_refund_taken_in(record, amount, f"{note}: taken back from the meter's credit",
                                                   now))

    def _refusal(self, record: PaymentRecord, intent: IntentState) -> str | None:
        """What rules out posting before the desk is asked: another currency, or the meter on another account."""
        operator = self._tenancy.get_operator(record.operator_id)
        currency = (operator.currency if operator else "CNY").lower()
        if intent.currency.lower() != currency:
            return f"paid in {intent.currency.upper()}, but credit is sold in {currency.upper()}"
        money = self._money.money(record.operator_id, record.meter_id)
        if money is None or money.account_id != record.top_up.account_id:
            return f"meter {record.meter_id} is no longer on account {record.top_up.account_id}"
        return None

    def _still_refused(self, record: PaymentRecord, intent: IntentState, error: DomainError) -> str:
        """The desk refused the sale. Its rules are asked again on fresh state: a refusal they confirm is final
        (refund); a conflict they do not (the meter was busy with other operations) is raised for a retry."""
        if not isinstance(error, Conflict):
            return error.message
        try:
            self._sales.check_top_up(record.operator_id, record.site_id, record.meter_id, intent.amount_minor)
        except DomainError as again:
            return again.message
        raise error

    def _refund_refused(self, record: PaymentRecord, reason: str) -> str:
        try:
            refund = self._gateway.refund(record.intent_id, record.connected_account, amount_minor=None,
                                          idempotency_key=f"voltvend-refused:{record.intent_id}", reason=reason)
        except GatewayError as error:
            LOG.error("payment %s was refused (%s) and its refund failed: %s", record.intent_id, reason, error)
            return self._store(refund_failed(record, f"{reason}; the refund failed: {error}", self._clock.now()))
        LOG.warning("payment %s was refused and refunded: %s", record.intent_id, reason)
        return self._store(refunded(record, refund_id=refund.refund_id, amount_minor=refund.amount_minor,
                                    reason=reason, at=self._clock.now()))

    def _store(self, record: PaymentRecord) -> str:
        self._payments.save_payment(record)
        return record.status.value

    def refunded_outside(self, operator_id: str, intent_id: str) -> int:
        """What of a card payment was refunded in the processor's dashboard and taken in (the desk asks before it
        reverses a card sale)."""
        record = self._payments.payment(operator_id, intent_id)
        return record.outside_refunded_minor if record else 0

    # -- an operator reversed a card sale ------------------------------------------------------------------------
    def card_reversed(self, meter: Meter, original: Entry, reversal: Entry) -> None:
        """Refund a reversed card sale through the processor (SalesDesk calls this after the reversal committed).

        Never raises: the reversal stands whatever happens here, and the payment's record says how the refund went.
        A retried reversal request calls this again; the refund's idempotency key (the reversal's entry id) makes
        that a no-op at the processor, or the retry of a refund that failed.
        """
        intent_id = original.request_id.removeprefix("stripe:")
        if original.kind is not EntryKind.SALE or original.channel is not Channel.CARD \
                or stripe_request_id(intent_id) != original.request_id:
            return  # a card paid at the desk's own terminal is refunded there
        try:
            self._refund_reversed(original.operator_id, intent_id, reversal)
        except Exception:
            LOG.exception("refund of reversed card sale %s (payment %s) on meter %s failed", original.entry_id,
                          intent_id, meter.meter_id)

    def _refund_reversed(self, operator_id: str, intent_id: str, reversal: Entry) -> None:
        holder, deadline = secrets.token_hex(8), time.monotonic() + REVERSAL_LOCK_WAIT_S
        while not self._payments.lock_payment(operator_id, intent_id, holder, _now_ms(self._clock), LOCK_HOLD_MS):
            if time.monotonic() > deadline:
                raise EventBusy(f"payment {intent_id} stayed locked")
            time.sleep(0.05)
        try:
            record = self._payments.payment(operator_id, intent_id)
            if record is None:
                LOG.error("card sale of payment %s has no payment record: refund it by hand", intent_id)
                return
            reason = f"sale reversed by {reversal.actor}: {reversal.reason}"
            try:
                refund = self._gateway.refund(intent_id, record.connected_account,
                                              amount_minor=reversal.amount_minor,
                                              idempotency_key=f"voltvend-reversal:{reversal.entry_id}", reason=reason)
            except GatewayError as error:
                self._store(refund_failed(record, f"{reason}; the refund failed: {error}", self._clock.now()))
                return
            self._store(refunded(record, refund_id=refund.refund_id, amount_minor=refund.amount_minor,
                                 reason=reason, at=self._clock.now()))
        finally:
            self._payments.unlock_payment(operator_id, intent_id, holder)


def _now_ms(clock: Clock) -> int:
    return int(clock.now().timestamp() * 1000)
