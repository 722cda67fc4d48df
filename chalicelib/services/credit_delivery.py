"""Credit delivery to prepaid meters through the bridge: one purchase or refund command at a time per meter, each
followed by a read-back of the meter's money registers that decides the outcome (domain.delivery has the rules).

Every step is recorded before the next begins, so a crash anywhere leaves a state the sweep can finish:

1. ``pump``: the next pending delivery is marked sent (its count bound for ever) and committed; only then does the
   command leave. If the bridge is not there it goes back to pending (it never left).
2. The bridge answers (at once, or from its buffer after an outage) with the write's answer and the read-back.
   The count read back settles it: delivered, not applied (resend the same count), or failed (queue stops).
3. ``sweep`` (every minute, and when a bridge comes back): pending deliveries are pumped; a delivery sent long
   ago with no answer is probed with a read-only command, and its count settles it. Nothing is ever resent blindly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway_bridge.codec import encode_command
from gateway_bridge.protocol import BatchResult, Command, Txn
from gateway_bridge.rtu import ExceptionReply, FrameError, build_read_request, build_write_request, parse_response

from chalicelib.domain.bridges import Bridge
from chalicelib.domain.delivery import (
    CommandKind,
    Delivery,
    DeliveryState,
    MeterQueue,
    acknowledge,
    apply_read_back,
    mark_sent,
    next_to_send,
    unsend,
)
from chalicelib.domain.meter_money import MeterMoney, settled_since
from chalicelib.domain.money import format_amount
from chalicelib.domain.tenancy import Meter
from chalicelib.ports import Clock, MoneyChange, MoneyRepository, ReadingsRepository, StaleMoney, TenancyRepository
from chalicelib.services.bridge_link import BridgeLink
from chalicelib.services.reading_plan import decode_result, profile_for

LOG = logging.getLogger("voltvend.delivery")
COMMAND_PREFIX = "cmd-dlv-"
READ_BACK_START, READ_BACK_COUNT = 0x0100, 15  # remaining amount … status bits, one block
WRITE_TIMEOUT_MS = 1000
PROBE_AFTER = timedelta(seconds=20)  # a send with no answer this long is settled by reading the count
ATTEMPTS = 5


@dataclass(frozen=True)
class ResultReading:
    """What a delivery command's answer says: the write's own answer and the registers read back."""

    delivery_id: str
    attempt: str  # the send's attempt number, or "p<n>" for a probe
    write_acknowledged: bool
    write_refused: bool
    values: dict[str, object]

    @property
    def count(self) -> int | None:
        value = self.values.get("purchase_count")
        return None if value is None else int(Decimal(str(value)))


def command_id(delivery: Delivery, *, probe: bool = False) -> str:
    return f"{COMMAND_PREFIX}{'p' if probe else ''}{delivery.attempts}-{delivery.delivery_id}"


def is_delivery_result(result: BatchResult) -> bool:
    return result.cycle.startswith(COMMAND_PREFIX)


class CreditDelivery:
    def __init__(self, money: MoneyRepository, tenancy: TenancyRepository, link: BridgeLink,
                 readings: ReadingsRepository, clock: Clock) -> None:
        self._money = money
        self._tenancy = tenancy
        self._link = link
        self._readings = readings
        self._clock = clock

    # -- sending ---------------------------------------------------------------------------
    def pump(self, operator_id: str, meter_id: str) -> str:
        """Send the meter's next delivery if one may go now; returns what happened (for logs and tests)."""
        for _ in range(ATTEMPTS):
            money = self._money.money(operator_id, meter_id)
            ready = next_to_send(money.queue) if money is not None and money.is_prepaid else None
            if money is None or ready is None:
                return "idle"
            meter, bridge = self._route(money)
            if meter is None or bridge is None:
                return "offline"
            queue, sent = mark_sent(money.queue, ready.delivery_id)
            if not self._save(money, queue):
                continue
            if self._link.send(bridge, meter.collector_id, [delivery_command(meter, sent)]):
                return "sent"
            self._undo_send(operator_id, meter_id, sent)
            return "offline"
        return "busy"

    def _undo_send(self, operator_id: str, meter_id: str, sent: Delivery) -> None:
        for _ in range(ATTEMPTS):
            money = self._money.money(operator_id, meter_id)
            head = money.queue.head() if money else None
            if money is None or head is None or head.delivery_id != sent.delivery_id \
                    or head.state is not DeliveryState.SENT or head.attempts != sent.attempts:
                return
            if self._save(money, unsend(money.queue, sent.delivery_id)):
                return

    def probe(self, money: MeterMoney) -> bool:
        """Ask the meter for its count about the delivery in flight (a read, never the command again)."""
        head = money.queue.head()
        meter, bridge = self._route(money)
        if head is None or head.state is not DeliveryState.SENT or meter is None or bridge is None:
            return False
        read = Txn(f"{meter.meter_id}@{READ_BACK_START:04x}:{READ_BACK_COUNT}",
                   build_read_request(meter.address, READ_BACK_START, READ_BACK_COUNT))
        return self._link.send(bridge, meter.collector_id,
                               [Command(command_id(head, probe=True), meter.collector_id, (read,))])

    def sweep(self, operator_id: str, site_id: str | None = None) -> dict[str, int]:
        """Move every meter's queue on: pump pending deliveries, probe stale sends. Returns counts by outcome."""
        outcome: dict[str, int] = {}
        now = self._clock.now()
        for money in self._money.moneys_with_work(operator_id):
            if site_id is not None and money.site_id != site_id:
                continue
            head = money.queue.head()
            if money.queue.blocked or head is None:
                what = "blocked" if money.queue.blocked else "idle"
            elif head.state is DeliveryState.SENT:
                stale = money.updated_at is None or now - money.updated_at >= PROBE_AFTER
                what = ("probed" if self.probe(money) else "offline") if stale else "waiting"
            else:
                what = self.pump(operator_id, money.meter_id)
            outcome[what] = outcome.get(what, 0) + 1
        return outcome

    def on_bridge_back(self, bridge: Bridge) -> None:
        """A bridge (re)connected: whatever waited for it goes out now, in order."""
        self.sweep(bridge.operator_id, bridge.site_id)

    # -- answers ---------------------------------------------------------------------------
    def take_result(self, bridge: Bridge, result: BatchResult) -> None:
        meter_ids = {t.id.partition("@")[0].partition("#")[0] for t in result.results}
        meters = self._tenancy.get_meters(bridge.operator_id, bridge.site_id, meter_ids)
        if len(meters) != 1:
            LOG.warning("delivery result %s names no single meter of site %s", result.cycle, bridge.site_id)
            return
        meter = meters[0]
        reading = read_result(result, meter)
        if reading is None:
            return
        settled = self._settle(meter, reading)
        read_at = max((t.t1_ms for t in result.results if "@" in t.id and t.resp is not None), default=None)
        if reading.values and read_at is not None:
            # Stamped with when the bus answered, so a late answer (from the bridge's buffer) never replaces a
            # newer reading: merge_values keeps whichever is newer.
            self._readings.merge_values(meter.operator_id, meter.site_id, meter.meter_id, reading.values,
                                        datetime.fromtimestamp(read_at / 1000, UTC))
        if settled:
            self.pump(meter.operator_id, meter.meter_id)

    def _settle(self, meter: Meter, reading: ResultReading) -> bool:
        """Apply the answer to the delivery in flight; True when the queue may move on."""
        for _ in range(ATTEMPTS):
            money = self._money.money(meter.operator_id, meter.meter_id)
            head = money.queue.head() if money else None
            if money is None or head is None or head.delivery_id != reading.delivery_id \
                    or head.state is not DeliveryState.SENT:
                return False  # an answer to a send already settled (e.g. by a probe): nothing to do
            if not reading.attempt.startswith("p") and reading.attempt != str(head.attempts):
                return False  # the answer to an earlier attempt; the current one will answer for itself
            queue = judge(money.queue, head, reading)
            if queue is None:
                return False
            if self._save(money, queue):
                after = queue.get(head.delivery_id)
                if after.state is DeliveryState.FAILED:
                    LOG.error("delivery %s to meter %s failed: %s", head.delivery_id, meter.meter_id, after.failure)
                return after.state is DeliveryState.DELIVERED
        return False

    def _save(self, money: MeterMoney, queue: MeterQueue) -> bool:
        updated = money.with_queue(queue)
        try:
            self._money.commit(MoneyChange(moneys=(updated,), settled=tuple(settled_since(money.queue, queue)),
                                           at=self._clock.now()))
        except StaleMoney:
            return False
        return True

    def _route(self, money: MeterMoney) -> tuple[Meter | None, Bridge | None]:
        meters = self._tenancy.get_meters(money.operator_id, money.site_id, [money.meter_id])
        if not meters:
            return None, None
        meter = meters[0]
        bridge = next((b for b in self._link.bridges_of(money.operator_id, money.site_id)
                       if meter.collector_id in b.collectors and b.connection_id), None)
        return meter, bridge


