"""Put a simulated bus on the network: Modbus TCP, RTU over TCP, or RTU on a socat pty pair.

A pty ignores its baud rate and refuses parity (EINVAL), so both ends are opened at 8N1 and the
bus's line settings (baud, parity, stop bits) only drive the wire-time emulation. Clients open
their end at 8N1 too. The socat process belongs to the simulator: started and stopped here, by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from .bus import Bus, BusCore

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A bus could not be put on the network (port taken, socat missing...)."""


def _die_with_parent() -> None:
    """In the socat child: get SIGTERM if the simulator dies without cleaning up (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class PtyPair:
    """Two linked ptys made by socat: the simulator serves one end, clients open the other."""

    def __init__(self, client_link: Path, server_link: Path, owned_dir: Path | None = None) -> None:
        self.client_link = client_link
        self.server_link = server_link
        self.owned_dir = owned_dir  # a temp dir we made for the links, removed on stop
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 5.0) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise StartupError("socat is not installed (apt-get install socat)")
        for link in (self.client_link, self.server_link):
            if link.is_symlink() or link.exists():
                link.unlink()  # a stale link from a killed run would point at a dead pty
        command = [socat, f"pty,raw,echo=0,link={self.server_link}", f"pty,raw,echo=0,link={self.client_link}"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only sets the parent-death signal, safe before exec
        )
        self._wait_for_links(timeout)

    def _wait_for_links(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not (self.client_link.exists() and self.server_link.exists()):
            if self.process is not None and self.process.poll() is not None:
                raise StartupError(f"socat exited ({self.process.returncode}) making {self.client_link}")
            if time.monotonic() > deadline:
                self.stop()
                raise StartupError(f"socat did not create {self.client_link} within {timeout} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop our socat by its PID and remove the links."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        for link in (self.client_link, self.server_link):
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
        if self.owned_dir is not None:
            with contextlib.suppress(OSError):
                self.owned_dir.rmdir()


@dataclass
class Endpoint:
    """Where a running bus listens."""

    bus: Bus
    server: ModbusTcpServer | ModbusSerialServer
    host: str | None = None
    port: int | None = None
    link: Path | None = None
    pty: PtyPair | None = None

    @property
    def where(self) -> str:
        return str(self.link) if self.link else f"{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.server.shutdown()
        if self.pty is not None:
            self.pty.stop()


async def start_bus(bus: Bus, host: str = "127.0.0.1", port: int = 0, link: Path | None = None) -> Endpoint:
    """Serve ``bus`` on its transport; port 0 picks a free port, no link makes one in a temp dir."""
    if bus.transport == "serial":
        return await _start_serial(bus, link)
    framer = FramerType.RTU if bus.rtu_framing else FramerType.SOCKET
    server = ModbusTcpServer(
        bus.sim_devices(), framer=framer, address=(host, port), ignore_missing_devices=True,
        trace_packet=bus.trace_packet,
    )
    server.context = BusCore(bus)
    await _serve(server, f"bus {bus.name}: cannot listen on {host}:{port}")
    sockets: Any = getattr(server.transport, "sockets", None)
    bound_port = int(sockets[0].getsockname()[1]) if sockets else port
    return Endpoint(bus, server, host=host, port=bound_port)


async def _start_serial(bus: Bus, link: Path | None) -> Endpoint:
    owned_dir = Path(tempfile.mkdtemp(prefix="voltvend-sim-")) if link is None else None
    if owned_dir is not None:
        link = owned_dir / f"tty-{bus.name}"
    assert link is not None
    pty = PtyPair(link, link.with_name(link.name + ".sim"), owned_dir)
    pty.start()
    server = ModbusSerialServer(
        bus.sim_devices(), framer=FramerType.RTU, port=str(pty.server_link), baudrate=bus.line.baud,
        parity="N", stopbits=1, bytesize=8, ignore_missing_devices=True,
        trace_packet=bus.trace_packet,
    )
    server.context = BusCore(bus)
    try:
        await _serve(server, f"bus {bus.name}: cannot open {pty.server_link}")
    except StartupError:
        pty.stop()
        raise
    return Endpoint(bus, server, link=link, pty=pty)


async def _serve(server: ModbusTcpServer | ModbusSerialServer, failure: str) -> None:
    try:
        await server.serve_forever(background=True)
    except Exception as exc:  # pyserial's termios.error is no OSError; all mean "cannot listen"
        raise StartupError(f"{failure}: {exc}") from exc
