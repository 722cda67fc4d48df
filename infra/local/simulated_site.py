"""Run the meter simulator (``gateway_bridge.simulator``) as a child process, for the demo, tests and benches.

Writes a site TOML for a list of buses, starts the simulator with a ready file, waits for it, and
stops it by PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.processes import stop_process_group

STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SimMeter:
    address: int
    serial: str
    model: str = "DTSY1352"
    remaining_amount: str = "150.00"
    purchase_count: int = 1
    load_kw: str = "2.0"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimBus:
    name: str
    meters: tuple[SimMeter, ...]
    transport: str = "rtutcp"
    port: int = 0
    baud: int = 9600
    turnaround_ms: int = 20
    emulate_wire: bool = True


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f'{k} = {_value(v)}' for k, v in value.items()) + " }"
    return json.dumps(str(value))


def site_toml(name: str, buses: list[SimBus]) -> str:
    lines = ["[site]", f"name = {_value(name)}", "state_save_seconds = 5", ""]
    for bus in buses:
        lines += ["[[buses]]", f"name = {_value(bus.name)}", f"transport = {_value(bus.transport)}",
                  'host = "127.0.0.1"', f"port = {bus.port}", f"baud = {bus.baud}", 'parity = "N"', "stop_bits = 1",
                  f"turnaround_ms = {bus.turnaround_ms}", f"emulate_wire = {_value(bus.emulate_wire)}", ""]
        for meter in bus.meters:
            fields = {"address": meter.address, "model": meter.model, "serial": meter.serial,
                      "remaining_amount": meter.remaining_amount, "total_purchased": meter.remaining_amount,
                      "purchase_count": meter.purchase_count, "load_kw": meter.load_kw, **meter.extra}
            lines += ["[[buses.meters]]", *[f"{k} = {_value(v)}" for k, v in fields.items()], ""]
    return "\n".join(lines)


@dataclass
class RunningSite:
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    log_path: Path

    def bus(self, name: str) -> dict[str, Any]:
        return next(b for b in self.ready["buses"] if b["name"] == name)

    @property
    def control_url(self) -> str:
        control = self.ready["control"]
        return f"http://{control['host']}:{control['port']}"

    def stop(self) -> None:
        stop_process_group(self.process, grace_s=15.0)


def start_site(work_dir: Path, name: str, buses: list[SimBus], *, state_file: Path | None = None,
               speed: float = 1.0) -> RunningSite:
    work_dir.mkdir(parents=True, exist_ok=True)
    config, ready = work_dir / "site.toml", work_dir / "sim-ready.json"
    config.write_text(site_toml(name, buses))
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "gateway_bridge.simulator", "--config", str(config), "--ready-file",
               str(ready), "--control-port", "0", "--speed", str(speed)]
    if state_file is not None:
        command += ["--state", str(state_file)]
    log_path = work_dir / "simulator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    site = RunningSite(process, {}, log_path)
    try:
        site.ready = _wait_for(ready, process, log_path)
    except BaseException:
        site.stop()
        raise
    return site


def _wait_for(ready: Path, process: subprocess.Popen[bytes], log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready.exists():
            return dict(json.loads(ready.read_text()))
        if process.poll() is not None:
            raise RuntimeError(f"the meter simulator exited: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"the meter simulator did not become ready; see {log_path}")
