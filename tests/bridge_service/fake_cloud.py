"""A test double of the cloud's WebSocket side: it speaks the tunnel protocol with ``Role.CLOUD`` channels.

It runs its own event loop in a thread (tests stay plain functions), checks the bridge's credential
on the handshake (403 otherwise), opens every envelope with persistent per-channel state (so a
bridge that reused a sequence number would be caught), records what arrives, acks results and
uploads like the real cloud, and sends Batch / Command / Rekey when a test asks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from gateway_bridge.protocol import (
    Ack,
    BatchResult,
    Channel,
    ChannelState,
    FrameReader,
    KeyRing,
    Message,
    ProtocolError,
    Rekey,
    Role,
    Sealed,
    Upload,
    encode_frame,
    start_rekey,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

T = TypeVar("T")


@dataclass(frozen=True)
class Arrival:
    channel: str
    message: Message
    key_id: int
    at: float


class FakeCloud:
    def __init__(self, bridge_id: str, credential: str, keyrings: dict[str, KeyRing]) -> None:
        self.bridge_id, self.credential = bridge_id, credential
        self.channels = {c: Channel(c, ring, Role.CLOUD) for c, ring in keyrings.items()}
        self.up = {c: ChannelState() for c in keyrings}  # bridge -> cloud, opened here
        self.down = {c: ChannelState() for c in keyrings}  # cloud -> bridge, sealed here
        self.arrivals: list[Arrival] = []
        self.rejections: list[str] = []
        self.handshakes_refused = 0
        self.connections = 0
        self.ack_results = True  # like the real cloud; a test turns it off to lose acks
        self.port = 0
        self._ws: ServerConnection | None = None
        self._server: Server | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-cloud", daemon=True)
        self._thread.start()

    # -- life cycle (called from the test thread) ----------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/bridge"

    def start(self) -> None:
        """Listen (again on the same port after ``stop``: an outage ends)."""
        self._server = self._call(self._listen())
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _listen(self) -> Server:
        return await serve(self._serve, "127.0.0.1", self.port, process_request=self._check)

    def stop(self) -> None:
        """Stop listening and drop the bridge: the cloud is unreachable until ``start``."""
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            self._call(server.wait_closed())

    def drop(self) -> None:
        """Close the current connection only (the bridge reconnects)."""
        ws = self._ws
        if ws is not None:
            self._call(ws.close(1001, "test drops the connection"))

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # -- talking to the bridge ------------------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        self._call(self._send(channel, message))

    def rekey(self, channel: str) -> Rekey:
        """Start a rekey (the cloud's half) and send it under the current key."""
        rekey: Rekey = self._call(self._rekey(channel))
        return rekey

    async def _rekey(self, channel: str) -> Rekey:
        rekey = start_rekey(self.channels[channel])
        await self._send(channel, rekey)
        return rekey

    def frame(self, channel: str, message: Message) -> str:
        """A sealed frame's text, not sent (for replay and tampering tests)."""
        text: str = self._call(self._frame(channel, message))
        return text

    async def _frame(self, channel: str, message: Message) -> str:
        return encode_frame([Sealed(channel, self.channels[channel].seal(message, self.down[channel]))])

    def send_raw(self, text: str | bytes) -> None:
        self._call(self._send_raw(text))

    async def _send_raw(self, text: str | bytes) -> None:
        if self._ws is None:
            raise ConnectionError("the bridge is not connected")
        await self._ws.send(text)

    async def _send(self, channel: str, message: Message) -> None:
        await self._send_raw(await self._frame(channel, message))

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        if request.headers.get("Authorization") != f"Bearer {self.credential}" or \
                query.get("bridge") != [self.bridge_id]:
            self.handshakes_refused += 1
            return connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        self._ws = ws
        self.connections += 1
        reader = FrameReader()
        try:
            async for text in ws:
                for sealed in reader.feed(text):
                    await self._receive(sealed)
        except (ConnectionClosed, ProtocolError):
            pass
        finally:
            if self._ws is ws:
                self._ws = None

    async def _receive(self, sealed: Sealed) -> None:
        try:
            opened = self.channels[sealed.channel].open(sealed.envelope, self.up[sealed.channel])
            message = opened.message()
        except (ProtocolError, KeyError) as exc:
            with self._lock:
                self.rejections.append(f"{sealed.channel}: {exc}")
            return
        with self._lock:
            self.arrivals.append(Arrival(sealed.channel, message, opened.key_id, time.monotonic()))
        if self.ack_results and isinstance(message, BatchResult):
            await self._send(sealed.channel, Ack(message.cycle))
        elif self.ack_results and isinstance(message, Upload):
            await self._send(sealed.channel, Ack(message.ref))

    # -- what arrived ------------------------------------------------------------------------------------

    def messages(self, kind: type[T], channel: str | None = None) -> list[T]:
        with self._lock:
            return [a.message for a in self.arrivals
                    if isinstance(a.message, kind) and (channel is None or a.channel == channel)]

    def results(self, channel: str | None = None) -> list[BatchResult]:
        """Every result set that arrived, live or inside uploads, in arrival order (duplicates kept)."""
        found: list[BatchResult] = []
        with self._lock:
            for arrival in self.arrivals:
                if channel is not None and arrival.channel != channel:
                    continue
                if isinstance(arrival.message, BatchResult):
                    found.append(arrival.message)
                elif isinstance(arrival.message, Upload):
                    found.extend(arrival.message.results)
        return found

    def result(self, cycle: str) -> BatchResult | None:
        return next((r for r in self.results() if r.cycle == cycle), None)

    def await_result(self, cycle: str, timeout: float = 10.0) -> BatchResult:
        return wait_for(lambda: self.result(cycle), timeout, f"the result of {cycle}")


def wait_for(condition: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll until ``condition()`` is truthy; its value, or AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)

