"""Standing read plans: each bus's cached plan runs at wall-clock multiples of its ``every_s``, online or not.

A run's cycle is ``{plan cycle}@{slot start in ms}``, so the same slot always has the same name (the
cloud de-duplicates by it). A slot whose previous run is still queued or running is skipped rather
than piled up behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping

from ..protocol import Batch
from .bus import BusWorker, Job, JobKind

log = logging.getLogger("gateway_bridge.schedule")
MAX_PLAN_CYCLE_CHARS = 50  # + "@" + 13 digits stays within the protocol's 64-character ids


def slot_cycle(plan: Batch, slot_ms: int) -> str:
    return f"{plan.cycle}@{slot_ms}"


def next_slot_s(now_s: float, every_s: int) -> float:
    """The next wall-clock multiple of ``every_s`` strictly after ``now_s``."""
    return (math.floor(now_s / every_s) + 1) * every_s


class PlanSchedule:
    def __init__(self, workers: Mapping[str, BusWorker], clock: Callable[[], float] = time.time) -> None:
        self.workers = workers
        self.plans: dict[str, Batch] = {}
        self.last_slot_ms: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._clock = clock

    def set_plan(self, plan: Batch) -> None:
        """Start (or replace) the bus's standing plan."""
        self.plans[plan.bus] = plan
        old = self._tasks.pop(plan.bus, None)
        if old is not None:
            old.cancel()
        self._tasks[plan.bus] = asyncio.create_task(self._run(plan), name=f"plan-{plan.bus}")
        log.info("standing plan %s on %s: %d transactions every %d s", plan.cycle, plan.bus, len(plan.txns),
                 plan.every_s)

    async def _run(self, plan: Batch) -> None:
        worker = self.workers[plan.bus]
        last = self.last_slot_ms.get(plan.bus, 0) / 1000
        while True:
            slot = next_slot_s(max(self._clock(), last), plan.every_s)
            await asyncio.sleep(max(0.0, slot - self._clock()))
            last = slot
            slot_ms = round(slot * 1000)
            self.last_slot_ms[plan.bus] = slot_ms
            if worker.has_plan_run(plan.cycle):
                log.warning("bus %s: plan %s still running at the next slot; skipping %d", plan.bus, plan.cycle,
                            slot_ms)
                continue
            worker.submit(Job(JobKind.READ, slot_cycle(plan, slot_ms), plan.txns, plan=plan.cycle))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
