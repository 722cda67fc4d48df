"""``voltvend-sim`` / ``python -m gateway_bridge.simulator``: run a simulated site until stopped.

    voltvend-sim --config site.toml [--state state.json] [--speed 60] [--ready-file ready.json]
                 [--control-port 0] [--verbose]

Prints one ``key=value`` line per bus saying where it listens, then ``ready``. With ``--ready-file``
it also writes a JSON document once every bus listens (actual ports when port 0 was asked for):

    {"pid": 1234, "site": "demo", "speed": 60.0, "control": {"host": "127.0.0.1", "port": 40123} | null,
     "buses": [{"name", "transport", "host", "port", "link", "pty_parity", "baud", "parity", "stop_bits",
                "turnaround_ms", "emulate_wire", "meters": [{"address", "model", "serial"}]}]}

``baud``/``parity``/``stop_bits`` describe the emulated RS485 line (they set its wire time). A serial
bus's ``link`` is a pty, which refuses parity E: open it at ``pty_parity`` ("N") whatever the line's.

A bad configuration prints one ``error:`` line and exits 2; a start-up failure exits 1. SIGINT or
SIGTERM saves state (with ``--state``), stops the servers and socat, removes the ready file, exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ..profiles import ProfileError
from .config import ConfigError, load_config
from .control import ControlServer
from .registers import SimulatorError
from .servers import StartupError
from .site import Site
from .state import StateError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="voltvend-sim", description="Simulated prepaid-meter site (Modbus).")
    parser.add_argument("--config", required=True, type=Path, help="site TOML file")
    parser.add_argument("--state", type=Path, help="JSON file: restored at start, saved periodically and on exit")
    parser.add_argument("--speed", type=float, help="simulated seconds per real second (overrides site.speed)")
    parser.add_argument("--ready-file", type=Path, help="write where every bus listens (JSON) once ready")
    parser.add_argument("--control-port", type=int, help="serve the HTTP control API on 127.0.0.1:PORT (0 = any)")
    parser.add_argument("--verbose", action="store_true", help="log pymodbus and simulator details")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every client's timeout as an error
    try:
        if args.speed is not None and args.speed <= 0:
            raise ConfigError("--speed must be positive")
        if args.control_port is not None and not 0 <= args.control_port <= 65535:
            raise ConfigError("--control-port must be 0..65535")
        site = Site(load_config(args.config), speed=args.speed, state_path=args.state)
    except (ConfigError, ProfileError, SimulatorError, StateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(site, args))
    except (StartupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def serve(site: Site, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    control = ControlServer(site)
    saver: asyncio.Task[None] | None = None
    try:
        await site.start()
        control_port = await control.start(args.control_port) if args.control_port is not None else None
        _announce(site, args, control_port)
        if args.state is not None:
            saver = asyncio.create_task(site.save_periodically())
        await stop.wait()
    finally:
        await _shutdown(site, control, saver, args)
    return 0


def _announce(site: Site, args: argparse.Namespace, control_port: int | None) -> None:
    for bus in site.describe()["buses"]:
        where = bus["link"] or f"{bus['host']}:{bus['port']}"
        line = f"{bus['baud']} 8{bus['parity']}{bus['stop_bits']}"
        print(f"bus={bus['name']} transport={bus['transport']} listen={where} line=\"{line}\" "
              f"turnaround_ms={bus['turnaround_ms']:g} meters={len(bus['meters'])}", flush=True)
    if control_port is not None:
        print(f"control=http://127.0.0.1:{control_port}/state", flush=True)
    if args.ready_file is not None:
        _write_ready(args.ready_file, _ready_document(site, control_port))
    print(f"ready pid={os.getpid()} restored={site.restored}", flush=True)


def _ready_document(site: Site, control_port: int | None) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "site": site.config.name,
        "speed": site.clock.speed,
        "control": {"host": "127.0.0.1", "port": control_port} if control_port is not None else None,
        **site.describe(),
    }


def _write_ready(path: Path, document: dict[str, Any]) -> None:
    """Atomic, so a reader polling for the file never sees half of it."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(temporary, path)


async def _shutdown(site: Site, control: ControlServer, saver: asyncio.Task[None] | None,
                    args: argparse.Namespace) -> None:
    if saver is not None:
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver
    try:
        site.save()
    except OSError as exc:
        print(f"warning: could not save state: {exc}", file=sys.stderr)
    await control.stop()
    await site.stop()
    if args.ready_file is not None:
        with contextlib.suppress(FileNotFoundError):
            args.ready_file.unlink()


if __name__ == "__main__":
    sys.exit(main())
