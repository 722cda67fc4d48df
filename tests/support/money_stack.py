"""The money path through the real services, with faults: the stack layer of the ``money_faults`` suite.

One scenario is one fresh prepaid meter on its own site (so the delivery sweep sees only its work): opened on an
account by the real ``SalesDesk``, sold to, refunded and reversed through it, with ``CreditDelivery`` delivering
through a ``ModelBridge`` (tests/support/model_bridge.py) to a ``ModelMeter``, and ``DynamoMoneyRepository``
against DynamoDB Local underneath. Operations and faults are drawn from a seeded RNG; two-thread operations
(``Together``, ``Twice``) interleave as the scheduler decides, so only they are not exactly replayable.

Faults: a crash inside a money operation's transaction (before the write) and just after it (before the delivery
kick), in the delivery worker's writes, and after mark-sent before the command leaves; the command lost, the meter
applying it with the answer lost, the read-back lost, the write's answer lost, the write executed twice on the
bus, a command held back until a newer one overtakes it, an answer delivered twice or long after the rest;
answers delivered out of order; the bridge offline (answers kept in its buffer until it returns) or gone in the
middle of a push; the same request re-submitted later and twice at the same moment; two cashiers (or a cashier and
the worker) at once.

At the end the bridge is back, faults stop, and the sweep runs (``PROBE_AFTER`` at zero: see ``probes_at_once``)
until nothing is in flight. Then: the ledger's credit for the meter (fold of its entries) equals what the model
meter holds (it draws no energy), every delivering entry was applied exactly once, the stored credit equals the
fold, nothing is blocked or pending, reconciliation finds nothing, and every request answered as posted is in the
ledger once.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import NamedTuple, cast

from gateway_bridge.protocol import BatchResult

from chalicelib.bootstrap import get_services
from chalicelib.domain import delivery as delivery_rules
from chalicelib.domain.access import Grant, Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import DomainError
from chalicelib.domain.ledger import (
    AccountKind,
    Entry,
    EntryKind,
    balances,
    cashier_request_id,
    check_balances,
    meter_credit,
)
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.money import format_amount
from chalicelib.domain.money_faults_model import HOARDING_LIMIT, ModelMeter
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.services import credit_delivery
from chalicelib.services.audit import operation
from chalicelib.services.bridge_link import BridgeLink
from chalicelib.services.credit_delivery import CreditDelivery
from chalicelib.services.sales import SalesDesk
from tests.support.model_bridge import Crash, CrashingMoney, CrashPoint, LinkFault, ModelBridge

AMOUNTS = (100, 500, 1_000, 5_000, 20_000, 50_000)
REFUNDS = (100, 1_000, 5_000, 30_000)
CHANNELS = ("cash", "card", "transfer")
START_TOTAL_PURCHASED = 1_000_000
SETTLE_ROUNDS = 12


class Sale(NamedTuple):
    amount_minor: int
    channel: str = "cash"


class Refund(NamedTuple):
    amount_minor: int


class Reverse(NamedTuple):
    pick: int  # which earlier posted sale or refund (modulo how many)


class Retry(NamedTuple):
    pick: int  # which earlier request is sent again with its request id (modulo how many)


class Deliver(NamedTuple):
    shuffle_seed: int = 0  # the bridge's waiting answers reach the cloud; 0: in order, else shuffled by this seed


class Sweep(NamedTuple):
    rounds: int = 1  # the minute job, as many times


class Late(NamedTuple):
    shuffle_seed: int = 0  # the answers held back by ``LinkFault.ANSWER_LATE`` arrive now


ClientOp = Sale | Refund | Reverse | Retry | Deliver | Sweep | Late


class Together(NamedTuple):
    first: ClientOp  # two at once, in two threads: two cashiers, or a cashier and the delivery worker
    second: ClientOp


class Twice(NamedTuple):
    amount_minor: int  # one sale submitted twice at the same moment, with one request id (a double click)


class CrashAt(NamedTuple):
    point: CrashPoint  # arms one crash there, for the next operation that reaches it


class Hit(NamedTuple):
    fault: LinkFault  # hits the next command the bridge is given


class Online(NamedTuple):
    online: bool


Op = ClientOp | Together | Twice | CrashAt | Hit | Online


@dataclass
class Asked:
    """One request as the client made it, and what it was last answered."""

    kind: EntryKind  # sale, refund or reversal
    token: str
    amount_minor: int = 0
    channel: str = "cash"
    original: str = ""  # the entry a reversal undoes
    answer: str = ""  # "posted", "refused" or "crashed"
    entry_id: str = ""
    tries: int = 0


@dataclass(frozen=True)
class StackResult:
    entries: int
    deliveries: int
    duplicates: int  # repeated submissions of a request (later, or at the same moment)
    refused: int  # answers refusing by the rules (hoarding, unused credit, already reversed...)
    crashes: int  # injected crashes that fired
    faults: int  # faults injected by the scenario's operations
    lost: int  # delivering entries never applied, and requests answered as posted that the ledger lacks
    doubled: int  # deliveries applied more than once, and requests posted more than once
    problems: tuple[str, ...]
    stats: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@contextmanager
def probes_at_once() -> Iterator[None]:
    """A send with no answer is probed at the next sweep, not 20 s later (the scenarios do not wait)."""
    saved = credit_delivery.PROBE_AFTER
    credit_delivery.PROBE_AFTER = timedelta(0)
    try:
        yield
    finally:
        credit_delivery.PROBE_AFTER = saved


def new_operator_id() -> str:
    """A tenant of its own per scenario: no operator record is needed by the desk or the worker."""
    return f"mf-{secrets.token_hex(6)}"


class StackWorld:
    """One scenario's site, meter, services and client; ``apply`` the operations, then ``settle`` and ``check``."""

    def __init__(self, operator_id: str, *, start_count: int, start_remaining: int) -> None:
        services = get_services()
        token = secrets.token_hex(4)
        self.operator_id, self.site_id = operator_id, f"mf_{token}"
        self.meter = Meter(operator_id, self.site_id, f"m_{token}", f"SN{token}", "DTSY1352", "c1", 1, "u1",
                           BillingMode.PREPAID_METER)
        self.model = ModelMeter(start_count, START_TOTAL_PURCHASED, start_remaining, HOARDING_LIMIT)
        self.baseline = self.model.registers()
        self.money = CrashingMoney(services.money)
        self.link = ModelBridge(self.meter, self.model)
        # The double has the two methods CreditDelivery calls on its link (send, bridges_of).
        self.delivery = CreditDelivery(self.money, services.tenancy, cast(BridgeLink, self.link), services.readings,
                                       services.clock)
        self.desk = SalesDesk(services.tenancy, self.money, services.readings, services.clock, lambda _meter: None)
        self.desk.delivered = self.delivery.pump  # as the composition root wires it
        self.actor = Actor(operator_id, "boss", "Boss", Grant(Role.ADMINISTRATOR), "session-model", "csrf-model")
        self.asked: list[Asked] = []
        self.stats: Counter[str] = Counter()
        self.problems: list[str] = []
        self.notes: list[str] = []  # oddities that are not failures, for the report
        self._lock = threading.Lock()  # the client's records, written from two threads by Together and Twice
        self._open(start_count, start_remaining)

    def _open(self, start_count: int, start_remaining: int) -> None:
        services, now = get_services(), datetime.now(UTC)
        site = Site(self.operator_id, self.site_id, "Money faults", hoarding_limit_minor=HOARDING_LIMIT)
        services.tenancy.add_site(site, operation(self.operator_id, "model", "site.create", self.site_id, now))
        services.tenancy.add_meters([self.meter])
        state = StoredState(self.meter.meter_id, now, {"remaining_amount": format_amount(start_remaining),
                                                       "purchase_count": start_count, "relay_state": 0}, (), now, 0)
        services.readings.put_states(self.operator_id, self.site_id, [state])
        self.desk.open_account(self.actor, self.site_id, "Model shop", [self.meter.meter_id],
                               request_id=f"open-{secrets.token_hex(6)}")
        self.opening = {e.request_id for e in self.money.meter_entries(self.operator_id, self.meter.meter_id)}

    # -- operations --------------------------------------------------------------------------------
    def apply(self, op: Op) -> None:
        if isinstance(op, CrashAt):
            if op.point is CrashPoint.BEFORE_SEND:
                self.link.crash_before_send = True
            else:
                self.money.arm(op.point)
        elif isinstance(op, Hit):
            self.link.faults.append(op.fault)
        elif isinstance(op, Online):
            self._online(op.online)
        elif isinstance(op, Together):
            self._at_once(lambda: self.client(op.first), lambda: self.client(op.second))
        elif isinstance(op, Twice):
            request = self.ask(Asked(EntryKind.SALE, secrets.token_hex(6), op.amount_minor))
            self._at_once(lambda: self._submit(request), lambda: self._submit(request))
        else:
            self.client(op)

    def client(self, op: ClientOp) -> None:
        if isinstance(op, Sale):
            self._submit(self.ask(Asked(EntryKind.SALE, secrets.token_hex(6), op.amount_minor, op.channel)))
        elif isinstance(op, Refund):
            self._submit(self.ask(Asked(EntryKind.REFUND, secrets.token_hex(6), op.amount_minor)))
        elif isinstance(op, Reverse):
            originals = [a for a in self.asked if a.kind is not EntryKind.REVERSAL and a.entry_id]
            if originals:
                original = originals[op.pick % len(originals)].entry_id
                self._submit(self.ask(Asked(EntryKind.REVERSAL, secrets.token_hex(6), original=original)))
        elif isinstance(op, Retry):
            if self.asked:
                self._submit(self.asked[op.pick % len(self.asked)])
        elif isinstance(op, Deliver):
            self._deliver(self.link.take_answers(), op.shuffle_seed)
        elif isinstance(op, Late):
            self._deliver(self.link.take_late(), op.shuffle_seed)
        else:
            for _ in range(op.rounds):
                self._worker(lambda: self.delivery.sweep(self.operator_id, self.site_id))

    def ask(self, request: Asked) -> Asked:
        with self._lock:
            self.asked.append(request)
        return request

    def _at_once(self, *calls: Callable[[], object]) -> None:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            for future in [pool.submit(call) for call in calls]:
                future.result()  # anything but an injected crash or a refusal is a failure of the test

    def _online(self, online: bool) -> None:
        self.link.online = online
        if online:  # the bridge says hello: what waited for it goes out (BridgeLink.bridge_ready)
            self._worker(lambda: self.delivery.on_bridge_back(self.link.bridge()))

    def _worker(self, call: Callable[[], object]) -> None:
        with suppress(Crash):  # the worker died; its next run (a sweep) takes over from what was stored
            call()

    def _deliver(self, answers: list[BatchResult], shuffle_seed: int = 0) -> None:
        if shuffle_seed:
            random.Random(shuffle_seed).shuffle(answers)
        bridge = self.link.bridge()
        for answer in answers:
            self._worker(partial(self.delivery.take_result, bridge, answer))

    # -- the client --------------------------------------------------------------------------------
    def call(self, request: Asked) -> Entry:
        site, meter_id = self.site_id, self.meter.meter_id
        if request.kind is EntryKind.SALE:
            return self.desk.sell(self.actor, site, meter_id, request_id=request.token,
                                  amount=format_amount(request.amount_minor), channel=request.channel)
        if request.kind is EntryKind.REFUND:
            return self.desk.refund(self.actor, site, meter_id, request_id=request.token,
                                    amount=format_amount(request.amount_minor))
        return self.desk.reverse(self.actor, site, request.original, request_id=request.token,
                                 reason="model: mistaken")

    def _submit(self, request: Asked) -> None:
        with self._lock:
            request.tries += 1
            again = request.tries > 1
        try:
            entry = self.call(request)
        except Crash:
            self._answered(request, "crashed", again)
        except DomainError as refused:
            self._answered(request, "refused", again, why=str(refused))
        else:
            self._answered(request, "posted", again, entry)

    def _answered(self, request: Asked, answer: str, again: bool, entry: Entry | None = None, why: str = "") -> None:
        with self._lock:
            self.stats[f"answer-{answer}"] += 1
            self.stats["duplicates"] += again
            if request.answer == "posted" and answer != "posted":
                self._answered_differently(request, answer, why)
                return
            if entry is not None and request.entry_id and entry.entry_id != request.entry_id:
                self.problems.append(f"{request.kind} {request.token} answered {entry.entry_id}, "
                                     f"earlier {request.entry_id}")
            if request.answer != "posted":
                request.answer = answer
                request.entry_id = entry.entry_id if entry is not None else ""

    def _answered_differently(self, request: Asked, answer: str, why: str) -> None:
        """A request already answered as posted, answered otherwise now. Not money lost or doubled (the ledger
        checks say whether it was posted once), but counted: a retried reversal is refused as already reversed
        (its entry id derives from the original's, not from the request), other refusals are reported."""
        if answer == "crashed":
            return  # the retry died before it could answer: the client knows nothing new
        if request.kind is EntryKind.REVERSAL and "already reversed" in why:
            self.stats["reversal-retry-refused"] += 1
            return
        self.stats["posted-then-refused"] += 1  # e.g. judged again by a concurrent twin: counted and reported
        self.notes.append(f"{request.kind} {request.token} was answered as posted ({request.entry_id}), then "
                          f"refused: {why}")

    # -- the end -----------------------------------------------------------------------------------
    def settle(self) -> None:
        """The bridge back, no more faults, the sweep run until nothing is in flight."""
        self.money.disarm()
        self.link.faults.clear()
        self.link.crash_before_send = False
        self.link.online = True
        for _ in range(SETTLE_ROUNDS):
            self.link.release_held()
            self._deliver(self.link.take_late())
            self._deliver_all()
            self._worker(lambda: self.delivery.sweep(self.operator_id, self.site_id))
            self._deliver_all()
            money = self.money.money(self.operator_id, self.meter.meter_id)
            if money is not None and not money.has_work and self.link.idle:
                return

    def _deliver_all(self) -> None:
        while self.link.answers:
            self._deliver(self.link.take_answers())

    def check(self, faults: int = 0) -> StackResult:
        op, meter_id = self.operator_id, self.meter.meter_id
        entries = self.money.meter_entries(op, meter_id)
        money = self.money.money(op, meter_id)
        problems = list(self.problems)
        if money is None:
            problems.append("the meter has no money state")
            return self._result(entries, [], 0, 0, faults, problems)
        delivering = [e for e in entries if e.delivers_to_meter]
        applied = Counter(self.model.applied)
        lost = sum(1 for e in delivering if applied[e.entry_id] == 0)
        doubled = sum(1 for n in applied.values() if n > 1)
        known = {e.entry_id for e in delivering}
        problems += [f"the meter applied {i}, which is no delivering entry" for i in applied if i not in known]
        problems += self._money_agrees(entries, money, delivering)
        client_lost, client_doubled, client_problems = self._client_agrees(entries)
        problems += client_problems
        problems += [f"{len(delivering) - lost} of {len(delivering)} deliveries applied: {lost} lost"] if lost else []
        problems += [f"{doubled} deliveries applied more than once"] if doubled else []
        return self._result(entries, delivering, lost + client_lost, doubled + client_doubled, faults, problems)

    def _money_agrees(self, entries: list[Entry], money: MeterMoney, delivering: list[Entry]) -> list[str]:
        meter_id, model = self.meter.meter_id, self.model
        found: list[str] = []
        folded = balances(entries).meter(meter_id).credit
        if folded != model.remaining_minor:
            found.append(f"ledger credit {folded} != meter remaining {model.remaining_minor}")
        stored = {meter_credit(meter_id): -money.credit_minor}
        found += [f"stored {m.account} = {m.stored_minor}, derived {m.derived_minor}"
                  for m in check_balances(stored, entries) if m.account.kind is AccountKind.METER_CREDIT]
        if money.queue.blocked or money.queue.undelivered():
            found.append(f"not quiescent: {len(money.queue.undelivered())} undelivered, "
                         f"blocked={money.queue.blocked!r}")
        if model.purchase_count != self.baseline.purchase_count + len(delivering):
            found.append(f"meter count {model.purchase_count}, opened at {self.baseline.purchase_count} with "
                         f"{len(delivering)} delivering entries since")
        if money.queue.confirmed_count != model.purchase_count:
            found.append(f"confirmed count {money.queue.confirmed_count}, the meter is at {model.purchase_count}")
        found += [f"{d.kind}: {d.message}" for d in delivery_rules.reconcile_meter(
            meter_id, self.baseline, model.registers(), entries, self._whole_queue(money, delivering))]
        return found

    def _whole_queue(self, money: MeterMoney, delivering: list[Entry]) -> delivery_rules.MeterQueue:
        """The queue with the deliveries it no longer keeps put back from their records, for reconciliation."""
        kept = {d.delivery_id: d for d in money.queue.deliveries}
        missing = [e.entry_id for e in delivering if e.entry_id not in kept]
        records = self.money.delivery_records(self.operator_id, missing) if missing else {}
        whole = [kept.get(e.entry_id) or records.get(e.entry_id) for e in delivering]
        return delivery_rules.MeterQueue(money.meter_id, money.queue.confirmed_count,
                                         tuple(d for d in whole if d is not None), money.queue.blocked)

    def _client_agrees(self, entries: list[Entry]) -> tuple[int, int, list[str]]:
        """Every request answered as posted is in the ledger as asked; nothing else is; nothing is there twice."""
        found: list[str] = []
        times = Counter(e.request_id for e in entries)
        by_request = {e.request_id: e for e in entries}
        asked = {cashier_request_id(a.token) for a in self.asked}
        lost = doubled = 0
        for request in self.asked:
            entry = by_request.get(cashier_request_id(request.token))
            if entry is None:
                if request.answer == "posted":
                    lost += 1
                    found.append(f"{request.kind} {request.token} was answered as posted but is not in the ledger")
                continue
            found += _stored_as_asked(request, entry)
        for request_id, count in times.items():
            if count > 1:
                doubled += count - 1
                found.append(f"request {request_id} posted {count} times")
            if request_id not in asked and request_id not in self.opening:
                found.append(f"entry for request {request_id}, which nobody made")
        return lost, doubled, found

    def _result(self, entries: list[Entry], delivering: list[Entry], lost: int, doubled: int, faults: int,
                problems: list[str]) -> StackResult:
        crashes = sum(self.money.fired.values()) + self.link.stats["crash-before-send"]
        stats = dict(self.stats) | {k: v for k, v in self.link.stats.items()} \
            | {f"crash-{k}": v for k, v in self.money.fired.items()}
        return StackResult(entries=len(entries), deliveries=len(delivering), duplicates=self.stats["duplicates"],
                           refused=self.stats["answer-refused"], crashes=crashes, faults=faults, lost=lost,
                           doubled=doubled, problems=tuple(problems), stats=stats,
                           notes=tuple(self.notes))


