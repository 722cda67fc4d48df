"""Device profiles: a meter model's register map as data, validated when loaded.

A profile (one JSON file per model under ``profiles/``) lists every register entry the software
knows, each marked *confirmed* (maker's manual) or *assumed* (our stand-in), plus the commands the
model accepts and the entries a reading cycle reads by default. Replacing an assumed map with a
confirmed one is a data change: no code here knows any address.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

REGISTER_TYPES: Mapping[str, int] = {"UINT16": 1, "INT16": 1, "UINT32": 2, "INT32": 2}
KNOWN_SCALES = frozenset({"1", "0.1", "0.01", "0.001", "0.0001"})
KNOWN_UNITS = frozenset(
    {"", "kWh", "kvarh", "V", "A", "kW", "kvar", "kVA", "Hz", "currency", "currency/kWh"}
    | {"year", "month", "day", "h", "min", "s"}
)
ACCESS_MODES = frozenset({"R", "RW", "W"})
STATUSES = frozenset({"confirmed", "assumed"})
KINDS = frozenset({"prepaid", "energy"})
MAX_ADDRESS = 0xFFFF

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENTRY_KEYS = frozenset(
    {"name", "address", "count", "type", "scale", "unit", "access", "status", "description", "values", "bits"}
)
_PROFILE_KEYS = frozenset(
    {"model", "kind", "phases", "description", "entries", "commands", "read_plan", "notes"}
)
_COMMAND_KEYS = frozenset({"entries", "confirms", "description"})


class ProfileError(ValueError):
    """A profile file is missing, unreadable or inconsistent; the message says where and why."""


@dataclass(frozen=True)
class Entry:
    """One register entry: where it lives, how to decode it and whether we know it is right."""

    name: str
    address: int
    count: int
    type: str
    scale: Decimal
    unit: str
    access: str
    status: str
    description: str
    values: Mapping[int, str] = field(default_factory=dict)
    bits: Mapping[int, str] = field(default_factory=dict)

    @property
    def end(self) -> int:
        """First address after this entry."""
        return self.address + self.count

    @property
    def readable(self) -> bool:
        return "R" in self.access

    @property
    def writable(self) -> bool:
        return "W" in self.access

    @property
    def signed(self) -> bool:
        return self.type.startswith("INT")


@dataclass(frozen=True)
class Command:
    """A write-only command: contiguous entries written together in one FC16 request."""

    name: str
    entries: tuple[str, ...]
    address: int
    count: int
    description: str
    confirms: str | None = None  # the readable entry that proves the command landed


@dataclass(frozen=True)
class Profile:
    """A validated register map for one meter model."""

    model: str
    kind: str
    phases: int
    description: str
    entries: tuple[Entry, ...]
    commands: Mapping[str, Command]
    read_plan: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def prepaid(self) -> bool:
        return self.kind == "prepaid"

    def entry(self, name: str) -> Entry:
        """The entry called ``name``; ProfileError if the model has none."""
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ProfileError(f"{self.model}: no entry named {name!r}")

    def has_entry(self, name: str) -> bool:
        return any(entry.name == name for entry in self.entries)

    def entry_at(self, address: int) -> Entry | None:
        """The entry covering ``address``, if any."""
        for entry in self.entries:
            if entry.address <= address < entry.end:
                return entry
        return None


# ----------------------------------------------------------------------------------------------
# Loading


def _profile_dir() -> Path:
    return Path(str(resources.files("gateway_bridge") / "profiles"))


@cache
def _index() -> dict[str, Path]:
    """Model name (upper case) and file stem → file, built once from the packaged JSON files."""
    index: dict[str, Path] = {}
    for path in sorted(_profile_dir().glob("*.json")):
        index[path.stem.upper()] = path
        index[str(_read_json(path).get("model", path.stem)).upper()] = path
    return index


def available_models() -> list[str]:
    """Model names of every packaged profile, sorted."""
    return sorted(load_profile_file(path).model for path in set(_index().values()))


def load_profile(model: str) -> Profile:
    """The packaged profile for ``model`` (its model name or file stem, any case)."""
    path = _index().get(model.strip().upper())
    if path is None:
        raise ProfileError(f"unknown meter model {model!r}; known: {', '.join(available_models())}")
    return load_profile_file(path)


@cache
def load_profile_file(path: Path) -> Profile:
    """Load and validate one profile file (cached: profiles are immutable)."""
    return parse_profile(_read_json(path), source=path.name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path.name}: cannot read profile: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path.name}: a profile must be a JSON object")
    return data


# ----------------------------------------------------------------------------------------------
# Validation


def parse_profile(data: Mapping[str, Any], source: str = "<profile>") -> Profile:
    """Validate raw profile data; every problem raises ProfileError naming ``source`` and the field."""
    _check_keys(data, _PROFILE_KEYS, {"model", "kind", "description", "entries"}, source)
    model = _text(data["model"], f"{source}: model")
    where = f"{source} ({model})"
    kind = data["kind"]
    if kind not in KINDS:
        raise ProfileError(f"{where}: kind must be one of {sorted(KINDS)}, got {kind!r}")
    phases = data.get("phases", 1)
    if phases not in (1, 3):
        raise ProfileError(f"{where}: phases must be 1 or 3, got {phases!r}")
    raw_entries = data["entries"]
    if not isinstance(raw_entries, list) or not raw_entries:
        raise ProfileError(f"{where}: entries must be a non-empty list")
    entries = tuple(sorted((_parse_entry(raw, where) for raw in raw_entries), key=lambda e: e.address))
    _check_unique_and_disjoint(entries, where)
    by_name = {entry.name: entry for entry in entries}
    commands = _parse_commands(data.get("commands", {}), by_name, where)
    read_plan = _parse_read_plan(data.get("read_plan", []), by_name, where)
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise ProfileError(f"{where}: notes must be a list of strings")
    description = _text(data["description"], f"{where}: description")
    return Profile(model, kind, phases, description, entries, commands, read_plan, tuple(notes))


def _check_keys(raw: Mapping[str, Any], allowed: frozenset[str], required: set[str], where: str) -> None:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: expected an object, got {type(raw).__name__}")
    unknown = set(raw) - allowed
    if unknown:
        raise ProfileError(f"{where}: unknown field(s) {sorted(unknown)} (a typo?)")
    missing = required - set(raw)
    if missing:
        raise ProfileError(f"{where}: missing field(s) {sorted(missing)}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: must be a non-empty string")
    return value


def _parse_entry(raw: Mapping[str, Any], where: str) -> Entry:
    required = _ENTRY_KEYS - {"values", "bits"}
    name = raw.get("name") if isinstance(raw, Mapping) else None
    here = f"{where}: entry {name!r}"
    _check_keys(raw, _ENTRY_KEYS, set(required), here)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ProfileError(f"{here}: name must be lower_snake_case")
    address, count = _parse_address(raw["address"], here), raw["count"]
    type_ = raw["type"]
    if type_ not in REGISTER_TYPES:
        raise ProfileError(f"{here}: type must be one of {sorted(REGISTER_TYPES)}, got {type_!r}")
    if count != REGISTER_TYPES[type_]:
        raise ProfileError(f"{here}: type {type_} takes {REGISTER_TYPES[type_]} register(s), count is {count!r}")
    if address + count > MAX_ADDRESS + 1:
        raise ProfileError(f"{here}: runs past the last Modbus address 0xFFFF")
    _check_member(raw["scale"], KNOWN_SCALES, "scale", here)
    _check_member(raw["unit"], KNOWN_UNITS, "unit", here)
    _check_member(raw["access"], ACCESS_MODES, "access", here)
    _check_member(raw["status"], STATUSES, "status", here)
    return Entry(
        name=name, address=address, count=count, type=type_, scale=Decimal(raw["scale"]),
        unit=raw["unit"], access=raw["access"], status=raw["status"],
        description=_text(raw["description"], f"{here}: description"),
        values=_parse_labels(raw.get("values", {}), 0xFFFF, f"{here}: values"),
        bits=_parse_labels(raw.get("bits", {}), 15, f"{here}: bits"),
    )


def _parse_address(raw: Any, where: str) -> int:
    """Addresses are written as hex strings ("0x0100", as in the manuals) or plain integers."""
    try:
        address = int(raw, 16) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise ProfileError(f"{where}: address {raw!r} is not a hex number") from exc
    if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= MAX_ADDRESS:
        raise ProfileError(f"{where}: address must be 0..0xFFFF, got {raw!r}")
    return address


def _check_member(value: Any, allowed: frozenset[str], what: str, where: str) -> None:
    if value not in allowed:
        raise ProfileError(f"{where}: {what} {value!r} is not one of {sorted(allowed)}")


def _parse_labels(raw: Any, highest: int, where: str) -> dict[int, str]:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: must be an object of number → label")
    labels: dict[int, str] = {}
    for key, label in raw.items():
        if not str(key).isdigit() or int(key) > highest or not isinstance(label, str):
            raise ProfileError(f"{where}: bad item {key!r}: {label!r}")
        labels[int(key)] = label
    return labels


def _check_unique_and_disjoint(entries: tuple[Entry, ...], where: str) -> None:
    seen: set[str] = set()
    for previous, entry in zip((None, *entries), entries, strict=False):
        if entry.name in seen:
            raise ProfileError(f"{where}: entry name {entry.name!r} is used twice")
        seen.add(entry.name)
        if previous is not None and entry.address < previous.end:
            raise ProfileError(
                f"{where}: entry {entry.name!r} at 0x{entry.address:04X} overlaps {previous.name!r} "
                f"(0x{previous.address:04X}..0x{previous.end - 1:04X})"
            )


def _parse_commands(raw: Any, by_name: Mapping[str, Entry], where: str) -> dict[str, Command]:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: commands must be an object")
    return {name: _parse_command(name, spec, by_name, f"{where}: command {name!r}") for name, spec in raw.items()}


def _parse_command(name: str, raw: Any, by_name: Mapping[str, Entry], here: str) -> Command:
    _check_keys(raw, _COMMAND_KEYS, {"entries", "description"}, here)
    names = raw["entries"]
    if not isinstance(names, list) or not names or not all(n in by_name for n in names):
        raise ProfileError(f"{here}: entries must name existing entries, got {names!r}")
    parts = [by_name[n] for n in names]
    for before, after in itertools.pairwise(parts):
        if after.address != before.end:
            raise ProfileError(f"{here}: entries must be contiguous and in address order")
    if not all(part.writable for part in parts):
        raise ProfileError(f"{here}: every entry of a command must be writable")
    confirms = raw.get("confirms")
    if confirms is not None and (confirms not in by_name or not by_name[confirms].readable):
        raise ProfileError(f"{here}: confirms must name a readable entry, got {confirms!r}")
    count = parts[-1].end - parts[0].address
    description = _text(raw["description"], f"{here}: description")
    return Command(name, tuple(names), parts[0].address, count, description, confirms)


def _parse_read_plan(raw: Any, by_name: Mapping[str, Entry], where: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise ProfileError(f"{where}: read_plan must be a list of entry names")
    for name in raw:
        if name not in by_name or not by_name[name].readable:
            raise ProfileError(f"{where}: read_plan names {name!r}, which is not a readable entry")
    return tuple(raw)
