"""Results on their way to the cloud: stored first, sent oldest first, deleted only when acked.

While connected, a result made during this connection goes out alone as a ``BatchResult`` (acked by
its cycle); everything older (the backlog from an outage) or sent before without an ack goes out as
``Upload`` messages of at most ~100 KB (acked by the upload's ref). Per bus, messages leave in row
order, so the cloud sees each bus's readings oldest first. A message not acked within
``ack_timeout_s`` becomes eligible again; the cloud de-duplicates by cycle, so a resend is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..protocol import Ack, Message, Upload
from ..protocol.messages import MAX_RESULT_SETS
from .store import Database, Store, StoredResult
from .tunnel import NotConnected

log = logging.getLogger("gateway_bridge.outbox")
UPLOAD_PLAINTEXT_BUDGET = 72_000  # sealed and base64-encoded, this stays under 100 KB per message
WINDOW = 8  # unacked messages per bus at a time
Send = Callable[[Sequence[tuple[str, Message]]], Awaitable[None]]


@dataclass
class InFlight:
    ids: tuple[int, ...]
    cycles: frozenset[str]
    deadline: float


class Outbox:
    def __init__(self, db: Database, bus_ids: Sequence[str], ack_timeout_s: float = 60.0) -> None:
        self.db, self.bus_ids, self.ack_timeout_s = db, tuple(bus_ids), ack_timeout_s
        self.depth: dict[str, int] = dict.fromkeys(self.bus_ids, 0)
        self._in_flight: dict[tuple[str, str], InFlight] = {}  # (bus, ref) -> rows
        self._sent_before: set[int] = set()
        self._live_from = 0
        self._wake = asyncio.Event()

    async def load(self) -> None:
        counts = await self.db.run(Store.count_by_bus)
        for bus, count in counts.items():
            self.depth[bus] = count

    @property
    def rows(self) -> int:
        return sum(self.depth.values())

    def added(self, bus: str) -> None:
        self.depth[bus] = self.depth.get(bus, 0) + 1
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, send: Send, live_from: int) -> None:
        """Drain the buffer over one connection (cancelled when it ends). Rows with id >= ``live_from``
        were made during this connection."""
        self._in_flight.clear()
        self._sent_before.clear()
        self._live_from = live_from
        self._wake.set()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            self._wake.clear()
            self._expire()
            try:
                for bus in self.bus_ids:
                    await self._drain(bus, send)
            except NotConnected:
                return

    async def _drain(self, bus: str, send: Send) -> None:
        while sum(1 for b, _ in self._in_flight if b == bus) < WINDOW:
            busy = [i for (b, _), flight in self._in_flight.items() if b == bus for i in flight.ids]
            rows = await self.db.run(Store.pending, bus, busy, MAX_RESULT_SETS)
            if not rows:
                return
            ref, message, used = self._next_message(rows)
            self._in_flight[(bus, ref)] = InFlight(tuple(r.id for r in used), frozenset(r.cycle for r in used),
                                                   time.monotonic() + self.ack_timeout_s)
            self._sent_before.update(r.id for r in used)
            await send([(bus, message)])

    def _next_message(self, rows: list[StoredResult]) -> tuple[str, Message, list[StoredResult]]:
        first = rows[0]
        if first.id >= self._live_from and first.id not in self._sent_before:
            return first.cycle, first.message(), [first]
        used: list[StoredResult] = []
        size = 64
        for row in rows:
            fresh = row.id >= self._live_from and row.id not in self._sent_before
            if used and (fresh or size + len(row.body) + 1 > UPLOAD_PLAINTEXT_BUDGET):
                break
            used.append(row)
            size += len(row.body) + 1
        ref = f"up-{used[0].id}-{used[-1].id}"
        return ref, Upload(ref, tuple(r.message() for r in used)), used

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, flight in self._in_flight.items() if flight.deadline < now]:
            log.info("no ack for %s on %s within %.0f s; will send again", key[1], key[0], self.ack_timeout_s)
            del self._in_flight[key]

    async def acked(self, bus: str, ack: Ack) -> None:
        """The cloud has (or, with ok=false, refused) what ``ack.ref`` names on ``bus``."""
        flight = self._in_flight.pop((bus, ack.ref), None)
        if not ack.ok:
            log.warning("cloud refused %s on %s: %s (kept; sent again later)", ack.ref, bus, ack.error)
            return
        if flight is not None:
            deleted = await self.db.run(Store.delete_ids, flight.ids)
        else:  # an ack for a cycle sent over an earlier connection, or a late one after a timeout
            deleted = await self.db.run(Store.delete_cycle, bus, ack.ref)
        self.depth[bus] = max(0, self.depth.get(bus, 0) - deleted)
        self._wake.set()

    def resend(self, bus: str, cycle: str) -> None:
        """Make a result eligible again at once (the cloud asked for it again)."""
        for key in [k for k, flight in self._in_flight.items() if k[0] == bus and cycle in flight.cycles]:
            del self._in_flight[key]
        self._wake.set()
