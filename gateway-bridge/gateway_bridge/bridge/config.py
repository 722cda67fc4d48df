"""The bridge's TOML configuration, validated up front so a mistake names its key before anything starts.

Paths are relative to the config file's folder. Secrets (credential file, key rings) must not be readable
by group or others: the bridge refuses to start rather than run with a leaked key.
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..protocol import KeyRing, ProtocolError
from ..protocol.keys import CHANNEL_ID_RE
from ..rtu import LineSettings

ID_RE = re.compile(r"[A-Za-z0-9._:@/#-]{1,64}")  # what the protocol accepts for bridge and site ids
TRANSPORTS = ("tcp", "rtutcp", "serial")
MAX_COLLECTORS = 64  # a Hello lists at most 64 buses
_TOP_KEYS = {"cloud_url", "bridge_id", "credential", "credential_file", "site_id", "state_dir", "heartbeat_s",
             "planned_reconnect_s", "reconnect_max_s", "log_level", "buffer", "collectors"}
_BUFFER_KEYS = {"days", "interval_s", "max_rows", "thin_after_days"}
_COLLECTOR_KEYS = {"id", "transport", "host", "port", "device", "baud", "parity", "stop_bits", "turnaround_ms",
                   "request_timeout_ms", "keyring"}
_LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """The configuration is wrong; the message names the key."""


@dataclass(frozen=True)
class CollectorConfig:
    id: str
    transport: str
    line: LineSettings
    request_timeout_ms: int
    keyring_path: Path
    host: str | None = None
    port: int | None = None
    device: str | None = None

    def load_keyring(self) -> KeyRing:
        return _read_keyring(self.keyring_path, f"collectors[{self.id}].keyring")


@dataclass(frozen=True)
class BufferConfig:
    days: int
    interval_s: int
    max_rows: int
    thin_after_days: int


@dataclass(frozen=True)
class BridgeConfig:
    cloud_url: str
    bridge_id: str
    site_id: str
    credential: str
    state_dir: Path
    heartbeat_s: int
    planned_reconnect_s: int
    reconnect_max_s: int
    log_level: str
    buffer: BufferConfig
    collectors: tuple[CollectorConfig, ...]

    def collector(self, collector_id: str) -> CollectorConfig:
        for collector in self.collectors:
            if collector.id == collector_id:
                return collector
        raise ConfigError(f"no collector {collector_id!r} (configured: {', '.join(self.collector_ids)})")

    @property
    def collector_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.collectors)


def load_config(path: Path) -> BridgeConfig:
    """Read and validate ``path``; ConfigError on any mistake (also for unreadable files)."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path.resolve().parent)


def parse_config(data: Mapping[str, Any], base: Path) -> BridgeConfig:
    _keys(data, _TOP_KEYS, "config")
    collectors = _collectors(data.get("collectors"), base)
    return BridgeConfig(
        cloud_url=_url(data.get("cloud_url")),
        bridge_id=_ident(data.get("bridge_id"), "bridge_id"),
        site_id=_ident(data.get("site_id"), "site_id"),
        credential=_credential(data, base),
        state_dir=_path(data.get("state_dir"), "state_dir", base),
        heartbeat_s=_int(data.get("heartbeat_s", 300), "heartbeat_s", 1, 599),  # API Gateway idles out at 600 s
        planned_reconnect_s=_int(data.get("planned_reconnect_s", 6600), "planned_reconnect_s", 10, 7199),
        reconnect_max_s=_int(data.get("reconnect_max_s", 60), "reconnect_max_s", 1, 600),
        log_level=_choice(data.get("log_level", "info"), "log_level", _LOG_LEVELS),
        buffer=_buffer(data.get("buffer", {}), len(collectors)),
        collectors=collectors,
    )


