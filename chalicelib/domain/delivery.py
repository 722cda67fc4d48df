"""Credit delivery to prepaid meters, pure: the purchase-count sequence the cloud owns, each delivery's state
machine, the read-back rule, and the reconciliation of ledger, deliveries, meter registers and payments.

A meter accepts a purchase (or refund) command only with its stored purchase count + 1. Every ledger entry that
changes a prepaid meter's credit (``Entry.delivers_to_meter``) becomes one delivery in that meter's queue, in the
order the entries were posted, and the queue sends strictly in order, one at a time: a delivery gets its count
(confirmed count + 1) at its first send and keeps it for ever, so a resend is the same command and the meter's
own count check makes it idempotent. Nothing is cancelled: a reversal is one more delivery, so the meter's count
always equals the opening count plus the number of delivering entries applied.

States: pending → sent → delivered | failed(reason); a send whose outcome is unknown (lost acknowledgement, bridge
gone) is settled only by reading the meter's count back:

* count == the delivery's count     → delivered (never resend);
* count == the delivery's count − 1 → not applied: pending again with the same count, may be resent;
* anything else, or a refusal       → failed; the queue stops until a person resolves the discrepancy.

A count that moves while nothing of ours is in flight also stops the queue: otherwise a foreign purchase taking
count N would make our delivery with count N look delivered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import NamedTuple

from chalicelib.domain.errors import Conflict, NotFound, ValidationError
from chalicelib.domain.ledger import Channel, Entry, EntryKind, balances
from chalicelib.domain.money import format_amount

MAX_PURCHASE_COUNT = 0xFFFF  # one UINT16 register
Evidence = Mapping[str, int | str | None]


class CommandKind(StrEnum):
    PURCHASE = "purchase"
    REFUND = "refund"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    delivery_id: str  # the id of the ledger entry it carries: one delivery per entry
    meter_id: str
    command: CommandKind
    amount_minor: int
    state: DeliveryState = DeliveryState.PENDING
    count: int | None = None  # bound at the first send
    attempts: int = 0
    failure: str = ""

    @property
    def signed_minor(self) -> int:
        return self.amount_minor if self.command is CommandKind.PURCHASE else -self.amount_minor


@dataclass(frozen=True)
class MeterQueue:
    meter_id: str
    confirmed_count: int  # the meter's purchase count as last confirmed
    deliveries: tuple[Delivery, ...] = ()  # posting order; delivered ones stay for the record
    blocked: str = ""  # why sending is stopped ("" = not stopped)

    def head(self) -> Delivery | None:
        """The earliest delivery not yet delivered: the only one that may go out."""
        return next((d for d in self.deliveries if d.state is not DeliveryState.DELIVERED), None)

    def get(self, delivery_id: str) -> Delivery:
        found = next((d for d in self.deliveries if d.delivery_id == delivery_id), None)
        if found is None:
            raise NotFound(f"no delivery {delivery_id} for meter {self.meter_id}")
        return found

    def undelivered(self) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if d.state is not DeliveryState.DELIVERED)

    def _with(self, delivery: Delivery, *, confirmed_count: int | None = None,
              blocked: str | None = None) -> MeterQueue:
        updated = tuple(delivery if d.delivery_id == delivery.delivery_id else d for d in self.deliveries)
        return replace(self, deliveries=updated,
                       confirmed_count=self.confirmed_count if confirmed_count is None else confirmed_count,
                       blocked=self.blocked if blocked is None else blocked)


class DiscrepancyKind(StrEnum):
    COUNT_MOVED = "count-moved"  # the meter's count changed without a delivery of ours
    DELIVERY_FAILED = "delivery-failed"
    NOT_QUEUED = "entry-not-queued"  # credit in the ledger that will never reach the meter
    NOT_IN_LEDGER = "delivery-without-entry"
    PURCHASE_COUNT = "purchase-count"
    TOTAL_PURCHASED = "total-purchased"
    REMAINING_ABOVE_LEDGER = "remaining-above-ledger"
    REMAINING_BELOW_BOUND = "remaining-below-bound"
    PAYMENT_NOT_CREDITED = "payment-not-credited"
    SALE_WITHOUT_PAYMENT = "sale-without-payment"
    PAYMENT_AMOUNT = "payment-amount"
    STORED_BALANCE = "stored-balance"  # the running balance kept with the meter differs from its entries' fold


@dataclass(frozen=True)
class Discrepancy:
    kind: DiscrepancyKind
    subject: str  # meter id, or the request id of a payment
    message: str
    evidence: Evidence = field(default_factory=dict, hash=False)


def command_for(entry: Entry) -> tuple[CommandKind, int] | None:
    """The meter command an entry needs, or None (charges, opening balances, cloud-billed meters)."""
    if not entry.delivers_to_meter or entry.meter_id is None:
        return None
    change = entry.credit_change(entry.meter_id)
    return (CommandKind.PURCHASE, change) if change > 0 else (CommandKind.REFUND, -change)


def enqueue(queue: MeterQueue, entry: Entry) -> MeterQueue:
    """Queue the entry's command behind every earlier one; enqueuing the same entry again changes nothing."""
    command = command_for(entry)
    if command is None or entry.meter_id != queue.meter_id:
        raise ValidationError(f"entry {entry.entry_id} has nothing to deliver to meter {queue.meter_id}")
    if any(d.delivery_id == entry.entry_id for d in queue.deliveries):
        return queue
    delivery = Delivery(entry.entry_id, queue.meter_id, command[0], command[1])
    return replace(queue, deliveries=(*queue.deliveries, delivery))


