"""Site configuration for the simulator: a TOML file of buses and the meters on them.

Numbers with a fraction are read as Decimal (``tomllib`` ``parse_float``), so money and energy in
the file never pass through float. Every mistake raises ConfigError naming the exact key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..profiles import ProfileError, load_profile
from ..rtu import LineSettings
from .bus import MAX_METERS_PER_BUS, TRANSPORTS, Fault
from .registers import SimulatorError
from .tou import DEFAULT_TOU, RATES, TouError, TouPlan

_SITE_KEYS = {"name", "speed", "seed", "clock", "tou", "state_save_seconds", "host"}
_BUS_KEYS = {"name", "transport", "host", "port", "link", "baud", "parity", "stop_bits", "turnaround_ms",
             "emulate_wire", "meters"}
_METER_KEYS = {"address", "count", "model", "serial", "remaining_amount", "total_purchased", "purchase_count",
               "alarm_amount_1", "alarm_amount_2", "hoarding_limit", "overload_threshold", "control_mode",
               "load_kw", "prices", "energy_kwh", "ct_ratio", "tou", "fault"}
_FAULT_KEYS = {"dead", "slow_ms", "drop_share", "corrupt_share"}


class ConfigError(ValueError):
    """The site configuration is wrong; the message names the key."""


@dataclass(frozen=True)
class MeterConfig:
    address: int
    model: str
    serial: str
    remaining_amount: Decimal = Decimal("0.00")
    total_purchased: Decimal = Decimal("0.00")
    purchase_count: int = 0
    alarm_amount_1: Decimal = Decimal("50.00")
    alarm_amount_2: Decimal = Decimal("20.00")
    hoarding_limit: Decimal = Decimal("5000.00")
    overload_threshold: Decimal = Decimal(0)
    control_mode: int = 0
    load_kw: Decimal = Decimal(0)
    prices: Mapping[str, Decimal] = field(default_factory=dict)
    energy_kwh: Mapping[str, Decimal] = field(default_factory=dict)
    ct_ratio: int = 1
    tou: TouPlan | None = None
    fault: Fault = field(default_factory=Fault)


@dataclass(frozen=True)
class BusConfig:
    name: str
    transport: str
    line: LineSettings
    meters: tuple[MeterConfig, ...]
    host: str = "127.0.0.1"
    port: int = 0
    link: Path | None = None
    emulate_wire: bool = True


@dataclass(frozen=True)
class SiteConfig:
    name: str
    buses: tuple[BusConfig, ...]
    speed: float = 1.0
    seed: int = 0
    clock: datetime | None = None
    tou: TouPlan = DEFAULT_TOU
    state_save_seconds: float = 10.0


def load_config(path: Path) -> SiteConfig:
    """Read and validate a site TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data)


def parse_config(data: Mapping[str, Any]) -> SiteConfig:
    _keys(data, {"site", "buses"}, "top level")
    site = data.get("site", {})
    _keys(site, _SITE_KEYS, "site")
    raw_buses = data.get("buses")
    if not isinstance(raw_buses, list) or not raw_buses:
        raise ConfigError("buses: give at least one [[buses]] table")
    host = _str(site.get("host", "127.0.0.1"), "site.host")
    buses = tuple(_bus(raw, f"buses[{i}]", host) for i, raw in enumerate(raw_buses))
    _check_unique([b.name for b in buses], "bus name")
    _check_unique([(b.host, b.port) for b in buses if b.transport != "serial" and b.port], "bus host:port")
    clock = site.get("clock")
    if clock is not None and not isinstance(clock, datetime):
        raise ConfigError("site.clock: must be a TOML local date-time, e.g. 2026-03-01T08:00:00")
    return SiteConfig(
        name=_str(site.get("name", "site"), "site.name"),
        buses=buses,
        speed=float(_number(site.get("speed", 1), "site.speed", low=Decimal("0.001"), high=Decimal(100000))),
        seed=_int(site.get("seed", 0), "site.seed", 0, 2**32),
        clock=clock.replace(tzinfo=None) if clock else None,
        tou=_tou(site["tou"], "site.tou") if "tou" in site else DEFAULT_TOU,
        state_save_seconds=float(_number(site.get("state_save_seconds", 10), "site.state_save_seconds",
                                         low=Decimal("0.1"))),
    )


