"""The running bridge's status file (``state_dir/status.json``), and how ``status`` shows it.

The service rewrites the file every few seconds; ``status`` trusts it only while its writer is alive
and the file is fresh, so a crashed bridge never looks connected.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
WRITE_EVERY_S = 2.0
STALE_AFTER_S = 15.0


def status_path(state_dir: Path) -> Path:
    return state_dir / STATUS_FILE


def write_status(path: Path, document: dict[str, Any]) -> None:
    """Atomic, so ``status`` never reads half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def is_live(document: dict[str, Any], now_ms: int) -> bool:
    """Its writer still runs and wrote recently."""
    if document.get("stopped"):
        return False
    try:
        os.kill(int(document["pid"]), 0)
    except (KeyError, ValueError, TypeError, ProcessLookupError, PermissionError):
        return False
    return now_ms - int(document.get("updated_ms", 0)) <= STALE_AFTER_S * 1000


def _when(ms: int | None, now_ms: int) -> str:
    if not ms:
        return "never"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))
    ago = (now_ms - ms) / 1000
    return f"{stamp} ({ago:.0f} s ago)" if ago >= 0 else f"{stamp} (in {-ago:.0f} s)"


def format_status(document: dict[str, Any], now_ms: int) -> str:
    """A readable summary: connection, buffer, each bus's queue and plan, each meter's last answer."""
    live = is_live(document, now_ms)
    lines = [f"bridge {document.get('bridge_id')} (site {document.get('site_id')}), version "
             f"{document.get('version')}: {'running, pid ' + str(document.get('pid')) if live else 'NOT RUNNING'}",
             f"status written {_when(document.get('updated_ms'), now_ms)}"]
    lines += _connection_lines(document.get("connection", {}), now_ms)
    buffer = document.get("buffer", {})
    lines.append(f"buffer: {buffer.get('rows', 0)} result sets waiting for the cloud (max {buffer.get('max_rows')}),"
                 f" thinned so far: {buffer.get('thinned_total', 0)}")
    if buffer.get("last_thinning"):
        lines.append(f"  last thinning: {buffer['last_thinning']}")
    for bus_id, bus in sorted(document.get("buses", {}).items()):
        lines += _bus_lines(bus_id, bus, now_ms)
    return "\n".join(lines)


def _connection_lines(connection: dict[str, Any], now_ms: int) -> list[str]:
    state = connection.get("state", "unknown")
    lines = [f"connection: {state} since {_when(connection.get('since_ms'), now_ms)}, "
             f"{connection.get('connects', 0)} connect(s)"]
    if state != "connected" and connection.get("last_error"):
        lines.append(f"  last error: {connection['last_error']}")
    if connection.get("retry_at_ms") and state != "connected":
        lines.append(f"  next attempt: {_when(connection['retry_at_ms'], now_ms)}")
    return lines


def _bus_lines(bus_id: str, bus: dict[str, Any], now_ms: int) -> list[str]:
    plan = bus.get("plan")
    plan_text = f"plan {plan['cycle']} every {plan['every_s']} s ({plan['txns']} txns)" if plan else "no standing plan"
    lines = [f"bus {bus_id} ({bus.get('transport')}): queue {bus.get('queue', 0)}, "
             f"{bus.get('buffered', 0)} buffered, {plan_text}, last run {_when(bus.get('last_run_ms'), now_ms)}"]
    for address, meter in sorted(bus.get("meters", {}).items(), key=lambda item: int(item[0])):
        health = "ok"
        if meter.get("failures"):
            health = (f"{meter['failures']} failure(s), skipping {meter.get('skip_cycles', 0)} cycle(s), "
                      f"{meter.get('last_error')}")
        lines.append(f"  meter {int(address):>3}: last answer {_when(meter.get('last_answer_ms'), now_ms)}; {health}")
    return lines
