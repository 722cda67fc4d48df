"""A small loopback-only HTTP/JSON control endpoint, for tests and demos.

    GET  /state                                  every meter (snapshot), the clock speed
    GET  /meters/<bus>/<address>                 one meter
    POST /meters/<bus>/<address>/load            {"load_kw": "3.5"}
    POST /meters/<bus>/<address>/fault           {"dead": true} | {"slow_ms": 200} | {"drop_share": 0.5}
                                                 | {"corrupt_share": 1}; {} heals the meter
    POST /meters/<bus>/<address>/remaining       {"remaining_amount": "10.00"}
    POST /advance                                {"seconds": 3600}: simulated time jumps forward

Amounts are JSON strings or numbers (read as Decimal). Answers are JSON; errors are
{"error": "..."} with 400 or 404. It runs in the simulator's event loop, so it never races a bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

from .bus import Fault
from .registers import SimulatorError
from .site import Site
from .state import snapshot

LOOPBACK = "127.0.0.1"
MAX_BODY = 64 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ControlServer:
    """Serves the control API for one Site on 127.0.0.1."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._handle, LOOPBACK, port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, body = await asyncio.wait_for(_read_request(reader), timeout=5)
            status, payload = 200, self.dispatch(method, path, body)
        except HttpError as exc:
            status, payload = exc.status, {"error": exc.message}
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        data = json.dumps(payload, indent=1).encode()
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
        writer.write(head.encode() + data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def dispatch(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """Route one request; HttpError for anything the caller got wrong."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts == ["state"] and method == "GET":
            self.site.sync_all()
            return self._state()
        if parts == ["advance"] and method == "POST":
            self.site.skip(_decimal(body, "seconds", low=Decimal(0)))
            return self._state()
        if len(parts) in (3, 4) and parts[0] == "meters":
            return self._meter_route(method, parts[1], parts[2], parts[3] if len(parts) == 4 else None, body)
        raise HttpError(404, f"no route {method} {path}")

    def _state(self) -> dict[str, Any]:
        return {
            "speed": self.site.clock.speed,
            "buses": [
                {"name": bus.name, "meters": [snapshot(bus.name, bus.meters[a]) for a in sorted(bus.meters)]}
                for bus in self.site.buses
            ],
        }

    def _meter_route(self, method: str, bus_name: str, address: str, action: str | None, body: dict[str, Any]) -> Any:
        try:
            sim = self.site.meter(bus_name, int(address))
        except (KeyError, ValueError) as exc:
            raise HttpError(404, f"no meter {address} on bus {bus_name}") from exc
        if action is None and method == "GET":
            return snapshot(bus_name, sim)
        if method != "POST":
            raise HttpError(405, "use POST to change a meter")
        if action == "load":
            sim.meter.set_load(_decimal(body, "load_kw", low=Decimal(0)))
        elif action == "remaining":
            sim.meter.set_balance(_decimal(body, "remaining_amount"))
        elif action == "fault":
            self._set_fault(bus_name, sim.address, body)
        else:
            raise HttpError(404, f"no meter action {action!r}")
        return snapshot(bus_name, sim)

    def _set_fault(self, bus_name: str, address: int, body: dict[str, Any]) -> None:
        allowed = set(asdict(Fault()))
        if set(body) - allowed:
            raise HttpError(400, f"fault fields are {sorted(allowed)}")
        if not isinstance(body.get("dead", False), bool):
            raise HttpError(400, "dead must be true or false")
        try:
            fault = Fault(
                dead=body.get("dead", False),
                slow_ms=float(body.get("slow_ms", 0)),
                drop_share=float(body.get("drop_share", 0)),
                corrupt_share=float(body.get("corrupt_share", 0)),
            )
            self.site.bus(bus_name).set_fault(address, fault)
        except (SimulatorError, TypeError, ValueError) as exc:
            raise HttpError(400, str(exc)) from exc


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, Any]]:
    request_line = (await reader.readline()).decode("latin-1").split()
    if len(request_line) != 3:
        raise HttpError(400, "malformed request line")
    length = 0
    while (line := (await reader.readline()).decode("latin-1").strip()):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip()) if value.strip().isdigit() else -1
    if not 0 <= length <= MAX_BODY:
        raise HttpError(400, "bad or oversized Content-Length")
    raw = await reader.readexactly(length) if length else b"{}"
    try:
        body = json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HttpError(400, "body must be a JSON object")
    return request_line[0].upper(), request_line[1], body


def _decimal(body: dict[str, Any], key: str, low: Decimal | None = None) -> Decimal:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise HttpError(400, f"{key} is required (a number or a decimal string)")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise HttpError(400, f"{key}: {value!r} is not a number") from exc
    if not number.is_finite() or (low is not None and number < low):
        raise HttpError(400, f"{key}: {value!r} is out of range")
    return number