def _bus(raw: Any, where: str, default_host: str) -> BusConfig:
    _keys(raw, _BUS_KEYS, where)
    name = _str(raw.get("name"), f"{where}.name")
    where = f"bus {name!r}"
    transport = raw.get("transport")
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}.transport: must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    try:
        line = LineSettings(
            baud=_int(raw.get("baud", 9600), f"{where}.baud", 1200, 38400),
            parity=_str(raw.get("parity", "N"), f"{where}.parity"),
            stop_bits=_int(raw.get("stop_bits", 1), f"{where}.stop_bits", 1, 2),
            turnaround_ms=float(_number(raw.get("turnaround_ms", 20), f"{where}.turnaround_ms", low=Decimal(0))),
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    meters = _meters(raw.get("meters"), where, transport)
    link = raw.get("link")
    return BusConfig(
        name=name, transport=transport, line=line, meters=meters,
        host=_str(raw.get("host", default_host), f"{where}.host"),
        port=_int(raw.get("port", 0), f"{where}.port", 0, 65535),
        link=Path(_str(link, f"{where}.link")) if link is not None else None,
        emulate_wire=_bool(raw.get("emulate_wire", True), f"{where}.emulate_wire"),
    )


def _meters(raw: Any, where: str, transport: str) -> tuple[MeterConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}.meters: give at least one [[buses.meters]] table")
    meters = [m for i, item in enumerate(raw) for m in _meter_group(item, f"{where}.meters[{i}]", transport)]
    _check_unique([m.address for m in meters], f"{where}: meter address")
    if len(meters) > MAX_METERS_PER_BUS:
        raise ConfigError(f"{where}: {len(meters)} meters; at most {MAX_METERS_PER_BUS} on one bus")
    return tuple(meters)


def _meter_group(raw: Any, where: str, transport: str) -> list[MeterConfig]:
    """One [[buses.meters]] table; with ``count`` it stands for that many meters at consecutive addresses."""
    _keys(raw, _METER_KEYS, where)
    first = _int(raw.get("address"), f"{where}.address", 1, 247)
    count = _int(raw.get("count", 1), f"{where}.count", 1, MAX_METERS_PER_BUS)
    if first + count - 1 > 247:
        raise ConfigError(f"{where}: addresses {first}..{first + count - 1} run past 247")
    model = _str(raw.get("model"), f"{where}.model")
    try:
        load_profile(model)
    except ProfileError as exc:
        raise ConfigError(f"{where}.model: {exc}") from exc
    fault = _fault(raw.get("fault", {}), f"{where}.fault", transport)
    serial = _str(raw.get("serial", f"{model}-{{address}}"), f"{where}.serial")
    common = _meter_settings(raw, where)
    return [
        MeterConfig(address=a, model=model, serial=serial.replace("{address}", f"{a:03d}"), fault=fault, **common)
        for a in range(first, first + count)
    ]


def _meter_settings(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    money = ("remaining_amount", "total_purchased", "alarm_amount_1", "alarm_amount_2", "hoarding_limit")
    settings: dict[str, Any] = {k: _number(raw[k], f"{where}.{k}") for k in money if k in raw}
    for key, low in (("overload_threshold", Decimal(0)), ("load_kw", Decimal(0))):
        if key in raw:
            settings[key] = _number(raw[key], f"{where}.{key}", low=low)
    if "purchase_count" in raw:
        settings["purchase_count"] = _int(raw["purchase_count"], f"{where}.purchase_count", 0, 0xFFFF)
    if "control_mode" in raw:
        settings["control_mode"] = _int(raw["control_mode"], f"{where}.control_mode", 0, 2)
    if "ct_ratio" in raw:
        settings["ct_ratio"] = _int(raw["ct_ratio"], f"{where}.ct_ratio", 1, 0xFFFF)
    for key in ("prices", "energy_kwh"):
        if key in raw:
            settings[key] = _per_rate(raw[key], f"{where}.{key}")
    if "tou" in raw:
        settings["tou"] = _tou(raw["tou"], f"{where}.tou")
    return settings


def _fault(raw: Any, where: str, transport: str) -> Fault:
    _keys(raw, _FAULT_KEYS, where)
    if raw.get("corrupt_share") and transport == "tcp":
        raise ConfigError(f"{where}.corrupt_share: CRC corruption needs an RTU transport (rtutcp or serial)")
    try:
        return Fault(
            dead=_bool(raw.get("dead", False), f"{where}.dead"),
            slow_ms=float(_number(raw.get("slow_ms", 0), f"{where}.slow_ms", low=Decimal(0))),
            drop_share=float(_number(raw.get("drop_share", 0), f"{where}.drop_share", Decimal(0), Decimal(1))),
            corrupt_share=float(_number(raw.get("corrupt_share", 0), f"{where}.corrupt_share", Decimal(0),
                                        Decimal(1))),
        )
    except SimulatorError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _per_rate(raw: Any, where: str) -> dict[str, Decimal]:
    _keys(raw, set(RATES), where)
    return {rate: _number(value, f"{where}.{rate}", low=Decimal(0)) for rate, value in raw.items()}


def _tou(raw: Any, where: str) -> TouPlan:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table of \"HH:MM\" = rate")
    try:
        return TouPlan.from_mapping(raw)
    except TouError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


# -- scalar checks ----------------------------------------------------------------------------------


def _keys(raw: Any, allowed: set[str], where: str) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(raw) - allowed
    if unknown:
        listed = ", ".join(sorted(allowed))
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {listed}")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: must be a non-empty string")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: must be a whole number {low}..{high}, got {value!r}")
    return value


def _number(value: Any, where: str, low: Decimal | None = None, high: Decimal | None = None) -> Decimal:
    """A Decimal from a TOML number or a string like "12.50"."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ConfigError(f"{where}: must be a number, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ConfigError(f"{where}: {value!r} is not a number") from exc
    if not number.is_finite() or (low is not None and number < low) or (high is not None and number > high):
        raise ConfigError(f"{where}: {value!r} is out of range")
    return number


def _check_unique(values: list[Any], what: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{what} {value!r} is used twice")
        seen.add(value)