def _stored_as_asked(request: Asked, entry: Entry) -> list[str]:
    if request.answer == "posted" and entry.entry_id != request.entry_id:
        return [f"{request.kind} {request.token} answered {request.entry_id}, stored {entry.entry_id}"]
    if request.kind is EntryKind.REVERSAL:
        if (entry.kind, entry.reverses) != (EntryKind.REVERSAL, request.original):
            return [f"reversal of {request.original} stored as {entry.kind} of {entry.reverses}"]
    elif (entry.kind, entry.amount_minor) != (request.kind, request.amount_minor):
        return [f"{request.kind} of {request.amount_minor} stored as {entry.kind} of {entry.amount_minor}"]
    return []


def is_fault(op: Op) -> bool:
    """Operations that inject a fault: crashes, link faults, outages, repeats, races and shuffled answers."""
    if isinstance(op, Online):
        return not op.online
    if isinstance(op, Deliver | Late):
        return op.shuffle_seed != 0
    return isinstance(op, CrashAt | Hit | Retry | Twice | Together)


def play(ops: Sequence[Op], *, operator_id: str | None = None, start_count: int = 0,
         start_remaining: int = 0) -> tuple[StackWorld, StackResult]:
    """Run ``ops`` against a fresh meter, settle, check; the world too, for a test to look closer."""
    world = StackWorld(operator_id or new_operator_id(), start_count=start_count, start_remaining=start_remaining)
    for op in ops:
        world.apply(op)
    world.settle()
    return world, world.check(faults=sum(1 for op in ops if is_fault(op)))


