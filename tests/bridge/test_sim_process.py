"""The simulator as a process, met by independent pymodbus clients over every transport."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from .conftest import SimProcess, start_sim

T = TypeVar("T")
Client = AsyncModbusTcpClient | AsyncModbusSerialClient

BUS = """
[[buses]]
name = "{transport}"
transport = "{transport}"
baud = 38400
turnaround_ms = 0
[[buses.meters]]
address = 1
count = 3
model = "DTSY1352"
serial = "T-{{address}}"
remaining_amount = 100.00
purchase_count = 4
prices = {{ valley = 0.3000, flat = 0.6000, peak = 0.9000, sharp = 1.2000 }}
load_kw = 2.5
[[buses.meters]]
address = 9
model = "ACR"
load_kw = 6
"""
TRANSPORTS = ("tcp", "rtutcp", "serial")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """One simulator process with one bus per transport."""
    toml = '[site]\nname = "test"\n' + "".join(BUS.format(transport=t) for t in TRANSPORTS)
    sim = start_sim(tmp_path_factory.mktemp("site"), toml)
    yield sim
    sim.stop()


def client_for(bus: dict[str, Any], timeout: float = 0.4) -> Client:
    if bus["transport"] == "serial":
        return AsyncModbusSerialClient(bus["link"], framer=FramerType.RTU, baudrate=38400, timeout=timeout, retries=0)
    framer = FramerType.RTU if bus["transport"] == "rtutcp" else FramerType.SOCKET
    return AsyncModbusTcpClient(bus["host"], port=bus["port"], framer=framer, timeout=timeout, retries=0)


def with_client(bus: dict[str, Any], work: Callable[[Client], Awaitable[T]], timeout: float = 0.4) -> T:
    async def run() -> T:
        client = client_for(bus, timeout)
        assert await client.connect()
        try:
            return await work(client)
        finally:
            client.close()

    return asyncio.run(run())


def amount(words: Sequence[int]) -> int:
    """A signed 32-bit register pair, high word first (independent of our codec)."""
    value = (words[0] << 16) | words[1]
    return value - (1 << 32) if value & 0x80000000 else value


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_read_purchase_and_refusal(site: SimProcess, transport: str) -> None:
    async def work(client: Client) -> None:
        before = await client.read_holding_registers(0x0100, count=15, device_id=2)
        assert not before.isError()
        assert 9990 <= amount(before.registers[0:2]) <= 10000  # 100.00, minus what 2.5 kW has used
        assert before.registers[4] == 4 and before.registers[13] == 0  # purchase count, relay closed
        accepted = await client.write_registers(0x0120, [0, 2500, 5], device_id=2)  # 25.00, count 5
        assert not accepted.isError()
        repeated = await client.write_registers(0x0120, [0, 2500, 5], device_id=2)
        assert repeated.isError() and repeated.exception_code == 3
        after = await client.read_holding_registers(0x0100, count=5, device_id=2)
        assert after.registers[4] == 5
        assert amount(after.registers[0:2]) - amount(before.registers[0:2]) in range(2490, 2501)
        bad_address = await client.read_holding_registers(0x0011, count=1, device_id=2)
        assert bad_address.isError() and bad_address.exception_code == 2
        plain = await client.read_holding_registers(0, count=30, device_id=9)
        assert not plain.isError() and len(plain.registers) == 30

    with_client(site.bus(transport), work)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_address_is_silent(site: SimProcess, transport: str) -> None:
    async def work(client: Client) -> None:
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=2, device_id=42)
        healthy = await client.read_holding_registers(0, count=2, device_id=1)  # the bus still works
        assert not healthy.isError()

    with_client(site.bus(transport), work, timeout=0.3)


def test_ready_file_and_pty(site: SimProcess) -> None:
    assert json.loads(site.ready_file.read_text()) == site.ready
    serial = site.bus("serial")
    assert Path(serial["link"]).exists() and serial["port"] is None and serial["pty_parity"] == "N"
    assert [m["address"] for m in site.bus("tcp")["meters"]] == [1, 2, 3, 9]
    assert site.bus("rtutcp")["port"] > 0


def test_control_endpoint(site: SimProcess) -> None:
    status, state = site.control("GET", "/state")
    assert status == 200 and [b["name"] for b in state["buses"]] == list(TRANSPORTS)
    status, meter = site.control("POST", "/meters/tcp/3/load", {"load_kw": "12.5"})
    assert status == 200 and meter["power_kw"] == "12.500"
    status, meter = site.control("POST", "/meters/tcp/3/remaining", {"remaining_amount": "-5.00"})
    assert (meter["remaining_amount"], meter["relay"], meter["power_kw"]) == ("-5.00", "open", "0")

    async def read(client: Client) -> list[int]:
        return list((await client.read_holding_registers(0x0100, count=14, device_id=3)).registers)

    registers = with_client(site.bus("tcp"), read)
    assert amount(registers[0:2]) == -500 and registers[13] == 1  # arrears, relay open
    assert site.control("GET", "/meters/tcp/77")[0] == 404
    assert site.control("POST", "/meters/tcp/3/load", {"load_kw": "-1"})[0] == 400
    assert site.control("POST", "/meters/tcp/3/fault", {"corrupt_share": 1})[0] == 400  # no CRC on MBAP
    assert site.control("POST", "/advance", {"seconds": "x"})[0] == 400


def test_dead_and_healed_meter_via_control(site: SimProcess) -> None:
    bus = site.bus("rtutcp")
    assert site.control("POST", "/meters/rtutcp/1/fault", {"dead": True})[0] == 200

    async def silent(client: Client) -> None:
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=2, device_id=1)

    with_client(bus, silent, timeout=0.3)
    assert site.control("POST", "/meters/rtutcp/1/fault", {})[0] == 200

    async def answers(client: Client) -> bool:
        return not (await client.read_holding_registers(0, count=2, device_id=1)).isError()

    assert with_client(bus, answers)


def test_lost_acknowledgement_is_resolved_by_reading_the_count(site: SimProcess) -> None:
    """A flaky meter applies the purchase but the answer is lost; the count proves delivery."""
    bus = site.bus("serial")
    site.control("POST", "/meters/serial/3/fault", {"drop_share": 1})

    async def purchase(client: Client) -> None:
        with pytest.raises(ModbusIOException):
            await client.write_registers(0x0120, [0, 1000, 5], device_id=3)

    with_client(bus, purchase, timeout=0.3)
    site.control("POST", "/meters/serial/3/fault", {})

    async def count(client: Client) -> int:
        return int((await client.read_holding_registers(0x0104, count=1, device_id=3)).registers[0])

    assert with_client(bus, count) == 5


def test_corrupt_crc_is_never_accepted(site: SimProcess) -> None:
    site.control("POST", "/meters/rtutcp/3/fault", {"corrupt_share": 1})

    async def read(client: Client) -> None:
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=2, device_id=3)

    try:
        with_client(site.bus("rtutcp"), read, timeout=0.3)
    finally:
        site.control("POST", "/meters/rtutcp/3/fault", {})


# ---------------------------------------------------------------------------------------------------
# Process life: state across restarts, clean shutdown, bad configuration.

ONE_BUS = """
[site]
name = "restart"
state_save_seconds = 0.2
[[buses]]
name = "b"
transport = "serial"
emulate_wire = false
[[buses.meters]]
address = 5
model = "DDSY1352"
remaining_amount = 10.00
"""


def test_state_survives_restart_and_shutdown_is_clean(sim_factory: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first: SimProcess = sim_factory(ONE_BUS, "--state", str(state))
    socat = first.children()
    assert len(socat) == 1 and "socat" in Path(f"/proc/{socat[0]}/cmdline").read_text()
    with_client(first.bus("b"), lambda c: c.write_registers(0x0120, [0, 4000, 1], device_id=5))
    code, out = first.stop()
    assert code == 0 and "ready pid=" in out
    assert not Path(f"/proc/{socat[0]}").exists(), "socat must be stopped with the simulator"
    assert not first.ready_file.exists() and not Path(first.bus("b")["link"]).exists()
    assert json.loads(state.read_text())["meters"]["b/5"]["purchase_count"] == 1

    second: SimProcess = sim_factory(ONE_BUS, "--state", str(state))

    async def read(client: Client) -> list[int]:
        return list((await client.read_holding_registers(0x0100, count=5, device_id=5)).registers)

    registers = with_client(second.bus("b"), read)
    assert amount(registers[0:2]) == 5000 and registers[4] == 1  # 10.00 + 40.00, count kept
    code, out = second.stop()
    assert "restored=1" in out


@pytest.mark.parametrize(("toml", "message"), [
    ("[[buses]]\nname='b'\ntransport='udp'\n", "transport: must be one of"),
    ("this is not toml", "not valid TOML"),
    (ONE_BUS.replace('model = "DDSY1352"', 'model = "NOPE"'), "unknown meter model 'NOPE'"),
    (ONE_BUS.replace("address = 5", "address = 5\nbalance = 3"), "unknown key(s) balance"),
    (ONE_BUS.replace('transport = "serial"', 'transport = "tcp"') + "fault = { corrupt_share = 1 }\n",
     "needs an RTU transport"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    done = subprocess.run([sys.executable, "-m", "gateway_bridge.simulator", "--config", str(config)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
