"""The WebSocket to the cloud: connect, hello, heartbeats, planned reconnects, back-off, and the one
place where messages are sealed (at send time, in sequence order) and inbound envelopes opened.

API Gateway closes idle sockets after 10 minutes and any socket after 2 hours, so the bridge
heartbeats well inside the first and reconnects on its own before the second.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ..protocol import (
    MAX_MESSAGE_BYTES,
    FrameReader,
    Heartbeat,
    Hello,
    Message,
    ProtocolError,
    Rekey,
    Sealed,
    encode_frame,
)
from . import VERSION
from .channels import DOWN, UP, Channels
from .config import BridgeConfig
from .store import Database, Store

log = logging.getLogger("gateway_bridge.tunnel")
SEND_LIMIT = 100_000  # bytes per WebSocket message we aim for (the cloud does not reassemble parts)
STABLE_AFTER_S = 30.0  # a connection that lasted this long resets the back-off
FIRST_DELAY_S = 1.0


class NotConnected(Exception):
    """There is no open WebSocket right now; the caller keeps the message for later."""


class Peer(Protocol):
    """What the tunnel calls back into (the bridge service)."""

    async def connected(self) -> None: ...

    def disconnected(self) -> None: ...

    async def handle(self, channel_id: str, message: Message) -> None: ...

    def queued(self, channel_id: str) -> int: ...


@dataclass
class ConnectionStatus:
    state: str = "starting"  # connecting | connected | offline | credential_refused
    since_ms: int = 0
    last_error: str | None = None
    connects: int = 0
    retry_at_ms: int | None = None


def backoff_delay(attempt: int, cap_s: float, draw: Callable[[], float] = random.random) -> float:
    """Jittered exponential back-off: 1, 2, 4 ... seconds up to ``cap_s``, each drawn from its upper half."""
    ceiling = min(cap_s, FIRST_DELAY_S * 2 ** min(attempt, 16))
    return ceiling * (0.5 + 0.5 * draw())


class Tunnel:
    def __init__(self, config: BridgeConfig, channels: Channels, db: Database, peer: Peer,
                 clock: Callable[[], float] = time.time) -> None:
        self.config, self.channels, self.db, self.peer = config, channels, db, peer
        self.status = ConnectionStatus(since_ms=int(clock() * 1000))
        self._clock = clock
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._last_logged: str | None = None

    @property
    def url(self) -> str:
        separator = "&" if "?" in self.config.cloud_url else "?"
        return f"{self.config.cloud_url}{separator}bridge={self.config.bridge_id}"

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with back-off."""
        attempt = 0
        while True:
            self._set("connecting")
            started = time.monotonic()
            planned = await self._attempt()
            self._ws = None
            self.peer.disconnected()
            if planned:
                attempt = 0
                continue
            attempt = 0 if time.monotonic() - started >= STABLE_AFTER_S else attempt + 1
            refused = self.status.state == "credential_refused"
            delay = backoff_delay(attempt if not refused else 99, self.config.reconnect_max_s)
            self.status.retry_at_ms = self._now_ms() + int(delay * 1000)
            if not refused:
                self._set("offline", self.status.last_error)
            await asyncio.sleep(delay)

    async def _attempt(self) -> bool:
        """One connection's life; True when it ended by our planned reconnect."""
        try:
            return await self._session()
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code in (401, 403):
                self._set("credential_refused", f"HTTP {code}: the cloud refused the bridge's credential "
                          f"(wrong or revoked) for bridge {self.config.bridge_id}")
                self._log(logging.ERROR, self.status.last_error or "")
            else:
                self._failed(f"handshake refused: HTTP {code}")
        except (OSError, TimeoutError, WebSocketException, NotConnected) as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug must cost one connection, not the bridge's link to the cloud
            log.exception("unexpected failure of the connection")
            self._failed(f"{type(exc).__name__}: {exc}")
        return False

    async def _session(self) -> bool:
        headers = {"Authorization": f"Bearer {self.config.credential}"}
        async with connect(self.url, additional_headers=headers, open_timeout=15, close_timeout=5,
                           max_size=2 * MAX_MESSAGE_BYTES) as ws:
            self._ws = ws
            self.status.connects += 1
            self._set("connected")
            self._log(logging.INFO, f"connected to {self.config.cloud_url} as {self.config.bridge_id}")
            await self._send_hello()
            await self.peer.connected()
            return await self._serve(ws)

    async def _serve(self, ws: ClientConnection) -> bool:
        tasks = {
            asyncio.create_task(self._read(ws), name="tunnel-read"),
            asyncio.create_task(self._heartbeats(), name="tunnel-heartbeat"),
            asyncio.create_task(self._planned_reconnect(), name="tunnel-planned"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finished = done.pop()
        if finished.get_name() == "tunnel-planned" and not finished.cancelled():
            log.info("planned reconnect (API Gateway closes connections after 2 h)")
            await ws.close(1000, "planned reconnect")
            return True
        error = finished.exception()
        self._failed(f"connection lost: {error or 'closed by the cloud'}")
        return False

    async def _read(self, ws: ClientConnection) -> None:
        frames = FrameReader()
        try:
            async for text in ws:
                try:
                    items = frames.feed(text)
                except ProtocolError:
                    continue  # already logged with its reason
                for sealed in items:
                    await self._deliver(sealed.channel, sealed)
        except ConnectionClosed:
            return

    async def _deliver(self, channel_id: str, sealed: Sealed) -> None:
        try:
            message = self.channels.open(sealed)
        except ProtocolError:
            return  # dropped; the protocol logged why
        await self.db.run(Store.save_channel_states, self.channels.snapshot([channel_id], DOWN))
        try:
            await self.peer.handle(channel_id, message)
        except Exception:  # one bad message must not take the connection down
            log.exception("handling a %s from the cloud on %s failed", type(message).__name__, channel_id)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            now_ms = self._now_ms()
            await self.send([(c, Heartbeat(now_ms, self.peer.queued(c))) for c in self.channels.ids])

    async def _planned_reconnect(self) -> None:
        # A little jitter, so a fleet restarted together does not reconnect together.
        await asyncio.sleep(self.config.planned_reconnect_s * (0.95 + 0.05 * random.random()))

    async def _send_hello(self) -> None:
        hello = Hello(self.config.bridge_id, self.config.site_id, VERSION, self._now_ms(), self.channels.ids)
        await self.send([(c, hello) for c in self.channels.ids])

    async def send(self, items: Sequence[tuple[str, Message]]) -> None:
        """Seal (now: the timestamp window is judged at arrival), persist the sequence, send one frame."""
        async with self._send_lock:
            self._send_check()
            sealed = []
            for channel_id, message in items:
                try:
                    sealed.append(self.channels.seal(channel_id, message))
                except ProtocolError:  # logged; e.g. key_exhausted until the cloud rekeys: the rest still goes
                    continue
            if sealed:
                await self._transmit(sealed, {s.channel for s in sealed})

    async def send_rekey_ack(self, channel_id: str, rekey: Rekey) -> None:
        """Accept a rekey and ack it under the new key; nothing else seals on the channel in between."""
        async with self._send_lock:
            ack = await asyncio.get_running_loop().run_in_executor(None, self.channels.accept_rekey, channel_id, rekey)
            log.info("rekey %s on %s: %s, now key id %d", rekey.ref, channel_id, "accepted" if ack.ok else ack.error,
                     self.channels.current_key_id(channel_id))
            self._send_check()
            await self._transmit([self.channels.seal(channel_id, ack)], {channel_id})

    def _send_check(self) -> None:
        if self._ws is None:
            raise NotConnected

    async def _transmit(self, sealed: list[Sealed], channel_ids: set[str]) -> None:
        await self.db.run(Store.save_channel_states, self.channels.snapshot(channel_ids, UP))
        text = encode_frame(sealed)
        if len(text) > SEND_LIMIT:
            log.warning("sending a %d-byte message (over the %d-byte aim)", len(text), SEND_LIMIT)
        ws = self._ws
        if ws is None:
            raise NotConnected
        try:
            await ws.send(text)
        except ConnectionClosed:
            raise NotConnected from None

    def _failed(self, error: str) -> None:
        self.status.last_error = error
        self._log(logging.WARNING, error)

    def _log(self, level: int, text: str) -> None:
        # A repeated failure is logged once at its level, then quietly (STYLE: flag repeated errors once).
        log.log(level if text != self._last_logged else logging.DEBUG, "%s", text)
        self._last_logged = text

    def _set(self, state: str, error: str | None = None) -> None:
        if state != self.status.state:
            self.status.since_ms = self._now_ms()
        self.status.state = state
        if state == "connected":
            self.status.retry_at_ms = None
        elif error is not None:
            self.status.last_error = error

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