def run_stack_scenario(ops: Sequence[Op], *, operator_id: str | None = None, start_count: int = 0,
                       start_remaining: int = 0) -> StackResult:
    """Run ``ops`` against a fresh meter, settle, check. Needs DynamoDB Local configured and ``probes_at_once``."""
    return play(ops, operator_id=operator_id, start_count=start_count, start_remaining=start_remaining)[1]


def random_client_op(rng: random.Random) -> ClientOp:
    roll = rng.random()
    if roll < 0.45:
        return Sale(rng.choice(AMOUNTS), rng.choice(CHANNELS))
    if roll < 0.60:
        return Refund(rng.choice(REFUNDS))
    if roll < 0.70:
        return Reverse(rng.randrange(1_000))
    if roll < 0.80:
        return Retry(rng.randrange(1_000))
    if roll < 0.90:
        return Deliver(rng.choice((0, 0, rng.randrange(1, 1 << 30))))
    if roll < 0.93:
        return Late(rng.choice((0, rng.randrange(1, 1 << 30))))
    return Sweep(rng.randrange(1, 3))


def random_op(rng: random.Random) -> Op:
    roll = rng.random()
    if roll < 0.55:
        return random_client_op(rng)
    if roll < 0.63:
        return Together(random_client_op(rng), random_client_op(rng))
    if roll < 0.66:
        return Twice(rng.choice(AMOUNTS))
    if roll < 0.78:
        return CrashAt(rng.choice(list(CrashPoint)))
    if roll < 0.92:
        return Hit(rng.choice(list(LinkFault)))
    return Online(rng.random() < 0.5)


def random_stack_scenario(rng: random.Random, length: int = 16) -> list[Op]:
    return [random_op(rng) for _ in range(length)]


def seeded_stack_scenario(seed: int, length: int = 16) -> tuple[list[Op], int, int]:
    """(operations, opening count, opening remaining) for one seed: what the bench and the tests replay."""
    rng = random.Random(seed)
    start_count = rng.randrange(60_000)
    start_remaining = rng.choice((0, 0, 2_500))
    return random_stack_scenario(rng, length), start_count, start_remaining