def next_to_send(queue: MeterQueue) -> Delivery | None:
    head = queue.head()
    if queue.blocked or head is None or head.state is not DeliveryState.PENDING:
        return None
    return head


def mark_sent(queue: MeterQueue, delivery_id: str) -> tuple[MeterQueue, Delivery]:
    """Record a send (call it before the command leaves): returns the delivery with the count to send."""
    head, wanted = queue.head(), queue.get(delivery_id)
    if queue.blocked:
        raise Conflict(f"deliveries to meter {queue.meter_id} are stopped: {queue.blocked}")
    if wanted.state is DeliveryState.DELIVERED:
        raise Conflict(f"delivery {delivery_id} was delivered at count {wanted.count}: it is never sent again")
    if head is None or head.delivery_id != delivery_id:
        raise Conflict(f"delivery {delivery_id} waits behind {head.delivery_id if head else '?'}: "
                       "deliveries go out strictly in order")
    if head.state is not DeliveryState.PENDING:
        raise Conflict(f"delivery {delivery_id} is {head.state}: only a read-back of the count may settle it")
    count = head.count if head.count is not None else queue.confirmed_count + 1
    if count > MAX_PURCHASE_COUNT:
        raise Conflict(f"meter {queue.meter_id} has reached the largest purchase count {MAX_PURCHASE_COUNT}")
    sent = replace(head, state=DeliveryState.SENT, count=count, attempts=head.attempts + 1)
    return queue._with(sent), sent


def unsend(queue: MeterQueue, delivery_id: str) -> MeterQueue:
    """The send was recorded but the command never left the cloud (bridge offline): certainly not applied, so
    the delivery waits again with the same count."""
    head = queue.head()
    if head is None or head.delivery_id != delivery_id or head.state is not DeliveryState.SENT:
        raise Conflict(f"delivery {delivery_id} is not the one in flight")
    return queue._with(replace(head, state=DeliveryState.PENDING))


def acknowledge(queue: MeterQueue, delivery_id: str) -> MeterQueue:
    """The meter answered the command: applied, at the delivery's count."""
    head = queue.head()
    if head is None or head.delivery_id != delivery_id or head.state is not DeliveryState.SENT or head.count is None:
        raise Conflict(f"delivery {delivery_id} is not awaiting an answer")
    return queue._with(replace(head, state=DeliveryState.DELIVERED), confirmed_count=head.count)


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RESEND = "resend"  # not applied: the same delivery, with the same count, may go again
    FAILED = "failed"
    CONSISTENT = "consistent"  # nothing in flight and the count is where we left it
    COUNT_MOVED = "count-moved"
    BLOCKED = "blocked"  # already stopped: only a person's resolution moves it on


class ReadBack(NamedTuple):
    queue: MeterQueue
    verdict: Verdict
    discrepancy: Discrepancy | None = None


