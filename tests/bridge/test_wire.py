"""The emulated line is never faster than a real RS485 line, and is one line shared by all clients.

Only lower bounds are asserted (plus a loose sanity ceiling): how close the emulation gets to
physics is measured by the sim_wire benchmark, not by a timed test.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from decimal import Decimal

from gateway_bridge.profiles import load_profile
from gateway_bridge.rtu import LineSettings, read_wire_time, wire_time, write_request_length
from gateway_bridge.simulator.bus import Bus, Fault, SimClock, SimulatedMeter
from gateway_bridge.simulator.meter import Meter, MeterState
from gateway_bridge.simulator.registers import RegisterImage
from gateway_bridge.simulator.servers import Endpoint, start_bus
from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient

LINE = LineSettings(baud=19200, parity="E", stop_bits=1, turnaround_ms=10)


def make_bus(faults: dict[int, Fault] | None = None) -> Bus:
    bus = Bus("wire", "rtutcp", LINE, SimClock(1.0), seed=1)
    profile = load_profile("ACR")
    for address in range(1, 5):
        meter = Meter(MeterState(serial=f"W{address}", clock=datetime(2026, 1, 1), load_kw=Decimal(3)),
                      prepaid=False, phases=3)
        bus.add(SimulatedMeter(address, profile.model, meter, RegisterImage(profile, meter),
                               (faults or {}).get(address, Fault())))
    return bus


async def connected(endpoint: Endpoint) -> AsyncModbusTcpClient:
    assert endpoint.port is not None
    client = AsyncModbusTcpClient("127.0.0.1", port=endpoint.port, framer=FramerType.RTU, timeout=1, retries=0)
    assert await client.connect()
    return client


async def timed_reads(client: AsyncModbusTcpClient, addresses: list[int], count: int) -> float:
    started = time.perf_counter()
    for address in addresses:
        reply = await client.read_holding_registers(0, count=count, device_id=address)
        assert not reply.isError()
    return time.perf_counter() - started


def test_one_client_is_no_faster_than_the_line() -> None:
    async def scenario() -> tuple[float, float]:
        endpoint = await start_bus(make_bus())
        client = await connected(endpoint)
        try:
            elapsed = await timed_reads(client, [1, 2, 3, 4] * 2, 20)
        finally:
            client.close()
            await endpoint.stop()
        return elapsed, 8 * read_wire_time(20, LINE)

    elapsed, wire = asyncio.run(scenario())
    assert wire <= elapsed < 2 * wire + 0.2


def test_two_clients_share_one_line() -> None:
    async def scenario() -> tuple[float, float]:
        endpoint = await start_bus(make_bus())
        first, second = await connected(endpoint), await connected(endpoint)
        try:
            started = time.perf_counter()
            await asyncio.gather(timed_reads(first, [1, 2] * 3, 20), timed_reads(second, [3, 4] * 3, 20))
            elapsed = time.perf_counter() - started
        finally:
            first.close()
            second.close()
            await endpoint.stop()
        return elapsed, 12 * read_wire_time(20, LINE)

    elapsed, wire = asyncio.run(scenario())
    assert elapsed >= wire, "two masters on one RS485 line are served one after the other"


def test_slow_meter_adds_its_turnaround_and_writes_cost_their_bytes() -> None:
    async def scenario() -> tuple[float, float]:
        endpoint = await start_bus(make_bus({2: Fault(slow_ms=80)}))
        client = await connected(endpoint)
        try:
            slow = await timed_reads(client, [2], 10)
            started = time.perf_counter()
            reply = await client.write_registers(0, [1] * 60, device_id=1)  # refused (read-only), still on the wire
            write = time.perf_counter() - started
        finally:
            client.close()
            await endpoint.stop()
        assert reply.isError() and reply.exception_code == 2
        return slow, write

    slow, write = asyncio.run(scenario())
    assert slow >= read_wire_time(10, LINE) + 0.080
    assert write >= wire_time(write_request_length(60), 5, LINE)


def test_emulation_can_be_switched_off_for_fast_tests() -> None:
    async def scenario() -> float:
        bus = make_bus()
        bus.emulate_wire = False
        endpoint = await start_bus(bus)
        client = await connected(endpoint)
        try:
            return await timed_reads(client, [1, 2, 3, 4] * 5, 30)
        finally:
            client.close()
            await endpoint.stop()

    assert asyncio.run(scenario()) < 20 * read_wire_time(30, LINE)


def test_sim_clock_speed_and_skip() -> None:
    now = [100.0]
    clock = SimClock(speed=60, monotonic=lambda: now[0])
    now[0] += 1.5
    assert clock.now_ms() == 90_000
    clock.skip(Decimal(3600))
    assert clock.now_ms() == 3_690_000
