"""Links to collectors: one raw RTU exchange at a time, request bytes in, answer bytes out.

* ``rtutcp``: RTU frames over TCP (an RS485-to-Ethernet gateway in transparent mode).
* ``tcp``: a Modbus TCP gateway; the RTU request travels as MBAP and the answer comes back as RTU.
* ``serial``: an RS485 port on this host (pyserial opens and configures it; the event loop reads its fd).

Reads stop as soon as the answer is complete (``framing.rtu_answer_length``) rather than waiting for
the line to fall silent, which is what keeps the bridge within a few percent of wire time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Protocol

import serial

from .. import rtu
from . import framing
from .config import CollectorConfig

QUIET_GAP_S = 0.02  # end of an answer whose length is unknown (an unusual function code)
MIN_CONNECT_TIMEOUT_S = 1.0


class LinkError(Exception):
    """The collector or port failed (not the meter): the transaction's error is ``io``."""


class Link(Protocol):
    async def exchange(self, request: bytes, timeout_s: float) -> bytes: ...

    async def close(self) -> None: ...


class Inbox:
    """Bytes arriving from the collector, and a way to wait for more until a deadline."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.failure: Exception | None = None
        self.last_byte_at = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        self.last_byte_at = asyncio.get_running_loop().time()
        self._wake()

    def fail(self, failure: Exception) -> None:
        self.failure = failure
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, deadline: float) -> bool:
        """Wait for more bytes; False once ``deadline`` (loop time) passes. Raises the link's failure."""
        if self.failure is not None:
            raise LinkError(str(self.failure))
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        self._waiter = loop.create_future()
        try:
            await asyncio.wait_for(self._waiter, remaining)
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        if self.failure is not None:
            raise LinkError(str(self.failure))
        return True