def apply_read_back(queue: MeterQueue, meter_count: int, *, refused: bool = False) -> ReadBack:
    """Settle the delivery in flight from the count read after it was sent; ``refused``: the meter answered the
    command with an exception (a refusal is final: the same command would be refused again)."""
    if queue.blocked:
        return ReadBack(queue, Verdict.BLOCKED)
    head = queue.head()
    if head is None or head.count is None:
        return _idle_read_back(queue, meter_count)
    if meter_count == head.count:
        return ReadBack(queue._with(replace(head, state=DeliveryState.DELIVERED), confirmed_count=meter_count),
                        Verdict.DELIVERED)
    if meter_count == head.count - 1 and not refused:
        return ReadBack(queue._with(replace(head, state=DeliveryState.PENDING)), Verdict.RESEND)
    why = (f"meter refused the {head.command} of {format_amount(head.amount_minor)}" if refused
           else f"meter count {meter_count}, expected {head.count} (applied) or {head.count - 1} (not applied)")
    failed = replace(head, state=DeliveryState.FAILED, failure=why)
    evidence: Evidence = {"delivery": head.delivery_id, "count_sent": head.count, "meter_count": meter_count,
                          "amount": head.signed_minor}
    discrepancy = Discrepancy(DiscrepancyKind.DELIVERY_FAILED, queue.meter_id, why, evidence)
    return ReadBack(queue._with(failed, blocked=why), Verdict.FAILED, discrepancy)


def _idle_read_back(queue: MeterQueue, meter_count: int) -> ReadBack:
    if meter_count == queue.confirmed_count:
        return ReadBack(queue, Verdict.CONSISTENT)
    why = f"meter count moved from {queue.confirmed_count} to {meter_count} with nothing of ours in flight"
    discrepancy = Discrepancy(DiscrepancyKind.COUNT_MOVED, queue.meter_id, why,
                              {"confirmed_count": queue.confirmed_count, "meter_count": meter_count})
    return ReadBack(replace(queue, blocked=why), Verdict.COUNT_MOVED, discrepancy)


def resolve(queue: MeterQueue, *, meter_count: int, head_applied: bool) -> MeterQueue:
    """A person has checked the meter: take its count as confirmed and say whether the stuck delivery landed.
    One not applied goes back to pending without a count, to be sent with ``meter_count`` + 1."""
    head = queue.head()
    resolved = replace(queue, confirmed_count=meter_count, blocked="")
    if head is None or head.count is None:
        return resolved
    if head_applied:
        return resolved._with(replace(head, state=DeliveryState.DELIVERED, count=meter_count, failure=""))
    return resolved._with(replace(head, state=DeliveryState.PENDING, count=None, failure=""))


# -- what the meter should show -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterRegisters:
    purchase_count: int
    total_purchased_minor: int
    remaining_minor: int


def effective_balance(registers: MeterRegisters, queue: MeterQueue) -> int:
    """What the meter will hold once every queued delivery lands: the balance sales and refunds are judged on.
    The registers must be read at the confirmed count, or an applied delivery would be counted twice."""
    if registers.purchase_count != queue.confirmed_count:
        raise Conflict(f"meter {queue.meter_id} was read at count {registers.purchase_count}, not the confirmed "
                       f"{queue.confirmed_count}: settle the read-back first")
    return registers.remaining_minor + sum(d.signed_minor for d in queue.undelivered())


def balance_seen(remaining_minor: int, read_count: int, queue: MeterQueue) -> int:
    """The balance to judge a sale or refund on, from the meter's last reading (taken at ``read_count``): what it
    showed, plus every delivery it had not applied yet — queued ones, and delivered ones with a later count.
    Consumption since the reading can only lower it, and the meter checks its own limits again."""
    unseen = [d for d in queue.deliveries
              if d.state is not DeliveryState.DELIVERED or (d.count is not None and d.count > read_count)]
    return remaining_minor + sum(d.signed_minor for d in unseen)


class Expected(NamedTuple):
    purchase_count: int
    total_purchased_minor: int
    remaining_ceiling_minor: int  # consumption only lowers the remaining amount

    def plus(self, change: int) -> Expected:
        return Expected(self.purchase_count + 1, self.total_purchased_minor + max(change, 0),
                        self.remaining_ceiling_minor + change)


def expected_registers(meter_id: str, baseline: MeterRegisters, entries: Iterable[Entry],
                       queue: MeterQueue) -> tuple[Expected, Expected]:
    """Ledger-derived registers: (if the delivery in flight has not landed, if it has); equal when none is."""
    states = {d.delivery_id: d for d in queue.deliveries}
    settled = in_flight = Expected(baseline.purchase_count, baseline.total_purchased_minor, baseline.remaining_minor)
    for entry in entries:
        if not entry.delivers_to_meter or entry.meter_id != meter_id:
            continue
        delivery = states.get(entry.entry_id)
        change = entry.credit_change(meter_id)
        if delivery is not None and delivery.state is DeliveryState.DELIVERED:
            settled, in_flight = settled.plus(change), in_flight.plus(change)
        elif delivery is not None and delivery.count is not None:
            in_flight = in_flight.plus(change)
    return settled, in_flight


