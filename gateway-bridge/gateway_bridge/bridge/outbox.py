"""Results on their way to the cloud: stored first, sent oldest first, deleted only when acked.

While connected, a result made during this connection goes out alone as a ``BatchResult`` (acked by
its cycle); everything older (the backlog from an outage) goes out as ``Upload`` messages of at most
~100 KB (acked by the upload's ref). Per bus, messages leave in row order with up to ``WINDOW``
unacked at a time. If an ack does not come within ``ack_timeout_s``, the bus goes back to its oldest
unacked row and sends everything again in order (go-back-N): the cloud de-duplicates by cycle.
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
from .store import Database, Store, StoredResult, Waiting
from .tunnel import NotConnected

log = logging.getLogger("gateway_bridge.outbox")
UPLOAD_PLAINTEXT_BUDGET = 72_000  # sealed and base64-encoded, this stays under 100 KB per message
UPLOAD_OVERHEAD = 64  # the upload's own JSON around its result sets
WINDOW = 8  # unacked messages per bus at a time
Send = Callable[[Sequence[tuple[str, Message]]], Awaitable[None]]


@dataclass
class InFlight:
    ids: tuple[int, ...]
    deadline: float


def pack(waiting: Sequence[Waiting], fresh_from: int) -> tuple[list[Waiting], bool]:
    """The rows of the next message and whether it is a live ``BatchResult`` (else an ``Upload``).

    A row with id >= ``fresh_from`` is live: it goes alone. Older rows fill an upload up to the budget
    (at least one row, however large).
    """
    if waiting[0].id >= fresh_from:
        return [waiting[0]], True
    used: list[Waiting] = []
    size = UPLOAD_OVERHEAD
    for row in waiting:
        if used and (row.id >= fresh_from or size + row.size + 1 > UPLOAD_PLAINTEXT_BUDGET):
            break
        used.append(row)
        size += row.size + 1
    return used, False


class Outbox:
    def __init__(self, db: Database, bus_ids: Sequence[str], ack_timeout_s: float = 60.0) -> None:
        self.db, self.bus_ids, self.ack_timeout_s = db, tuple(bus_ids), ack_timeout_s
        self.depth: dict[str, int] = dict.fromkeys(self.bus_ids, 0)
        self._in_flight: dict[tuple[str, str], InFlight] = {}  # (bus, ref) -> rows
        self._cursor: dict[str, int] = {}  # per bus: the last row id sent on this connection
        self._sent_up_to: dict[str, int] = {}  # per bus: the highest row id ever sent on this connection
        self._live_from = 0
        self._wake = asyncio.Event()

    async def load(self) -> None:
        """Recount the buffer (at start, and after thinning removed rows)."""
        self.depth = dict.fromkeys(self.bus_ids, 0) | await self.db.run(Store.count_by_bus)

    @property
    def rows(self) -> int:
        return sum(self.depth.values())

    def added(self, bus: str) -> None:
        self.depth[bus] = self.depth.get(bus, 0) + 1
        self._wake.set()

    async def run(self, send: Send, live_from: int) -> None:
        """Drain the buffer over one connection (cancelled when it ends). Rows with id >= ``live_from``
        were made during this connection."""
        self._in_flight.clear()
        self._cursor = dict.fromkeys(self.bus_ids, 0)
        self._sent_up_to = dict.fromkeys(self.bus_ids, 0)
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
            waiting = await self.db.run(Store.waiting, bus, self._cursor[bus], MAX_RESULT_SETS)
            if not waiting:
                return
            chosen, live = pack(waiting, max(self._live_from, self._sent_up_to[bus] + 1))
            rows = await self.db.run(Store.rows, [w.id for w in chosen])
            self._cursor[bus] = chosen[-1].id
            self._sent_up_to[bus] = max(self._sent_up_to[bus], chosen[-1].id)
            if rows:
                await self._send(bus, rows, live, send)

    async def _send(self, bus: str, rows: list[StoredResult], live: bool, send: Send) -> None:
        message: Message
        if live:
            ref, message = rows[0].cycle, rows[0].message()
        else:
            ref = f"up-{rows[0].id}-{rows[-1].id}"
            message = Upload(ref, tuple(row.message() for row in rows))
        self._in_flight[(bus, ref)] = InFlight(tuple(r.id for r in rows), time.monotonic() + self.ack_timeout_s)
        await send([(bus, message)])

    def _expire(self) -> None:
        now = time.monotonic()
        for bus, ref in [key for key, flight in self._in_flight.items() if flight.deadline < now]:
            log.info("no ack for %s on %s within %.0f s: sending the bus's unacked results again", ref, bus,
                     self.ack_timeout_s)
            self.go_back(bus)

    def go_back(self, bus: str) -> None:
        """Send every unacked result of ``bus`` again, oldest first (as uploads: they were sent before)."""
        for key in [key for key in self._in_flight if key[0] == bus]:
            del self._in_flight[key]
        self._cursor[bus] = 0
        self._wake.set()

    async def acked(self, bus: str, ack: Ack) -> None:
        """The cloud has (or, with ok=false, refused) what ``ack.ref`` names on ``bus``."""
        flight = self._in_flight.pop((bus, ack.ref), None)
        if not ack.ok:
            log.warning("cloud refused %s on %s: %s (kept; sent again after a reconnect)", ack.ref, bus, ack.error)
            return
        if flight is not None:
            deleted = await self.db.run(Store.delete_ids, flight.ids)
        else:  # an ack for a cycle sent over an earlier connection, or a late one after a timeout
            deleted = await self.db.run(Store.delete_cycle, bus, ack.ref)
        self.depth[bus] = max(0, self.depth.get(bus, 0) - deleted)
        self._wake.set()
