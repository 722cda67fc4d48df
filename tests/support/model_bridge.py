"""Test doubles for the money path against DynamoDB Local: a bridge with a model meter on its bus, and a money
repository that crashes where it is told to.

``ModelBridge`` stands in for ``BridgeLink`` as ``CreditDelivery`` uses it (``send`` and ``bridges_of``). It is
the bridge and the bus together: it decodes the RTU frames of each command it is given, lets a ``ModelMeter``
(chalicelib/domain/money_faults_model.py) judge the purchase or refund write by its count, answers the read-back
from the meter's registers, and keeps the answers as the bridge would, until the test hands them to
``CreditDelivery.take_result``. Faults hit the next command: lost on the way, answered but the answer lost, the
read-back lost, the write retried on the bus, held back until another command has overtaken it, answered twice,
answered long after everything else.

``CrashingMoney`` is the real repository whose ``commit`` raises ``Crash`` before or after writing when armed:
a process dying inside a money operation's transaction, or just after it, or inside the delivery worker's.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum

from gateway_bridge.codec import decode
from gateway_bridge.protocol import BatchResult, Command, Message, TxnError, TxnResult
from gateway_bridge.rtu import READ_HOLDING_REGISTERS, WRITE_MULTIPLE_REGISTERS, FrameError, parse_request, with_crc

from chalicelib.adapters.dynamodb.money_repo import DynamoMoneyRepository
from chalicelib.domain.bridges import Bridge
from chalicelib.domain.delivery import CommandKind, Delivery, DeliveryState
from chalicelib.domain.money_faults_model import ModelMeter
from chalicelib.domain.tenancy import Meter
from chalicelib.ports import MoneyChange
from chalicelib.services.credit_delivery import COMMAND_PREFIX
from chalicelib.services.reading_plan import profile_for
from tests.support.bus_runs import block_words, response_frame

ILLEGAL_DATA_VALUE = 3  # the exception a meter answers a purchase or refund it refuses with (METER.md)


class Crash(Exception):
    """The process died here (injected): what was written stays written, nothing after this point ran."""


class CrashPoint(StrEnum):
    BEFORE_POSTING = "before-posting"  # inside a money operation's transaction: nothing written
    AFTER_POSTING = "after-posting"  # the operation's transaction written, the process dies before the kick
    BEFORE_WORKER_WRITE = "before-worker-write"  # the delivery worker's next write (mark sent, settle) not made
    AFTER_WORKER_WRITE = "after-worker-write"  # that write made, then the worker dies
    BEFORE_SEND = "before-send"  # mark-sent committed, the worker dies before the command leaves


class LinkFault(StrEnum):
    COMMAND_LOST = "command-lost"  # never reaches the bus, no answer
    ANSWER_LOST = "answer-lost"  # the meter applies it, the answer never comes back
    READ_BACK_LOST = "read-back-lost"  # the write is answered, the read-back times out
    WRITE_ANSWER_LOST = "write-answer-lost"  # the write's answer times out, the read-back comes
    EXECUTED_TWICE = "executed-twice"  # the bridge retries the write on the bus; the answer is the second one's
    HELD = "held"  # stuck in the bridge until the next command has gone out on the bus first
    ANSWER_TWICE = "answer-twice"  # the answer is delivered twice (a buffer re-sent after a reconnect)
    ANSWER_LATE = "answer-late"  # the answer comes much later, after whatever happens meanwhile (``take_late``)
    GONE_DURING_SEND = "gone-during-send"  # the bridge looked connected, the push fails: the command never left


class CrashingMoney(DynamoMoneyRepository):
    """The real repository; ``arm(point)`` makes one later commit crash there."""

    def __init__(self, inner: DynamoMoneyRepository) -> None:
        super().__init__(inner._connection)  # the same botocore connection, shared as the composition root does
        self._armed: set[CrashPoint] = set()
        self._lock = threading.Lock()
        self.fired: Counter[str] = Counter()

    def arm(self, point: CrashPoint) -> None:
        with self._lock:
            self._armed.add(point)

    def disarm(self) -> None:
        with self._lock:
            self._armed.clear()

    def _fire(self, point: CrashPoint) -> None:
        with self._lock:
            if point not in self._armed:
                return
            self._armed.discard(point)
            self.fired[point.value] += 1
        raise Crash(point.value)

    def commit(self, change: MoneyChange) -> None:
        # A change with entries is a money operation (sale, refund, reversal); one without is the delivery worker.
        posting = bool(change.entries)
        self._fire(CrashPoint.BEFORE_POSTING if posting else CrashPoint.BEFORE_WORKER_WRITE)
        super().commit(change)
        self._fire(CrashPoint.AFTER_POSTING if posting else CrashPoint.AFTER_WORKER_WRITE)


def _command_delivery_id(cmd: str) -> str:
    """The delivery a command carries, from its id (``cmd-dlv-<attempt>-<entry id>``): the model's x-ray only,
    the meter itself judges the frame by its count."""
    return cmd.removeprefix(COMMAND_PREFIX).partition("-")[2]


def _now_ms() -> int:
    return int(time.time() * 1000)


class ModelBridge:
    """One bridge, one bus, one model meter at ``meter.address``; the cloud's link to it as a test double."""

    def __init__(self, meter: Meter, model: ModelMeter, bridge_id: str = "bridge-model") -> None:
        self.meter = meter
        self.model = model
        self.bridge_id = bridge_id
        self.online = True
        self.crash_before_send = False
        self.faults: list[LinkFault] = []  # each hits one later command, in order
        self.answers: list[BatchResult] = []  # answered, not yet handed to the cloud
        self.late: list[BatchResult] = []  # answers that will come long after the others
        self.held: list[Command] = []
        self.stats: Counter[str] = Counter()
        self._lock = threading.RLock()  # sales and the worker may send at once, from two threads

    # -- what CreditDelivery calls ---------------------------------------------------------------
    def bridges_of(self, operator_id: str, site_id: str) -> list[Bridge]:
        if (operator_id, site_id) != (self.meter.operator_id, self.meter.site_id):
            return []
        return [self.bridge()]

    def send(self, bridge: Bridge, collector_id: str, messages: Sequence[Message]) -> bool:
        with self._lock:
            if self.crash_before_send:
                self.crash_before_send = False
                self.stats["crash-before-send"] += 1
                raise Crash(CrashPoint.BEFORE_SEND.value)
            if not self.online or collector_id != self.meter.collector_id:
                return False
            fault = self.faults.pop(0) if self.faults else None
            if fault is not None:
                self.stats[f"fault-{fault.value}"] += 1
            if fault is LinkFault.GONE_DURING_SEND:
                return False
            overtaken, self.held = self.held, []
            for message in messages:
                if isinstance(message, Command):
                    self._carry(message, fault)
            for command in overtaken:  # what was held goes out on the bus only after the newer command
                self._carry(command, None)
            return True

    # -- what the test drives --------------------------------------------------------------------
    def bridge(self) -> Bridge:
        return Bridge(self.meter.operator_id, self.bridge_id, self.meter.site_id, (self.meter.collector_id,),
                      "model", connection_id="conn-model" if self.online else None)

    def take_answers(self) -> list[BatchResult]:
        """The answers waiting in the bridge, handed over (none while it is offline: it keeps them)."""
        with self._lock:
            if not self.online:
                return []
            answers, self.answers = self.answers, []
            return answers

    def take_late(self) -> list[BatchResult]:
        with self._lock:
            if not self.online:
                return []
            late, self.late = self.late, []
            return late

    def release_held(self) -> None:
        with self._lock:
            held, self.held = self.held, []
            for command in held:
                self._carry(command, None)

    @property
    def idle(self) -> bool:
        return not self.answers and not self.held and not self.late

    # -- the bus ------------------------------------------------------------------------------------
    def _carry(self, command: Command, fault: LinkFault | None) -> None:
        self.stats["commands"] += 1
        if fault is LinkFault.COMMAND_LOST:
            return
        if fault is LinkFault.HELD:
            self.held.append(command)
            return
        results = [self._transact(command.cmd, txn.id, txn.req, twice=fault is LinkFault.EXECUTED_TWICE)
                   for txn in command.txns]
        if fault is LinkFault.ANSWER_LOST:
            return
        lost_part = {LinkFault.READ_BACK_LOST: "@", LinkFault.WRITE_ANSWER_LOST: "#w"}.get(fault) if fault else None
        if lost_part:
            results = [TxnResult(r.id, None, TxnError.TIMEOUT, r.t0_ms, r.t1_ms) if lost_part in r.id else r
                       for r in results]
        answer = BatchResult(command.cmd, command.bus, tuple(results))
        if fault is LinkFault.ANSWER_LATE:
            self.late.append(answer)
            return
        self.answers.append(answer)
        if fault is LinkFault.ANSWER_TWICE:
            self.answers.append(answer)

    def _transact(self, cmd: str, txn_id: str, request: bytes, *, twice: bool) -> TxnResult:
        at = _now_ms()
        try:
            asked = parse_request(request)
        except FrameError:
            return TxnResult(txn_id, None, TxnError.TIMEOUT, at, at)  # a meter ignores a frame it cannot trust
        if asked.device_id != self.meter.address:
            return TxnResult(txn_id, None, TxnError.TIMEOUT, at, at)
        if asked.function == READ_HOLDING_REGISTERS:
            words = block_words(profile_for(self.meter.model), asked.address, asked.count, self._registers())
            return TxnResult(txn_id, response_frame(self.meter.address, words), None, at, at)
        if asked.function != WRITE_MULTIPLE_REGISTERS:
            return TxnResult(txn_id, None, TxnError.TIMEOUT, at, at)
        words = list(struct.unpack(f">{asked.count}H", request[7:7 + 2 * asked.count]))
        answer = self._write(cmd, asked.address, words)
        if twice:
            self.stats["executed-twice"] += 1
            answer = self._write(cmd, asked.address, words)
        return TxnResult(txn_id, answer, None, at, at)

    def _write(self, cmd: str, address: int, words: list[int]) -> bytes:
        """A purchase or refund command, judged by the model meter; FC16's echo, or exception 03 if refused."""
        device = self.meter.address
        refused = with_crc(bytes([device, WRITE_MULTIPLE_REGISTERS | 0x80, ILLEGAL_DATA_VALUE]))
        profile = profile_for(self.meter.model)
        for kind in CommandKind:
            amount_entry, count_entry = (profile.entry(f"{kind.value}_command_{part}") for part in ("amount", "count"))
            if address != amount_entry.address or len(words) != amount_entry.count + count_entry.count:
                continue
            amount = decode(amount_entry, words[:amount_entry.count])
            count = decode(count_entry, words[amount_entry.count:])
            sent = Delivery(_command_delivery_id(cmd), self.meter.meter_id, kind,
                            int(Decimal(amount).scaleb(2)), DeliveryState.SENT, int(count))
            if not self.model.execute(sent):
                self.stats["meter-refused"] += 1
                return refused
            self.stats["meter-applied"] += 1
            return with_crc(struct.pack(">BBHH", device, WRITE_MULTIPLE_REGISTERS, address, len(words)))
        return refused

    def _registers(self) -> dict[str, object]:
        model = self.model
        return {"remaining_amount": Decimal(model.remaining_minor).scaleb(-2),
                "total_purchased": Decimal(model.total_purchased_minor).scaleb(-2),
                "purchase_count": model.purchase_count,
                "hoarding_limit": Decimal(model.hoarding_limit_minor).scaleb(-2),
                "relay_state": 0 if model.remaining_minor > 0 else 1}
