"""sim_wire: is the simulator's wire-time emulation honest?

A plain pymodbus client sweeps 32 simulated meters (one 30-register FC03 read each) on one emulated
9600-baud 8N1 line with a 20 ms meter turnaround. The simulator runs as its own process (the
``voltvend-sim`` CLI), as the demo and the bridge meet it. The baseline is the wire time computed by
``rtu.wire_time`` from the frames the client actually sent and received (captured with pymodbus's
``trace_packet`` hook). Target: 0.95 <= ratio <= 1.05. Once over RTU-over-TCP, once over a socat pty.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway_bridge.rtu import LineSettings, wire_time
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from bench.timing import ratio_result

NAME = "sim_wire"
METERS = 32
REGISTERS = 30
LINE = LineSettings(baud=9600, parity="N", stop_bits=1, turnaround_ms=20)

SITE_TOML = """
[site]
name = "bench"
[[buses]]
name = "line"
transport = "{transport}"
baud = {baud}
turnaround_ms = {turnaround}
[[buses.meters]]
address = 1
count = {meters}
model = "ACR"          # its assumed map is one contiguous 30-register block at 0x0000
load_kw = 10
"""


class FrameLog:
    """pymodbus trace hook: pairs each request with its response, by length."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self.exchanges: list[tuple[int, int]] = []

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.pending = len(data)
        elif self.pending is not None:
            self.exchanges.append((self.pending, len(data)))
            self.pending = None
        return data

    def wire_seconds(self) -> float:
        return sum(wire_time(request, response, LINE) for request, response in self.exchanges)


def start_simulator(workdir: Path, transport: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    config = workdir / f"{transport}.toml"
    config.write_text(SITE_TOML.format(transport=transport, baud=LINE.baud, turnaround=LINE.turnaround_ms,
                                       meters=METERS))
    ready = workdir / f"{transport}-ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway_bridge.simulator", "--config", str(config), "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_simulator(process)
            raise RuntimeError(f"simulator did not start: {process.stderr.read().decode() if process.stderr else ''}")
        time.sleep(0.05)
    return process, json.loads(ready.read_text())["buses"][0]


def stop_simulator(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def sweep(bus: dict[str, Any], sweeps: int) -> tuple[float, FrameLog]:
    frames = FrameLog()
    client: AsyncModbusTcpClient | AsyncModbusSerialClient
    if bus["transport"] == "serial":
        client = AsyncModbusSerialClient(bus["link"], framer=FramerType.RTU, baudrate=LINE.baud, timeout=2,
                                         retries=0, trace_packet=frames)
    else:
        client = AsyncModbusTcpClient(bus["host"], port=bus["port"], framer=FramerType.RTU, timeout=2, retries=0,
                                      trace_packet=frames)
    await client.connect()
    try:
        await client.read_holding_registers(0, count=REGISTERS, device_id=1)  # warm-up, not counted
        frames.exchanges.clear()
        started = time.perf_counter()
        for _ in range(sweeps):
            for address in range(1, METERS + 1):
                reply = await client.read_holding_registers(0, count=REGISTERS, device_id=address)
                if reply.isError() or len(reply.registers) != REGISTERS:
                    raise RuntimeError(f"meter {address} answered {reply}")
        return time.perf_counter() - started, frames
    finally:
        client.close()


def run(quick: bool) -> Iterator[dict[str, Any]]:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    sweeps = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-sim-wire-") as tmp:
        for transport in ("rtutcp", "serial"):
            process, bus = start_simulator(Path(tmp), transport)
            try:
                elapsed, frames = asyncio.run(sweep(bus, sweeps))
            finally:
                stop_simulator(process)
            yield ratio_result(
                elapsed, frames.wire_seconds(), "s", meters=METERS, registers=REGISTERS, sweeps=sweeps,
                transactions=len(frames.exchanges), transport=transport, line=f"{LINE.label}",
                turnaround_ms=LINE.turnaround_ms, target="0.95 <= ratio <= 1.05",
            )