def _buffer(raw: Any, collectors: int) -> BufferConfig:
    if not isinstance(raw, dict):
        raise ConfigError("buffer must be a table")
    _keys(raw, _BUFFER_KEYS, "buffer")
    days = _int(raw.get("days", 30), "buffer.days", 30, 3650)
    interval_s = _int(raw.get("interval_s", 60), "buffer.interval_s", 1, 86_400)
    needed = days * 86_400 // interval_s * max(collectors, 1)
    max_rows = _int(raw.get("max_rows", needed + needed // 10), "buffer.max_rows", 1, 10**9)
    if max_rows < needed:
        raise ConfigError(f"buffer.max_rows = {max_rows} holds less than buffer.days = {days} of results "
                          f"every {interval_s} s from {collectors} collector(s); needs at least {needed}")
    thin_after_days = _int(raw.get("thin_after_days", 7), "buffer.thin_after_days", 1, days)
    return BufferConfig(days, interval_s, max_rows, thin_after_days)


def _collectors(raw: Any, base: Path) -> tuple[CollectorConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("collectors: at least one [[collectors]] table is required")
    if len(raw) > MAX_COLLECTORS:
        raise ConfigError(f"collectors: at most {MAX_COLLECTORS}")
    collectors = tuple(_collector(item, i, base) for i, item in enumerate(raw))
    ids = [c.id for c in collectors]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"collectors: id {duplicates[0]!r} appears more than once")
    return collectors


def _collector(raw: Any, index: int, base: Path) -> CollectorConfig:
    where = f"collectors[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    _keys(raw, _COLLECTOR_KEYS, where)
    collector_id = raw.get("id")
    if not isinstance(collector_id, str) or not CHANNEL_ID_RE.fullmatch(collector_id):
        raise ConfigError(f"{where}.id must be 1-64 letters, digits or ._:@/-")
    transport = _choice(raw.get("transport"), f"{where}.transport", TRANSPORTS)
    keyring_path = _path(raw.get("keyring"), f"{where}.keyring", base)
    _read_keyring(keyring_path, f"{where}.keyring")
    return CollectorConfig(
        id=collector_id, transport=transport, line=_line(raw, where),
        request_timeout_ms=_int(raw.get("request_timeout_ms", 500), f"{where}.request_timeout_ms", 20, 60_000),
        keyring_path=keyring_path, **_endpoint(raw, transport, where),
    )


def _endpoint(raw: Mapping[str, Any], transport: str, where: str) -> dict[str, Any]:
    if transport == "serial":
        if "host" in raw or "port" in raw:
            raise ConfigError(f"{where}: a serial collector takes device, not host/port")
        device = raw.get("device")
        if not isinstance(device, str) or not device:
            raise ConfigError(f"{where}.device is required for transport serial (e.g. /dev/ttyUSB0)")
        return {"device": device}
    if "device" in raw:
        raise ConfigError(f"{where}: device is only for transport serial")
    host = raw.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{where}.host is required for transport {transport}")
    return {"host": host, "port": _int(raw.get("port"), f"{where}.port", 1, 65535)}


def _line(raw: Mapping[str, Any], where: str) -> LineSettings:
    turnaround = raw.get("turnaround_ms", 0)
    if isinstance(turnaround, bool) or not isinstance(turnaround, int | float):
        raise ConfigError(f"{where}.turnaround_ms must be a number of milliseconds")
    try:
        return LineSettings(
            baud=_int(raw.get("baud", 9600), f"{where}.baud", 1, 10**6),
            parity=_choice(raw.get("parity", "N"), f"{where}.parity", ("N", "E")),
            stop_bits=_int(raw.get("stop_bits", 1), f"{where}.stop_bits", 1, 2),
            turnaround_ms=float(turnaround),
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _credential(data: Mapping[str, Any], base: Path) -> str:
    if ("credential" in data) == ("credential_file" in data):
        raise ConfigError("give exactly one of credential or credential_file")
    if "credential" in data:
        value = data["credential"]
    else:
        path = _path(data["credential_file"], "credential_file", base)
        value = _read_secret(path, "credential_file").strip()
    if not isinstance(value, str) or not re.fullmatch(r"[\x21-\x7e]{8,512}", value):
        raise ConfigError("credential must be 8-512 printable characters without spaces")
    return value


def _read_keyring(path: Path, where: str) -> KeyRing:
    text = _read_secret(path, where)
    try:
        return KeyRing.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError, ProtocolError) as exc:
        raise ConfigError(f"{where}: {path} is not a key ring (KeyRing.to_dict() JSON): {exc}") from None


def _read_secret(path: Path, where: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{where}: {path} is a secret but readable by others (chmod 600 {path})")
    return text


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError("cloud_url is required (ws://host/path or wss://host/path)")
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"cloud_url must be a ws:// or wss:// URL with a host, got {value!r}")
    return value


def _ident(value: Any, where: str) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise ConfigError(f"{where} is required: 1-64 letters, digits or ._:@/#-")
    return value


def _path(value: Any, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} is required (a path)")
    return base / Path(value).expanduser()


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where} must be an integer {low}..{high}, got {value!r}")
    return value


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
