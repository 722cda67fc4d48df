"""What the bridge does with each message the cloud sends (already authenticated by the channel).

* ``Batch`` with ``every_s > 0``: the bus's standing read plan; stored, then run on schedule.
  ``every_s == 0``: read now.
* ``Command``: recorded before it runs, so a command id is executed at most once; a repeat gets the
  stored result again.
* ``Ack``: the outbox deletes what it names. ``Rekey``: install, persist, ack under the new key.

A message naming another bus than the channel it arrived on is refused: each collector's key only
vouches for its own bus.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from ..protocol import Ack, Batch, BatchResult, Command, Heartbeat, Message, Rekey, TxnError, TxnResult
from ..protocol import parse_message as parse
from .bus import BusWorker, Job, JobKind
from .outbox import Outbox
from .schedule import MAX_PLAN_CYCLE_CHARS, PlanSchedule
from .store import Database, Store, encode
from .tunnel import NotConnected

log = logging.getLogger("gateway_bridge.dispatch")
Send = Callable[[Sequence[tuple[str, Message]]], Awaitable[None]]
RekeyAck = Callable[[str, Rekey], Awaitable[None]]
MAX_QUEUED_JOBS = 32  # read-now batches beyond this are refused, so a flood cannot grow memory without bound


class Dispatcher:
    def __init__(self, db: Database, workers: Mapping[str, BusWorker], schedule: PlanSchedule, outbox: Outbox,
                 send: Send, rekey_ack: RekeyAck, clock: Callable[[], float] = time.time) -> None:
        self.db, self.workers, self.schedule, self.outbox = db, workers, schedule, outbox
        self._send, self._rekey_ack, self._clock = send, rekey_ack, clock

    async def handle(self, channel_id: str, message: Message) -> None:
        match message:
            case Batch() | Command() if message.bus != channel_id:
                await self._refuse(channel_id, _ref(message), f"names bus {message.bus}, arrived on {channel_id}")
            case Batch():
                await self._batch(message)
            case Command():
                await self._command(message)
            case Ack():
                await self.outbox.acked(channel_id, message)
            case Rekey():
                await self._rekey_ack(channel_id, message)
            case Heartbeat():
                pass
            case _:
                log.warning("ignored a %s from the cloud on %s (not a cloud-to-bridge message)",
                            type(message).__name__, channel_id)

    async def _batch(self, batch: Batch) -> None:
        if batch.every_s == 0:
            worker = self.workers[batch.bus]
            if worker.depth >= MAX_QUEUED_JOBS:
                await self._refuse(batch.bus, batch.cycle, f"bus queue full ({worker.depth} jobs waiting)")
                return
            worker.submit(Job(JobKind.READ, batch.cycle, batch.txns))
            return
        if len(batch.cycle) > MAX_PLAN_CYCLE_CHARS:
            await self._refuse(batch.bus, batch.cycle, f"standing plan ids are at most {MAX_PLAN_CYCLE_CHARS} "
                               "characters (runs are named <id>@<slot ms>)")
            return
        await self.db.run(Store.save_plan, batch, self._now_ms())
        self.schedule.set_plan(batch)

    async def _command(self, command: Command) -> None:
        record = await self.db.run(Store.command, command.cmd)
        if record is None:
            await self.db.run(Store.command_received, command.cmd, command.bus, encode(command), self._now_ms())
            self.workers[command.bus].submit(Job(JobKind.COMMAND, command.cmd, command.txns))
            return
        if record.state != "done" or record.result is None:
            log.info("command %s is already queued or running; not run again", command.cmd)
            return
        log.info("command %s was already executed; sending its stored result again", command.cmd)
        if await self.db.run(Store.has_result, record.bus, command.cmd):
            self.outbox.go_back(record.bus)
            return
        stored = parse(record.result.encode("ascii"))
        assert isinstance(stored, BatchResult)
        await self.db.run(Store.add_result, stored, "command", self._now_ms())
        self.outbox.added(record.bus)

    async def _refuse(self, channel_id: str, ref: str, why: str) -> None:
        log.warning("refused %s on %s: %s", ref, channel_id, why)
        with contextlib.suppress(NotConnected):  # the cloud will ask again, and be refused again
            await self._send([(channel_id, Ack(ref, ok=False, error=why[:200]))])

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _ref(message: Batch | Command) -> str:
    return message.cycle if isinstance(message, Batch) else message.cmd


def interrupted_result(request: str, now_ms: int) -> BatchResult:
    """The answer to a command that was running when the bridge stopped: it is never run again, and
    nobody knows how far it got, so every transaction reports ``io`` (the cloud reads back)."""
    command = parse(request.encode("ascii"))
    assert isinstance(command, Command)
    results = tuple(TxnResult(txn.id, None, TxnError.IO, now_ms, now_ms) for txn in command.txns)
    return BatchResult(command.cmd, command.bus, results)


def queued_job(request: str) -> Job:
    """A command received but never started before a restart: safe to run now."""
    command = parse(request.encode("ascii"))
    assert isinstance(command, Command)
    return Job(JobKind.COMMAND, command.cmd, command.txns)
