"""Start the simulator as a real process (the CLI), and always stop it by PID."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # client timeouts are expected in these tests


@dataclass
class SimProcess:
    process: subprocess.Popen[str]
    ready: dict[str, Any]
    ready_file: Path

    def bus(self, name: str) -> dict[str, Any]:
        return next(b for b in self.ready["buses"] if b["name"] == name)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        port = self.ready["control"]["port"]
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def children(self) -> list[int]:
        return child_pids(self.process.pid)

    def stop(self) -> tuple[int, str]:
        """SIGTERM by PID; returns (exit code, stdout)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return self.process.returncode, out


def child_pids(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def start_sim(workdir: Path, toml: str, *extra: str) -> SimProcess:
    config = workdir / "site.toml"
    config.write_text(toml)
    ready_file = workdir / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway_bridge.simulator", "--config", str(config), "--ready-file", str(ready_file),
         "--control-port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 15
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"simulator did not start: {err}")
        time.sleep(0.02)
    return SimProcess(process, json.loads(ready_file.read_text()), ready_file)


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[Any]:
    """Start simulators in tmp_path; every one still running at the end is stopped by PID."""
    started: list[SimProcess] = []

    def start(toml: str, *extra: str, workdir: Path | None = None) -> SimProcess:
        folder = workdir or tmp_path / f"sim{len(started)}"
        folder.mkdir(exist_ok=True)
        sim = start_sim(folder, toml, *extra)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
