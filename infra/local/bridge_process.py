"""Write a gateway bridge's configuration from a registration bundle, and run the bridge as a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.processes import stop_process_group


def _secret_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def write_bridge_config(directory: Path, *, cloud_url: str, bridge_id: str, site_id: str, credential: str,
                        keyrings: dict[str, dict[str, Any]], buses: list[dict[str, Any]],
                        heartbeat_s: int = 60) -> Path:
    """The TOML an installer would write on the bridge box; secrets go to 0600 files beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    if credential:  # a fresh registration; otherwise keep the secrets (the bridge may have rotated keys)
        _secret_file(directory / "credential", credential)
    lines = [f"cloud_url = {json.dumps(cloud_url)}", f"bridge_id = {json.dumps(bridge_id)}",
             f"site_id = {json.dumps(site_id)}", 'credential_file = "credential"', 'state_dir = "state"',
             f"heartbeat_s = {heartbeat_s}", 'log_level = "info"', ""]
    for bus in buses:
        collector = bus["name"]
        if collector in keyrings:
            _secret_file(directory / f"keyring-{collector}.json", json.dumps(keyrings[collector]))
        lines += ["[[collectors]]", f"id = {json.dumps(collector)}", f"transport = {json.dumps(bus['transport'])}",
                  f"host = {json.dumps(bus['host'])}", f"port = {int(bus['port'])}", f"baud = {int(bus['baud'])}",
                  f"parity = {json.dumps(bus['parity'])}", f"stop_bits = {int(bus['stop_bits'])}",
                  f"turnaround_ms = {int(bus['turnaround_ms'])}", "request_timeout_ms = 300",
                  f'keyring = "keyring-{collector}.json"', ""]
    config = directory / "bridge.toml"
    config.write_text("\n".join(lines))
    return config


@dataclass
class BridgeProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        stop_process_group(self.process, grace_s=15.0)

    def kill(self) -> None:
        """Pull the plug: SIGKILL, no goodbye and no flush (what a power cut at the site does)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def start_bridge(config: Path) -> BridgeProcess:
    log_path = config.parent / "bridge.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway_bridge", "run", "--config", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return BridgeProcess(process, log_path)
