"""One bus worker per collector: a strictly sequential queue of raw transactions, commands first.

A command waiting for the bus runs at the next transaction boundary, even in the middle of a read
job (a credit delivery must not wait for a whole sweep). A meter (slave address) that does not
answer costs its timeout once, its other transactions in that job are skipped, and it is then left
out of a growing number of read cycles (1, 2, 4 ... 16) so one dead meter never stalls its bus.
The worker only looks at a request's first byte (the slave address); it never decodes answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ..protocol import BatchResult, Txn, TxnError, TxnResult
from ..rtu import LineSettings, wire_time
from .framing import expected_answer_length
from .links import Link, LinkError

log = logging.getLogger("gateway_bridge.bus")
MAX_SKIP_CYCLES = 16
TIMEOUT_FLOOR_MARGIN_S = 0.05  # above the frames' own wire time: collector and LAN latency


class JobKind(StrEnum):
    COMMAND = "command"
    READ = "read"


@dataclass(frozen=True)
class Job:
    """A command (``cycle`` = its cmd id) or a read job (a one-off batch or one run of a standing plan)."""

    kind: JobKind
    cycle: str
    txns: tuple[Txn, ...]
    plan: str | None = None  # the standing plan's cycle id, for runs of a plan


@dataclass
class MeterHealth:
    """What the bus knows about one slave address."""

    failures: int = 0
    skip_cycles: int = 0
    last_answer_ms: int | None = None
    last_error: str | None = None

    def answered(self, at_ms: int) -> None:
        self.failures, self.skip_cycles, self.last_answer_ms, self.last_error = 0, 0, at_ms, None

    def timed_out(self) -> None:
        self.failures += 1
        self.skip_cycles = min(2 ** (self.failures - 1), MAX_SKIP_CYCLES)
        self.last_error = TxnError.TIMEOUT.value


@dataclass
class _Run:
    """Addresses left out of the job being run (backed off before it, or silent during it)."""

    silenced: set[int] = field(default_factory=set)
    link_down: bool = False


Completed = Callable[[Job, BatchResult], None]
CommandStarting = Callable[[Job], Awaitable[None]]


async def _nothing(job: Job) -> None:
    return None


class BusWorker:
    """Runs the jobs of one bus, one transaction at a time."""

    def __init__(
        self,
        bus_id: str,
        link: Link,
        line: LineSettings,
        request_timeout_s: float,
        completed: Completed,
        command_starting: CommandStarting = _nothing,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus_id, self.link, self.line = bus_id, link, line
        self.request_timeout_s = request_timeout_s
        self.meters: dict[int, MeterHealth] = {}
        self._completed, self._command_starting, self._clock = completed, command_starting, clock
        self._commands: deque[Job] = deque()
        self._reads: deque[Job] = deque()
        self._work = asyncio.Event()
        self.busy_with: Job | None = None

    def submit(self, job: Job) -> None:
        (self._commands if job.kind is JobKind.COMMAND else self._reads).append(job)
        self._work.set()

    @property
    def depth(self) -> int:
        """Jobs waiting (not counting the one running)."""
        return len(self._commands) + len(self._reads)

    def has_plan_run(self, plan: str) -> bool:
        """True if a run of standing plan ``plan`` is queued or running (a new slot would pile up)."""
        jobs = [*self._reads, *([self.busy_with] if self.busy_with else [])]
        return any(job.plan == plan for job in jobs)

    async def run(self) -> None:
        """Serve the queue until cancelled."""
        while True:
            if not self._commands and not self._reads:
                self._work.clear()
                await self._work.wait()
                continue
            await self._finish(self._commands.popleft() if self._commands else self._reads.popleft())

    async def _finish(self, job: Job) -> None:
        try:
            await self._execute(job)
        except Exception:  # e.g. the store failed to mark a command started: that job is lost, not the bus
            log.exception("bus %s: job %s failed", self.bus_id, job.cycle)

    async def _execute(self, job: Job) -> None:
        interrupted, self.busy_with = self.busy_with, job  # a command may cut into a running read job
        try:
            result = await self.run_job(job)
        finally:
            self.busy_with = interrupted
        self._completed(job, result)

    async def run_job(self, job: Job) -> BatchResult:
        """Execute one job now (commands that arrive meanwhile cut in between its transactions)."""
        if job.kind is JobKind.COMMAND:
            await self._command_starting(job)
            run = _Run()
        else:
            run = _Run(silenced=self._backed_off(job))
        results = []
        for txn in job.txns:
            if job.kind is JobKind.READ:
                await self._run_waiting_commands()
            results.append(await self._one(txn, run))
        return BatchResult(job.cycle, self.bus_id, tuple(results))

    async def _run_waiting_commands(self) -> None:
        while self._commands:
            await self._finish(self._commands.popleft())

    def _backed_off(self, job: Job) -> set[int]:
        """Addresses sitting out this cycle; each one's remaining back-off shrinks by this cycle."""
        skipped = set()
        for address in {txn.req[0] for txn in job.txns}:
            health = self.meters.get(address)
            if health is not None and health.skip_cycles > 0:
                health.skip_cycles -= 1
                skipped.add(address)
        return skipped

    async def _one(self, txn: Txn, run: _Run) -> TxnResult:
        address = txn.req[0]
        health = self.meters.setdefault(address, MeterHealth())
        now_ms = self._now_ms()
        if run.link_down:
            return TxnResult(txn.id, None, TxnError.IO, now_ms, now_ms)
        if address in run.silenced:
            return TxnResult(txn.id, None, TxnError.SKIPPED, now_ms, now_ms)
        try:
            answer = await self.link.exchange(txn.req, self.timeout_s(txn))
        except TimeoutError:
            health.timed_out()
            run.silenced.add(address)
            return TxnResult(txn.id, None, TxnError.TIMEOUT, now_ms, self._now_ms())
        except LinkError as exc:
            health.last_error = f"io: {exc}"
            run.link_down = True  # a dead collector costs one failure per job, not one per meter
            return TxnResult(txn.id, None, TxnError.IO, now_ms, self._now_ms())
        done_ms = self._now_ms()
        health.answered(done_ms)
        return TxnResult(txn.id, answer, None, now_ms, done_ms)

    def timeout_s(self, txn: Txn) -> float:
        """The cloud's timeout capped by the collector's, but never below what the frames need on the wire."""
        floor = wire_time(len(txn.req), expected_answer_length(txn.req), self.line) + TIMEOUT_FLOOR_MARGIN_S
        return max(floor, min(txn.timeout_ms / 1000, self.request_timeout_s))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
