"""A meter's register image, driven by its device profile.

The profile says where each entry lives and how it is encoded; this module only knows what each
entry *name* means for the meter model (``READERS``, ``WRITERS``, ``COMMANDS``). A profile naming a
quantity the simulator cannot produce is refused when the image is built, never at the first read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from copy import deepcopy
from datetime import datetime
from decimal import Decimal

from ..codec import Value, decode, encode, fit, floor_to
from ..profiles import Entry, Profile
from .meter import Electrical, Meter

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3

Reader = Callable[[Meter, Electrical], Value]
Writer = Callable[[Meter, Value], bool]
Command = Callable[[Meter, list[Value]], bool]
_FLOORED_UNITS = frozenset({"currency", "kWh", "kvarh"})  # a meter never shows more than it holds
_CLOCK_FIELDS = {
    "clock_year": "year", "clock_month": "month", "clock_day": "day",
    "clock_hour": "hour", "clock_minute": "minute", "clock_second": "second",
}


class SimulatorError(ValueError):
    """The simulator cannot play this profile or configuration."""


def _zero(meter: Meter, now: Electrical) -> Value:
    return 0


def _rate_energy(rate: str) -> Reader:
    return lambda meter, now: meter.energy_kwh(rate)


def _price(rate: str) -> Reader:
    return lambda meter, now: meter.state.prices[rate]


def _clock(field: str) -> Reader:
    return lambda meter, now: int(getattr(meter.state.clock, field))


def _phase(reader: Reader) -> dict[str, Reader]:
    return {suffix: reader for suffix in ("_a", "_b", "_c")}


READERS: dict[str, Reader] = {
    "energy_total": lambda meter, now: meter.energy_kwh(),
    **{f"energy_{rate}": _rate_energy(rate) for rate in ("sharp", "peak", "flat", "valley")},
    "energy_export": _zero, "reactive_energy_import": _zero, "reactive_energy_export": _zero,
    "voltage": lambda meter, now: now.voltage,
    "current": lambda meter, now: now.current,
    "active_power": lambda meter, now: now.power_kw,
    "apparent_power": lambda meter, now: now.apparent_kva,
    "reactive_power": lambda meter, now: now.reactive_kvar,
    "power_factor": lambda meter, now: now.power_factor,
    **{f"voltage{s}": r for s, r in _phase(lambda meter, now: now.voltage).items()},
    **{f"current{s}": r for s, r in _phase(lambda meter, now: now.current).items()},
    **{f"active_power{s}": r for s, r in _phase(lambda meter, now: now.power_kw / meter.phases).items()},
    "active_power_total": lambda meter, now: now.power_kw,
    "reactive_power_total": lambda meter, now: now.reactive_kvar,
    "apparent_power_total": lambda meter, now: now.apparent_kva,
    "power_factor_total": lambda meter, now: now.power_factor,
    "frequency": lambda meter, now: now.frequency,
    "ct_ratio": lambda meter, now: meter.state.ct_ratio,
    "pt_ratio": lambda meter, now: 1,
    "remaining_amount": lambda meter, now: meter.remaining_amount,
    "total_purchased": lambda meter, now: meter.state.total_purchased,
    "purchase_count": lambda meter, now: meter.state.purchase_count,
    "alarm_amount_1": lambda meter, now: meter.state.alarm_amount_1,
    "alarm_amount_2": lambda meter, now: meter.state.alarm_amount_2,
    "hoarding_limit": lambda meter, now: meter.state.hoarding_limit,
    "overload_threshold": lambda meter, now: meter.state.overload_threshold_kw,
    "control_mode": lambda meter, now: int(meter.state.control_mode),
    "relay_state": lambda meter, now: int(meter.relay_open),
    "status_bits": lambda meter, now: int(meter.status),
    **{f"price_{rate}": _price(rate) for rate in ("sharp", "peak", "flat", "valley")},
    **{name: _clock(field) for name, field in _CLOCK_FIELDS.items()},
}


def _setter(attribute: str) -> Writer:
    def write(meter: Meter, value: Value) -> bool:
        setattr(meter.state, attribute, Decimal(value))
        return True

    return write


def _price_setter(rate: str) -> Writer:
    def write(meter: Meter, value: Value) -> bool:
        meter.state.prices[rate] = Decimal(value)
        return True

    return write


WRITERS: dict[str, Writer] = {
    "alarm_amount_1": _setter("alarm_amount_1"),
    "alarm_amount_2": _setter("alarm_amount_2"),
    "hoarding_limit": _setter("hoarding_limit"),
    "overload_threshold": _setter("overload_threshold_kw"),
    "control_mode": lambda meter, value: meter.set_mode(int(value)),
    **{f"price_{rate}": _price_setter(rate) for rate in ("sharp", "peak", "flat", "valley")},
}


def _relay(meter: Meter, fields: list[Value]) -> bool:
    """0001 0001 trips (forced trip); 0001 0000 hands the relay back to prepaid control."""
    enable, trip = fields
    if enable != 1 or trip not in (0, 1):
        return False
    return meter.set_mode(2 if trip else 0)


COMMANDS: dict[str, Command] = {
    "purchase": lambda meter, fields: meter.purchase(Decimal(fields[0]), int(fields[1])),
    "refund": lambda meter, fields: meter.refund(Decimal(fields[0]), int(fields[1])),
    "relay": _relay,
    "control_mode": lambda meter, fields: meter.set_mode(int(fields[0])),
}


class RegisterImage:
    """Reads and writes of one meter's registers, answering as the meter would."""

    def __init__(self, profile: Profile, meter: Meter) -> None:
        self.profile = profile
        self.meter = meter
        self._at: dict[int, Entry] = {a: e for e in profile.entries for a in range(e.address, e.end)}
        self._commands = {(c.address, c.count): c for c in profile.commands.values()}
        self._command_entries = {name for c in profile.commands.values() for name in c.entries}
        _check_playable(profile, self._command_entries)

    @property
    def span(self) -> int:
        """Registers from address 0 to the end of the last entry."""
        return max(entry.end for entry in self.profile.entries)

    def read(self, address: int, count: int) -> list[int] | int:
        """The words at ``address``, or exception 02 if any of them is not a readable entry."""
        entries = [self._at.get(a) for a in range(address, address + count)]
        if any(entry is None or not entry.readable for entry in entries):
            return ILLEGAL_ADDRESS
        now = self.meter.electrical()
        words: list[int] = []
        for offset, entry in enumerate(entries):
            assert entry is not None  # checked above
            if offset == 0 or entry is not entries[offset - 1]:
                rendered = self._render(entry, now)
                words.extend(rendered[address + offset - entry.address :])
        return words[:count]

    def _render(self, entry: Entry, now: Electrical) -> list[int]:
        value = READERS.get(entry.name, _zero)(self.meter, now)  # only reserved_* fall back
        shown = floor_to(entry, value) if entry.unit in _FLOORED_UNITS else fit(entry, value)
        return encode(entry, shown)

    def write(self, address: int, words: list[int]) -> int | None:
        """Apply an FC16/FC06 write; an exception code, or None when the meter accepted it.

        A command must be written whole (exception 03 when the meter refuses it). Other writes must
        cover whole writable entries (else 02) and apply all-or-nothing (03 if any value is refused).
        """
        command = self._commands.get((address, len(words)))
        if command is not None:
            fields = self._decode(address, words)
            return None if COMMANDS[command.name](self.meter, list(fields.values())) else ILLEGAL_VALUE
        entries = self._whole_writable_entries(address, len(words))
        if entries is None:
            return ILLEGAL_ADDRESS
        return self._apply(self._decode(address, words))

    def _whole_writable_entries(self, address: int, count: int) -> list[Entry] | None:
        entries = [self._at.get(a) for a in range(address, address + count)]
        if any(e is None or not e.writable or self._command_only(e) for e in entries):
            return None
        first, last = entries[0], entries[-1]
        if first is None or last is None or first.address != address or last.end != address + count:
            return None  # a write may not cut an entry in half
        return [e for e in entries if e is not None]

    def _command_only(self, entry: Entry) -> bool:
        """A write-only command field (e.g. the purchase amount) is only ever written as its whole command."""
        return entry.name in self._command_entries and not entry.readable

    def _decode(self, address: int, words: list[int]) -> dict[str, Value]:
        values: dict[str, Value] = {}
        offset = 0
        while offset < len(words):
            entry = self._at[address + offset]
            values[entry.name] = decode(entry, words[offset : offset + entry.count])
            offset += entry.count
        return values

    def _apply(self, values: Mapping[str, Value]) -> int | None:
        saved = deepcopy(self.meter.state)
        clock_fields = {_CLOCK_FIELDS[n]: int(v) for n, v in values.items() if n in _CLOCK_FIELDS}
        accepted = all(WRITERS[n](self.meter, v) for n, v in values.items() if n not in _CLOCK_FIELDS)
        if accepted and clock_fields:
            accepted = _set_clock(self.meter, clock_fields)
        if not accepted:
            self.meter.state = saved
            return ILLEGAL_VALUE
        return None


def _set_clock(meter: Meter, fields: dict[str, int]) -> bool:
    clock = meter.state.clock
    parts = {name: getattr(clock, name) for name in _CLOCK_FIELDS.values()} | fields
    try:
        moment = datetime(parts["year"], parts["month"], parts["day"], parts["hour"], parts["minute"], parts["second"])
    except ValueError:
        return False
    meter.set_clock(moment)
    return True


def _check_playable(profile: Profile, command_entries: set[str]) -> None:
    for command in profile.commands:
        if command not in COMMANDS:
            raise SimulatorError(f"{profile.model}: the simulator has no behaviour for command {command!r}")
    for entry in profile.entries:
        if entry.readable and entry.name not in READERS and not entry.name.startswith("reserved_"):
            raise SimulatorError(f"{profile.model}: the simulator cannot produce {entry.name!r}")
        writable_alone = entry.name in WRITERS or entry.name in _CLOCK_FIELDS
        if entry.writable and entry.name not in command_entries and not writable_alone:
            raise SimulatorError(f"{profile.model}: the simulator cannot accept writes to {entry.name!r}")
