"""``voltvend-bridge`` / ``python -m gateway_bridge``: run the bridge, show its status, scan a bus, check a config.

    voltvend-bridge run          --config bridge.toml
    voltvend-bridge status       --config bridge.toml [--json]
    voltvend-bridge scan         --config bridge.toml --bus ID [--from 1 --to 247]
    voltvend-bridge check-config --config bridge.toml

A bad configuration or bad arguments print one ``error:`` line and exit 2. ``status`` exits 3 when the
bridge is not running. SIGINT/SIGTERM stop ``run`` cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from .bridge.config import BridgeConfig, ConfigError, load_config
from .bridge.links import LinkError
from .bridge.scan import run_scan
from .bridge.service import BridgeService
from .bridge.status import format_status, is_live, read_status, status_path

EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="voltvend-bridge", description="Voltvend gateway bridge: Modbus buses to the cloud.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text in (("run", "run the bridge until stopped"), ("status", "show the running bridge's status"),
                       ("scan", "find the slave addresses answering on a bus"),
                       ("check-config", "validate the configuration and exit")):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--config", required=True, type=Path, help="bridge TOML file")
        if name == "status":
            command.add_argument("--json", action="store_true", help="print the raw status document")
        if name == "scan":
            command.add_argument("--bus", required=True, help="collector id (as in [[collectors]] id)")
            command.add_argument("--from", dest="first", type=int, default=1, help="first address (default 1)")
            command.add_argument("--to", dest="last", type=int, default=247, help="last address (default 247)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "scan" and not 1 <= args.first <= args.last <= 247:
            raise ConfigError("--from and --to must satisfy 1 <= from <= to <= 247")
        collector = config.collector(args.bus) if args.command == "scan" else None
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "check-config":
        return _check_config(config)
    if args.command == "status":
        return _status(config, args.json)
    if collector is not None:
        return _scan(config, args.bus, args.first, args.last)
    return _run(config)


def _check_config(config: BridgeConfig) -> int:
    buffer = config.buffer
    print(f"config OK: bridge {config.bridge_id}, site {config.site_id}, cloud {config.cloud_url}")
    for collector in config.collectors:
        where = collector.device if collector.transport == "serial" else f"{collector.host}:{collector.port}"
        print(f"  collector {collector.id}: {collector.transport} {where}, {collector.line.label}, "
              f"timeout {collector.request_timeout_ms} ms, key id {collector.load_keyring().current.key_id}")
    print(f"  buffer: up to {buffer.max_rows} result sets ({buffer.days} days every {buffer.interval_s} s), "
          f"thinned past {buffer.thin_after_days} days when full; state in {config.state_dir}")
    return 0


def _status(config: BridgeConfig, as_json: bool) -> int:
    document = read_status(status_path(config.state_dir))
    if document is None:
        print(f"not running: no status in {config.state_dir} (has the bridge run with this config?)")
        return EXIT_NOT_RUNNING
    now_ms = int(time.time() * 1000)
    print(json.dumps(document, indent=1, sort_keys=True) if as_json else format_status(document, now_ms))
    return 0 if is_live(document, now_ms) else EXIT_NOT_RUNNING


def _scan(config: BridgeConfig, bus: str, first: int, last: int) -> int:
    print(f"scanning {bus} addresses {first}..{last} (stop the bridge first if the collector takes one client)")
    try:
        hits = run_scan(config.collector(bus), first, last)
    except LinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for hit in hits:
        print(f"address {hit.address}: {hit.answer}")
    found = [hit.address for hit in hits if hit.counts]
    print(f"found {len(found)}: {' '.join(map(str, found)) or '-'}")
    return 0


def _run(config: BridgeConfig) -> int:
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(config: BridgeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await BridgeService(config).run(stop)


if __name__ == "__main__":
    sys.exit(main())
