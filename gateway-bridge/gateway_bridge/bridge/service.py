"""The bridge service: wires config, store, bus workers, plans, tunnel and outbox, and runs until stopped.

Start-up recovery: a command that was running when the bridge last stopped is never run again (it
is answered with ``io`` results, and the cloud reads back); a command received but not started runs
now; standing plans resume from the store, so reading goes on even if the cloud never comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from ..protocol import BatchResult, Message
from . import VERSION
from .bus import BusWorker, Job, JobKind
from .channels import Channels
from .config import BridgeConfig
from .dispatch import Dispatcher, interrupted_result, queued_job
from .links import Link, make_link
from .outbox import Outbox
from .schedule import PlanSchedule
from .status import WRITE_EVERY_S, status_path, write_status
from .store import Database, Store, Thinning
from .tunnel import Tunnel

log = logging.getLogger("gateway_bridge.service")
COMMAND_MEMORY_DAYS = 90  # executed command ids remembered this long (a resend after that is a new command)
DB_FILE = "bridge.sqlite3"


class BridgeService:
    def __init__(self, config: BridgeConfig, clock: Callable[[], float] = time.time) -> None:
        self.config, self._clock = config, clock
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(config.state_dir / DB_FILE)
        self.links: dict[str, Link] = {c.id: make_link(c) for c in config.collectors}
        self.workers = {
            c.id: BusWorker(c.id, self.links[c.id], c.line, c.request_timeout_ms / 1000, self._completed,
                            self._command_starting, clock)
            for c in config.collectors
        }
        self.schedule = PlanSchedule(self.workers, clock)
        self.outbox = Outbox(self.db, config.collector_ids)
        self.channels = Channels(config.collectors, self.db.run_blocking(Store.channel_states), clock=clock)
        self.tunnel = Tunnel(config, self.channels, self.db, self, clock)
        self.dispatcher = Dispatcher(self.db, self.workers, self.schedule, self.outbox, self.tunnel.send,
                                     self.tunnel.send_rekey_ack, clock)
        self.last_run_ms: dict[str, int] = {}
        self.last_thinning: Thinning | None = None
        self.thinned_total = 0
        self._completions: asyncio.Queue[tuple[Job, BatchResult]] = asyncio.Queue()
        self._outbox_task: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then shut down cleanly."""
        await self._recover()
        tasks = [asyncio.create_task(w.run(), name=f"bus-{b}") for b, w in self.workers.items()]
        recorder = asyncio.create_task(self._record(), name="recorder")
        tasks += [asyncio.create_task(self.tunnel.run(), name="tunnel"),
                  asyncio.create_task(self._write_status_periodically(), name="status")]
        log.info("bridge %s started: %d collector(s), state in %s", self.config.bridge_id,
                 len(self.workers), self.config.state_dir)
        try:
            await stop.wait()
        finally:
            await self._shutdown(tasks, recorder)

    async def _recover(self) -> None:
        now_ms = self._now_ms()
        await self.outbox.load()
        self.thinned_total = await self.db.run(Store.meta_int, "thinned_total")
        for record in await self.db.run(Store.commands_in, "running"):
            log.warning("command %s was interrupted by a stop; not run again, answered with io", record.cmd)
            await self.db.run(Store.command_done, interrupted_result(record.request, now_ms), now_ms)
            self.outbox.added(record.bus)
        for record in await self.db.run(Store.commands_in, "queued"):
            if record.bus in self.workers:
                self.workers[record.bus].submit(queued_job(record.request))
        for plan in await self.db.run(Store.plans):
            if plan.bus in self.workers:
                self.schedule.set_plan(plan)
        await self.db.run(Store.forget_commands, now_ms - COMMAND_MEMORY_DAYS * 86_400_000)

    async def _shutdown(self, tasks: list[asyncio.Task[None]], recorder: asyncio.Task[None]) -> None:
        await self.schedule.stop()
        for task in [*tasks, *([self._outbox_task] if self._outbox_task else [])]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):  # finished jobs still get stored
            await asyncio.wait_for(self._completions.join(), timeout=10)
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        for link in self.links.values():
            await link.close()
        write_status(status_path(self.config.state_dir), {**self.status_document(), "stopped": True})
        self.db.close()
        log.info("bridge stopped")

    # -- results ------------------------------------------------------------------------------------

    def _completed(self, job: Job, result: BatchResult) -> None:
        self._completions.put_nowait((job, result))

    async def _command_starting(self, job: Job) -> None:
        await self.db.run(Store.command_started, job.cycle)  # durable before the first byte hits the bus

    async def _record(self) -> None:
        """Store every finished job (then the outbox sends it), in the order the buses finished them."""
        while True:
            job, result = await self._completions.get()
            try:
                await self._store_result(job, result)
            except sqlite3.Error:  # disk full or broken: this result is lost, the next may fit
                log.exception("could not store the result of %s on %s", result.cycle, result.bus)
            finally:
                self._completions.task_done()

    async def _store_result(self, job: Job, result: BatchResult) -> None:
        now_ms = self._now_ms()
        if job.kind is JobKind.COMMAND:
            await self.db.run(Store.command_done, result, now_ms)
        else:
            await self.db.run(Store.add_result, result, "plan" if job.plan else "once", now_ms)
        self.last_run_ms[result.bus] = now_ms
        self.outbox.added(result.bus)
        if self.outbox.rows > self.config.buffer.max_rows:
            await self._make_room(now_ms)

    async def _make_room(self, now_ms: int) -> None:
        older_than = now_ms - self.config.buffer.thin_after_days * 86_400_000
        thinning = await self.db.run(Store.make_room, self.config.buffer.max_rows, older_than)
        await self.outbox.load()
        if thinning is None:
            return
        self.last_thinning = thinning
        self.thinned_total += thinning.deleted
        log.warning("buffer full (max %d result sets): thinned %d standing-plan results older than %s to every "
                    "other interval; %d remain", self.config.buffer.max_rows, thinning.deleted,
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(thinning.older_than_ms / 1000)),
                    thinning.remaining)

    # -- the tunnel's peer ----------------------------------------------------------------------------

    async def connected(self) -> None:
        live_from = await self.db.run(Store.next_id)
        self._outbox_task = asyncio.create_task(self.outbox.run(self.tunnel.send, live_from), name="outbox")

    def disconnected(self) -> None:
        if self._outbox_task is not None:
            self._outbox_task.cancel()
            self._outbox_task = None

    async def handle(self, channel_id: str, message: Message) -> None:
        await self.dispatcher.handle(channel_id, message)

    def queued(self, channel_id: str) -> int:
        return self.outbox.depth.get(channel_id, 0)

    # -- status -----------------------------------------------------------------------------------------

    async def _write_status_periodically(self) -> None:
        path = status_path(self.config.state_dir)
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(OSError):
                await loop.run_in_executor(None, write_status, path, self.status_document())
            await asyncio.sleep(WRITE_EVERY_S)

    def status_document(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(), "bridge_id": self.config.bridge_id, "site_id": self.config.site_id,
            "version": VERSION, "updated_ms": self._now_ms(), "connection": vars(self.tunnel.status).copy(),
            "buffer": {"rows": self.outbox.rows, "max_rows": self.config.buffer.max_rows,
                       "thinned_total": self.thinned_total,
                       "last_thinning": vars(self.last_thinning) if self.last_thinning else None},
            "buses": {bus_id: self._bus_status(bus_id) for bus_id in self.workers},
        }

    def _bus_status(self, bus_id: str) -> dict[str, Any]:
        worker, plan = self.workers[bus_id], self.schedule.plans.get(bus_id)
        return {
            "transport": self.config.collector(bus_id).transport, "queue": worker.depth,
            "running": worker.busy_with.cycle if worker.busy_with else None,
            "buffered": self.outbox.depth.get(bus_id, 0), "last_run_ms": self.last_run_ms.get(bus_id),
            "plan": {"cycle": plan.cycle, "every_s": plan.every_s, "txns": len(plan.txns)} if plan else None,
            "meters": {str(address): vars(health).copy() for address, health in sorted(worker.meters.items())},
        }

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
