"""A pure model of the money path for one prepaid meter, driven by random operations and faults: the seed of the
``money_faults`` suite (shared/TARGETS.md), reusable by its benchmark without hypothesis.

The real domain code (accounts, ledger, delivery) runs against ``ModelMeter``, which behaves as METER.md says:
a command is applied only with count = stored + 1, a purchase only within the hoarding limit, a refund only while
the balance covers it. Faults: commands lost on the way, answers lost, the read-back lost, the bridge executing a
frame twice, the bridge offline for a while, and duplicate requests. The meter draws no energy here, so at
quiescence its remaining amount must equal the ledger's credit exactly.

``run_scenario(ops)`` returns a ``ScenarioResult``; ``random_scenario(rng, length)`` draws operations.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from chalicelib.domain import accounts, delivery
from chalicelib.domain.errors import DomainError
from chalicelib.domain.ledger import (
    Channel,
    Entry,
    EntryKind,
    LedgerAccount,
    Request,
    balances,
    check_balances,
    is_duplicate,
    meter_credit,
)

METER_ID = "m-model"
HOARDING_LIMIT = 100_000
POLICY = accounts.SalesPolicy(hoarding_limit_minor=HOARDING_LIMIT, min_top_up_minor=100, max_top_up_minor=50_000)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class Sell(NamedTuple):
    amount_minor: int
    channel: Channel = Channel.CASH


class Refund(NamedTuple):
    amount_minor: int


class Reverse(NamedTuple):
    pick: int  # which earlier sale or refund (modulo how many there are)


class Repeat(NamedTuple):
    pick: int  # which earlier request is posted again (a retried webhook, a double click)


class Fault(StrEnum):
    COMMAND_LOST = "command-lost"  # never reaches the meter, no answer
    ANSWER_LOST = "answer-lost"  # applied, but the answer never comes back
    READ_BACK_LOST = "read-back-lost"  # the count cannot be read this cycle
    EXECUTED_TWICE = "executed-twice"  # the bridge retries the frame on the bus
    DELAYED = "delayed"  # held up on the way: reaches the meter only after the next read-back


class Inject(NamedTuple):
    fault: Fault  # hits the next send


class Bridge(NamedTuple):
    online: bool


class Pump(NamedTuple):
    cycles: int  # delivery cycles run before the next operation


Op = Sell | Refund | Reverse | Repeat | Inject | Bridge | Pump


@dataclass
class ModelMeter:
    """A prepaid meter's purchase logic; ``applied`` is the model's x-ray of what it accepted, not a register."""

    purchase_count: int
    total_purchased_minor: int
    remaining_minor: int
    hoarding_limit_minor: int = HOARDING_LIMIT
    applied: list[str] = field(default_factory=list)

    def execute(self, sent: delivery.Delivery) -> bool:
        if sent.count != self.purchase_count + 1 or sent.count > delivery.MAX_PURCHASE_COUNT:
            return False
        if sent.command is delivery.CommandKind.PURCHASE:
            if self.remaining_minor + sent.amount_minor > self.hoarding_limit_minor:
                return False
            self.total_purchased_minor += sent.amount_minor
        elif self.remaining_minor < sent.amount_minor:
            return False
        self.remaining_minor += sent.signed_minor
        self.purchase_count = sent.count
        self.applied.append(sent.delivery_id)
        return True

    def registers(self) -> delivery.MeterRegisters:
        return delivery.MeterRegisters(self.purchase_count, self.total_purchased_minor, self.remaining_minor)


@dataclass(frozen=True)
class ScenarioResult:
    entries: int
    deliveries: int
    duplicates: int  # repeated requests recognised as such
    refused: int  # operations the rules refused (hoarding, used credit, double reversal...)
    lost: int  # delivering entries whose credit never reached the meter
    doubled: int  # deliveries the meter applied more than once
    problems: tuple[str, ...]  # every broken invariant, in words

    @property
    def ok(self) -> bool:
        return not self.problems


Builder = Callable[[Request], Entry]


class _World:
    """One run: the cloud's state (ledger, stored balances, queue) and the site's (bridge, meter)."""

    def __init__(self, start_count: int, start_remaining: int) -> None:
        self.meter = ModelMeter(start_count, 1_000_000, start_remaining)
        self.baseline = self.meter.registers()
        self.ticks = 0
        opening = accounts.MeterOpening(METER_ID, accounts.BillingMode.PREPAID_METER, start_remaining)
        opened = accounts.open_account("a-model", accounts.Customer("Model shop"), [opening], self._request("open"))
        self.account = opened.account
        self.entries: list[Entry] = []
        self.by_id: dict[str, Entry] = {}
        self.stored: Counter[LedgerAccount] = Counter()  # the running balances an adapter would keep
        self.requests: list[tuple[Request, Builder]] = []
        self.queue = delivery.MeterQueue(METER_ID, start_count)
        self.online = True
        self.fault: Fault | None = None
        self.delayed: delivery.Delivery | None = None
        self.stats: Counter[str] = Counter()
        for entry in opened.entries:
            self._store(entry)

    def _request(self, request_id: str, channel: Channel = Channel.CASH) -> Request:
        self.ticks += 1
        return Request("op-model", request_id, "cashier-1", channel, T0 + timedelta(minutes=self.ticks))

    def credit(self) -> int:
        """The meter's credit from the running balances, as a service reads it (the fold is checked at the end)."""
        return -self.stored[meter_credit(METER_ID)]

    def _store(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.by_id[entry.entry_id] = entry
        self.stored.update({p.account: p.amount_minor for p in entry.postings})
        if delivery.command_for(entry) is not None:
            self.queue = delivery.enqueue(self.queue, entry)

    def post(self, request: Request, build: Builder) -> str:
        """What a service does: build under the rules, then store unless the id is already there."""
        try:
            entry = build(request)
        except DomainError:
            return "refused"
        if is_duplicate(entry, self.by_id.get(entry.entry_id)):
            return "duplicate"
        self._store(entry)
        self.requests.append((request, build))
        return "posted"

    def new(self, request: Request, build: Builder) -> None:
        self.stats[self.post(request, build)] += 1

    def repeat(self, pick: int) -> None:
        """A retried request: its entry id is found before any rule runs, and nothing is posted twice."""
        if not self.requests:
            return
        request, build = self.requests[pick % len(self.requests)]
        before = len(self.entries), self.queue
        outcome = self.post(request._replace(created_at=request.created_at + timedelta(seconds=1)), build)
        if outcome == "posted" or (len(self.entries), self.queue) != before:
            self.stats["posted_twice"] += 1
        else:
            self.stats["repeats_absorbed"] += 1

    def apply(self, op: Op) -> None:
        if isinstance(op, Sell):
            quantity = accounts.SaleQuantity(op.amount_minor)
            self.new(self._request(f"sale-{self.ticks}", op.channel), lambda r: accounts.sell(
                self.account, METER_ID, quantity, balance_minor=self.credit(), policy=POLICY, request=r))
        elif isinstance(op, Refund):
            self.new(self._request(f"refund-{self.ticks}"), lambda r: accounts.refund(
                self.account, METER_ID, op.amount_minor, remaining_minor=self.credit(), request=r))
        elif isinstance(op, Reverse):
            self._reverse(op.pick)
        elif isinstance(op, Repeat):
            self.repeat(op.pick)
        else:
            self._site(op)

    def _reverse(self, pick: int) -> None:
        originals = [e for e in self.entries if e.kind in (EntryKind.SALE, EntryKind.REFUND)]
        if not originals:
            return
        original = originals[pick % len(originals)]
        self.new(self._request(f"reversal-{self.ticks}"), lambda r: accounts.reverse(
            self.account, original, self.entries, "model: mistaken", balance_minor=self.credit(), policy=POLICY,
            request=r))

    def _site(self, op: Inject | Bridge | Pump) -> None:
        if isinstance(op, Inject):
            self.fault = op.fault
        elif isinstance(op, Bridge):
            self.online = op.online
        else:
            for _ in range(op.cycles):
                self.cycle()

    def cycle(self) -> None:
        """One delivery cycle: settle what is in flight by reading back, else send the next delivery."""
        if not self.online:
            return
        if self.delayed is not None:
            self.meter.execute(self.delayed)
            self.delayed = None
        head = self.queue.head()
        if head is not None and head.state is delivery.DeliveryState.SENT:
            self._read_back(refused=False)
            return
        ready = delivery.next_to_send(self.queue)
        if ready is not None:
            self._send(ready)

    def _send(self, ready: delivery.Delivery) -> None:
        self.queue, sent = delivery.mark_sent(self.queue, ready.delivery_id)
        self.stats["sends"] += 1
        fault, self.fault = self.fault, None
        if fault is Fault.DELAYED:
            self.delayed = sent
            self._read_back(refused=False)  # an honest "not applied yet": the same count goes again
            return
        accepted = fault is not Fault.COMMAND_LOST and self.meter.execute(sent)
        if fault is Fault.EXECUTED_TWICE:
            self.meter.execute(sent)  # refused by the meter's own count check
        if fault in (Fault.COMMAND_LOST, Fault.ANSWER_LOST):
            return
        if accepted:
            self.queue = delivery.acknowledge(self.queue, sent.delivery_id)
        self._read_back(refused=not accepted, lost=fault is Fault.READ_BACK_LOST)

    def _read_back(self, *, refused: bool, lost: bool = False) -> None:
        if lost:
            return
        outcome = delivery.apply_read_back(self.queue, self.meter.purchase_count, refused=refused)
        self.queue = outcome.queue
        self.stats[f"verdict-{outcome.verdict}"] += 1

    def settle(self) -> None:
        """Quiescence: the bridge back, no more faults, cycles until nothing is left in flight."""
        self.online, self.fault = True, None
        for _ in range(3 * len(self.queue.deliveries) + 3):
            self.cycle()


def _problems(world: _World) -> list[str]:
    found = [f"{d.kind}: {d.message}" for d in delivery.reconcile_meter(
        METER_ID, world.baseline, world.meter.registers(), world.entries, world.queue)]
    found += [f"stored {m.account} = {m.stored_minor}, derived {m.derived_minor}"
              for m in check_balances(world.stored, world.entries)]
    folded = balances(world.entries).meter(METER_ID).credit
    if folded != world.meter.remaining_minor:
        found.append(f"ledger credit {folded} != meter remaining {world.meter.remaining_minor}")
    if world.queue.blocked or world.queue.undelivered():
        found.append(f"not quiescent: {len(world.queue.undelivered())} undelivered, blocked={world.queue.blocked!r}")
    delivered = [d.delivery_id for d in world.queue.deliveries if d.state is delivery.DeliveryState.DELIVERED]
    if list(dict.fromkeys(world.meter.applied)) != delivered:
        found.append("the meter applied deliveries other than, or in another order than, those marked delivered")
    if world.stats["posted_twice"]:
        found.append(f"{world.stats['posted_twice']} repeated requests were posted twice")
    in_step = world.meter.purchase_count == world.queue.confirmed_count  # else reconciliation has said so already
    if in_step and delivery.effective_balance(world.meter.registers(), world.queue) != folded:
        found.append("the effective balance differs from the ledger's credit")
    return found


def run_scenario(ops: Sequence[Op], *, start_count: int = 0, start_remaining: int = 0) -> ScenarioResult:
    world = _World(start_count, start_remaining)
    for op in ops:
        world.apply(op)
    world.settle()
    delivering = [e.entry_id for e in world.entries if e.delivers_to_meter]
    applied = Counter(world.meter.applied)
    return ScenarioResult(
        entries=len(world.entries), deliveries=len(delivering), duplicates=world.stats["repeats_absorbed"],
        refused=world.stats["refused"], lost=sum(1 for entry_id in delivering if applied[entry_id] == 0),
        doubled=sum(1 for n in applied.values() if n > 1), problems=tuple(_problems(world)))


def random_op(rng: random.Random) -> Op:
    roll = rng.random()
    if roll < 0.30:
        return Sell(rng.choice((100, 500, 1_000, 5_000, 20_000, 50_000)), rng.choice(list(Channel)[:3]))
    if roll < 0.42:
        return Refund(rng.choice((100, 1_000, 5_000, 30_000)))
    if roll < 0.52:
        return Reverse(rng.randrange(1_000))
    if roll < 0.62:
        return Repeat(rng.randrange(1_000))
    if roll < 0.76:
        return Inject(rng.choice(list(Fault)))
    if roll < 0.84:
        return Bridge(online=rng.random() < 0.5)
    return Pump(rng.randrange(1, 4))


def random_scenario(rng: random.Random, length: int = 40) -> list[Op]:
    return [random_op(rng) for _ in range(length)]