def judge(queue: MeterQueue, head: Delivery, reading: ResultReading) -> MeterQueue | None:
    """The queue after this answer, or None when it says nothing yet (no read-back and no acknowledgement)."""
    count = reading.count
    if count is not None:
        return apply_read_back(queue, count, refused=reading.write_refused).queue
    if reading.write_acknowledged:
        return acknowledge(queue, head.delivery_id)
    return None


def delivery_command(meter: Meter, sent: Delivery) -> Command:
    """The purchase (or refund) write with the delivery's count, then the read-back that judges it."""
    assert sent.count is not None
    kind = "purchase" if sent.command is CommandKind.PURCHASE else "refund"
    amount = Decimal(sent.amount_minor).scaleb(-2)
    start, words = encode_command(profile_for(meter.model), kind,
                                  {f"{kind}_command_amount": amount, f"{kind}_command_count": sent.count})
    write = Txn(f"{meter.meter_id}#w{start:04x}", build_write_request(meter.address, start, words), WRITE_TIMEOUT_MS)
    read = Txn(f"{meter.meter_id}@{READ_BACK_START:04x}:{READ_BACK_COUNT}",
               build_read_request(meter.address, READ_BACK_START, READ_BACK_COUNT))
    LOG.info("delivering %s %s to meter %s at count %d", kind, format_amount(sent.amount_minor), meter.meter_id,
             sent.count)
    return Command(command_id(sent), meter.collector_id, (write, read))


def read_result(result: BatchResult, meter: Meter) -> ResultReading | None:
    rest = result.cycle.removeprefix(COMMAND_PREFIX)
    attempt, _, delivery_id = rest.partition("-")
    if not attempt or not delivery_id:
        return None
    acknowledged = refused = False
    write = next((t for t in result.results if "#w" in t.id), None)
    if write is not None and write.resp is not None:
        start = int(write.id.rpartition("#w")[2], 16)
        try:
            reply = parse_response(build_write_request(meter.address, start, [0, 0, 0]), write.resp)
        except FrameError:
            reply = None
        refused = isinstance(reply, ExceptionReply)
        acknowledged = reply is not None and not refused
    reads = [r for r in decode_result(result, {meter.meter_id: meter}) if r.answered]
    values: dict[str, object] = dict(reads[0].values) if reads else {}
    return ResultReading(delivery_id, attempt, acknowledged, refused, values)


def delivery_times(money: MeterMoney) -> datetime | None:
    return money.updated_at
