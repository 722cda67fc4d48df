"""Processes for the bridge service tests: the simulator and the bridge run as real processes through
their CLIs, the cloud is the in-process ``FakeCloud``. Everything started here is stopped by PID."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gateway_bridge.protocol import Hello, KeyRing, generate_key

from .fake_cloud import FakeCloud, wait_for

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
BRIDGE_ID = "t-op.bridge-1"
CREDENTIAL = "test-credential-0123456789"


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]

    def bus(self, name: str) -> dict[str, Any]:
        return next(b for b in self.ready["buses"] if b["name"] == name)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.ready['control']['port']}{path}", data=data,
                                         method=method)
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    def meter(self, bus: str, address: int) -> dict[str, Any]:
        return dict(self.control("GET", f"/meters/{bus}/{address}"))


@dataclass
class Bridge:
    process: subprocess.Popen[bytes]
    config: Path
    log: Path

    @property
    def state_dir(self) -> Path:
        return self.config.parent / "state"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """SIGTERM by PID, then SIGKILL if it does not go; returns the exit code."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def write_keyring(path: Path, ring: KeyRing) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(ring.to_dict(), handle)


def collector_toml(bus: dict[str, Any], timeout_ms: int) -> str:
    where = (f'device = "{bus["link"]}"\nparity = "{bus["pty_parity"]}"' if bus["transport"] == "serial"
             else f'host = "{bus["host"]}"\nport = {bus["port"]}\nparity = "{bus["parity"]}"')
    return (f'\n[[collectors]]\nid = "{bus["name"]}"\ntransport = "{bus["transport"]}"\n{where}\n'
            f'baud = {bus["baud"]}\nturnaround_ms = {bus["turnaround_ms"]:g}\n'
            f'request_timeout_ms = {timeout_ms}\nkeyring = "keys/{bus["name"]}.json"\n')


@dataclass
class Stack:
    """A factory for simulators, fake clouds and bridges in one test's tmp_path, torn down by PID."""

    root: Path
    simulators: list[Simulator] = field(default_factory=list)
    clouds: list[FakeCloud] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)

    def simulator(self, toml: str, *extra: str) -> Simulator:
        folder = self.root / f"sim{len(self.simulators)}"
        folder.mkdir()
        (folder / "site.toml").write_text(toml)
        ready_file = folder / "ready.json"
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway_bridge.simulator", "--config", str(folder / "site.toml"),
             "--ready-file", str(ready_file), "--control-port", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sim = Simulator(process, {})
        self.simulators.append(sim)
        wait_for(lambda: ready_file.exists() or process.poll() is not None, 15, "the simulator's ready file")
        assert process.poll() is None, "simulator exited at start"
        sim.ready = json.loads(ready_file.read_text())
        return sim

    def cloud(self, buses: list[str]) -> FakeCloud:
        """A listening fake cloud holding fresh 3DES key rings for ``buses`` (written for the bridge too)."""
        rings = {bus: KeyRing(current=generate_key(1)) for bus in buses}
        for bus, ring in rings.items():
            write_keyring(self.root / "bridge" / "keys" / f"{bus}.json", ring)
        cloud = FakeCloud(BRIDGE_ID, CREDENTIAL, {b: KeyRing.from_dict(r.to_dict()) for b, r in rings.items()})
        self.clouds.append(cloud)
        cloud.start()
        return cloud

    def config(self, cloud: FakeCloud, buses: list[dict[str, Any]], timeout_ms: int = 150,
               credential: str = CREDENTIAL, extra: str = "heartbeat_s = 5") -> Path:
        folder = self.root / "bridge"
        folder.mkdir(exist_ok=True)
        text = (f'cloud_url = "{cloud.url}"\nbridge_id = "{BRIDGE_ID}"\ncredential = "{credential}"\n'
                f'site_id = "site-1"\nstate_dir = "state"\nreconnect_max_s = 1\n'
                f'log_level = "debug"\n{extra}\n' + "".join(collector_toml(b, timeout_ms) for b in buses))
        path = folder / "bridge.toml"
        path.write_text(text)
        return path

    def bridge(self, config: Path) -> Bridge:
        log = config.parent / f"bridge-{len(self.bridges)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen([sys.executable, "-m", "gateway_bridge", "run", "--config", str(config)],
                                       stdout=sink, stderr=sink)
        bridge = Bridge(process, config, log)
        self.bridges.append(bridge)
        return bridge

    def close(self) -> None:
        for bridge in self.bridges:
            stop_process(bridge.process)
        for cloud in self.clouds:
            cloud.close()
        for sim in self.simulators:
            stop_process(sim.process)


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    built = Stack(tmp_path)
    try:
        yield built
    finally:
        built.close()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for bridge in built.bridges:
                print(f"--- {bridge.log} ---\n{bridge.log_text()[-6000:]}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def started(bridge: Bridge, cloud: FakeCloud, connections: int = 1) -> None:
    """Wait until the bridge has said hello ``connections`` times."""
    wait_for(lambda: len(cloud.messages(Hello)) >= connections * len(cloud.channels) or
             bridge.process.poll() is not None, 15, "the bridge's hello")
    assert bridge.process.poll() is None, bridge.log_text()

