"""Runs the app's ``@app.schedule`` functions at their rates, as EventBridge would on AWS."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalice.app import ScheduledEventConfig
from chalice.local import LambdaContext

from infra.local.entry_points import lambda_entry

LOG = logging.getLogger("voltvend.local.schedule")
RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """Seconds between runs of a ``rate(...)`` expression; cron expressions are not served locally."""
    match = RATE.match(expression.strip())
    if match is None:
        raise ValueError(f"the local scheduler serves rate(...) expressions only, not {expression!r}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass
class Schedule:
    name: str
    every_seconds: float
    next_due: float


def scheduled_event(name: str) -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "local", "resources": [f"arn:aws:events:local:000000000000:rule/{name}"], "detail": {},
    }


class LocalScheduler:
    """One thread that fires each schedule when due; a run never overlaps the same schedule's last run."""

    def __init__(self, app: Any, *, speedup: float = 1.0) -> None:
        self._app = app
        now = time.monotonic()
        self._handler_strings = {source.name: source.handler_string for source in app.event_sources
                                 if isinstance(source, ScheduledEventConfig)}
        self._schedules = [
            Schedule(source.name, rate_seconds(str(source.schedule_expression)) / speedup,
                     now + rate_seconds(str(source.schedule_expression)) / speedup)
            for source in app.event_sources if isinstance(source, ScheduledEventConfig)
        ]
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._schedules]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_now(self, name: str) -> Any:
        """Invoke one schedule at once in the caller's thread and return its result."""
        function = lambda_entry(self._app, name, self._handler_strings[name])
        return function(scheduled_event(name), LambdaContext(name, 256))

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            for schedule in self._schedules:
                if schedule.next_due <= now:
                    schedule.next_due = now + schedule.every_seconds
                    self._fire(schedule.name)

    def _fire(self, name: str) -> None:
        with self._lock:
            if name in self._running:
                LOG.warning("schedule %s is still running; skipping this tick", name)
                return
            self._running.add(name)
        threading.Thread(target=self._run, args=(name,), name=f"schedule-{name}", daemon=True).start()

    def _run(self, name: str) -> None:
        try:
            self.run_now(name)
        except Exception:
            LOG.exception("schedule %s failed", name)
        finally:
            with self._lock:
                self._running.discard(name)