def _queue_matches_ledger(meter_id: str, entries: Sequence[Entry], queue: MeterQueue) -> list[Discrepancy]:
    delivering = {e.entry_id: e for e in entries if e.delivers_to_meter and e.meter_id == meter_id}
    queued = {d.delivery_id: d for d in queue.deliveries}
    found = [Discrepancy(DiscrepancyKind.NOT_QUEUED, meter_id, f"{e.kind} {entry_id} was never queued for the meter",
                         {"entry": entry_id, "amount": e.credit_change(meter_id)})
             for entry_id, e in delivering.items() if entry_id not in queued]
    found += [Discrepancy(DiscrepancyKind.NOT_IN_LEDGER, meter_id, f"delivery {d.delivery_id} has no ledger entry",
                          {"delivery": d.delivery_id, "amount": d.signed_minor, "state": d.state})
              for d in queue.deliveries if d.delivery_id not in delivering]
    found += [Discrepancy(DiscrepancyKind.DELIVERY_FAILED, meter_id, d.failure, {"delivery": d.delivery_id})
              for d in queue.deliveries if d.state is DeliveryState.FAILED]
    return found


def reconcile_meter(meter_id: str, baseline: MeterRegisters, registers: MeterRegisters, entries: Sequence[Entry],
                    queue: MeterQueue, *, max_consumption_minor: int | None = None) -> list[Discrepancy]:
    """Compare what the ledger says the meter should show with what it shows. ``baseline``: its registers when it
    joined the account; ``max_consumption_minor``: the most its energy since then can have cost (None: unknown)."""
    found = _queue_matches_ledger(meter_id, entries, queue)
    candidates = expected_registers(meter_id, baseline, entries, queue)
    expected = next((c for c in candidates if c.purchase_count == registers.purchase_count), candidates[0])
    evidence = {"expected_" + k: v for k, v in expected._asdict().items()} | {
        "purchase_count": registers.purchase_count, "total_purchased": registers.total_purchased_minor,
        "remaining": registers.remaining_minor}
    checks = [
        (registers.purchase_count != expected.purchase_count, DiscrepancyKind.PURCHASE_COUNT,
         f"purchase count {registers.purchase_count}, the ledger says {expected.purchase_count}"),
        (registers.total_purchased_minor != expected.total_purchased_minor, DiscrepancyKind.TOTAL_PURCHASED,
         f"total purchased {format_amount(registers.total_purchased_minor)}, the ledger says "
         f"{format_amount(expected.total_purchased_minor)}"),
        (registers.remaining_minor > expected.remaining_ceiling_minor, DiscrepancyKind.REMAINING_ABOVE_LEDGER,
         f"the meter holds {format_amount(registers.remaining_minor)}, more than the ledger ever gave it"),
        (max_consumption_minor is not None
         and registers.remaining_minor < expected.remaining_ceiling_minor - max_consumption_minor,
         DiscrepancyKind.REMAINING_BELOW_BOUND, "the meter holds less than its energy use can explain"),
    ]
    return found + [Discrepancy(kind, meter_id, message, evidence) for failed, kind, message in checks if failed]


@dataclass(frozen=True)
class Payment:
    request_id: str  # ledger.stripe_request_id(payment intent id)
    amount_minor: int


def reconcile_payments(entries: Iterable[Entry], payments: Iterable[Payment]) -> list[Discrepancy]:
    """Every succeeded card payment is one card sale of the same amount, and the other way round."""
    sales = {e.request_id: e for e in entries if e.kind is EntryKind.SALE and e.channel is Channel.CARD}
    paid = {p.request_id: p for p in payments}
    found = [Discrepancy(DiscrepancyKind.PAYMENT_NOT_CREDITED, rid, "a payment was taken but no sale was posted",
                         {"amount": p.amount_minor}) for rid, p in paid.items() if rid not in sales]
    found += [Discrepancy(DiscrepancyKind.SALE_WITHOUT_PAYMENT, rid, "a card sale has no payment behind it",
                          {"entry": e.entry_id, "amount": e.amount_minor})
              for rid, e in sales.items() if rid not in paid]
    found += [Discrepancy(DiscrepancyKind.PAYMENT_AMOUNT, rid, "the sale and the payment differ",
                          {"entry": sales[rid].entry_id, "sale": sales[rid].amount_minor, "paid": p.amount_minor})
              for rid, p in paid.items() if rid in sales and sales[rid].amount_minor != p.amount_minor]
    return found


def ledger_credit(entries: Iterable[Entry], meter_id: str) -> int:
    """The customer's credit on one meter as the ledger has it (a cloud-billed meter's balance)."""
    return balances(entries).meter(meter_id).credit