class _InboxProtocol(asyncio.Protocol):
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def data_received(self, data: bytes) -> None:
        self.inbox.feed(data)

    def eof_received(self) -> bool | None:
        self.inbox.fail(ConnectionResetError("collector closed the connection"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.inbox.fail(exc or ConnectionResetError("connection lost"))


async def read_rtu_answer(inbox: Inbox, request: bytes, deadline: float) -> bytes:
    """The next whole RTU answer to ``request``; bytes from another address (a late answer) are dropped."""
    while True:
        if inbox.data and inbox.data[0] != request[0]:
            inbox.data.clear()
        try:
            needed = framing.rtu_answer_length(request, bytes(inbox.data[:3]))
        except framing.UnknownFraming:
            return await _read_until_quiet(inbox, deadline)
        if needed is not None and len(inbox.data) >= needed:
            answer = bytes(inbox.data[:needed])
            del inbox.data[:needed]
            return answer
        if not await inbox.wait(deadline):
            raise TimeoutError


async def _read_until_quiet(inbox: Inbox, deadline: float) -> bytes:
    loop = asyncio.get_running_loop()
    while await inbox.wait(min(deadline, loop.time() + QUIET_GAP_S)):
        pass
    answer = bytes(inbox.data)
    inbox.data.clear()
    return answer


class _TcpLink:
    """A lazily (re)opened TCP connection to a collector."""

    def __init__(self, host: str, port: int, connect_timeout_s: float) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = max(connect_timeout_s, MIN_CONNECT_TIMEOUT_S)
        self.inbox = Inbox()
        self._transport: asyncio.Transport | None = None

    async def _open(self) -> asyncio.Transport:
        if self._transport is not None and not self._transport.is_closing() and self.inbox.failure is None:
            return self._transport
        await self.close()
        self.inbox = Inbox()
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _InboxProtocol(self.inbox), self.host, self.port),
                self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise LinkError(f"cannot connect to {self.host}:{self.port}: {exc or 'timeout'}") from None
        self._transport = transport
        return transport

    async def _send(self, data: bytes) -> None:
        transport = await self._open()
        self.inbox.data.clear()  # a late answer to an earlier, timed-out request
        transport.write(data)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class RtuTcpLink(_TcpLink):
    async def exchange(self, request: bytes, timeout_s: float) -> bytes:
        await self._send(request)
        return await read_rtu_answer(self.inbox, request, asyncio.get_running_loop().time() + timeout_s)


class ModbusTcpLink(_TcpLink):
    def __init__(self, host: str, port: int, connect_timeout_s: float) -> None:
        super().__init__(host, port, connect_timeout_s)
        self._transaction_id = 0

    async def exchange(self, request: bytes, timeout_s: float) -> bytes:
        if not rtu.crc_ok(request):
            raise LinkError("request CRC is wrong; not forwarded to the Modbus TCP gateway")
        self._transaction_id = (self._transaction_id + 1) & 0xFFFF
        await self._send(framing.rtu_to_mbap(request, self._transaction_id))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            frame = await self._read_mbap(deadline)
            if framing.mbap_transaction_id(frame) == self._transaction_id:
                try:
                    return framing.mbap_to_rtu(frame)
                except framing.MbapError as exc:
                    raise LinkError(str(exc)) from None
            # An answer to an earlier, timed-out request: drop it and keep waiting for ours.

    async def _read_mbap(self, deadline: float) -> bytes:
        inbox = self.inbox
        while True:
            try:
                needed = framing.mbap_length(bytes(inbox.data[:6]))
            except framing.MbapError as exc:
                await self.close()
                raise LinkError(str(exc)) from None
            if needed is not None and len(inbox.data) >= needed:
                frame = bytes(inbox.data[:needed])
                del inbox.data[:needed]
                return frame
            if not await inbox.wait(deadline):
                raise TimeoutError


class SerialLink:
    """An RS485 port on this host. Keeps the 3.5-character silence between frames that RTU requires."""

    def __init__(self, collector: CollectorConfig) -> None:
        assert collector.device is not None
        self.device, self.line = collector.device, collector.line
        self.inbox = Inbox()
        self._port: serial.Serial | None = None

    def _open(self) -> serial.Serial:
        if self._port is not None and self.inbox.failure is None:
            return self._port
        self._close_port()
        try:
            port = serial.Serial(self.device, baudrate=self.line.baud, parity=self.line.parity,
                                 stopbits=self.line.stop_bits, bytesize=8, timeout=0, write_timeout=2)
        except (serial.SerialException, ValueError) as exc:
            raise LinkError(f"cannot open {self.device}: {exc}") from None
        self.inbox = Inbox()
        asyncio.get_running_loop().add_reader(port.fileno(), self._readable, port.fileno())
        self._port = port
        return port

    def _readable(self, fd: int) -> None:
        failure: Exception
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:  # the adapter was unplugged, or the pty's other end went away
            chunk, failure = b"", exc
        else:
            failure = EOFError(f"{self.device} closed")
        if chunk:
            self.inbox.feed(chunk)
            return
        # A readable fd that yields nothing would wake the loop forever: stop watching it until reopened.
        asyncio.get_running_loop().remove_reader(fd)
        self.inbox.fail(failure)

    async def exchange(self, request: bytes, timeout_s: float) -> bytes:
        port = self._open()
        loop = asyncio.get_running_loop()
        quiet_until = self.inbox.last_byte_at + 3.5 * self.line.char_time
        if quiet_until > loop.time():
            await asyncio.sleep(quiet_until - loop.time())
        self.inbox.data.clear()
        try:
            port.write(request)
        except (serial.SerialException, OSError) as exc:
            await self.close()
            raise LinkError(f"write to {self.device} failed: {exc}") from None
        return await read_rtu_answer(self.inbox, request, loop.time() + timeout_s)

    async def close(self) -> None:
        self._close_port()

    def _close_port(self) -> None:
        if self._port is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._port.fileno())
            self._port.close()
            self._port = None


def make_link(collector: CollectorConfig) -> Link:
    """The link for a collector's transport."""
    connect_timeout_s = collector.request_timeout_ms / 1000
    if collector.transport == "serial":
        return SerialLink(collector)
    assert collector.host is not None and collector.port is not None
    if collector.transport == "tcp":
        return ModbusTcpLink(collector.host, collector.port, connect_timeout_s)
    return RtuTcpLink(collector.host, collector.port, connect_timeout_s)
