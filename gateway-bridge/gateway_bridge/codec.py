"""Pure register codec: 16-bit register words ↔ typed, scaled values, and read planning.

Scaled quantities are ``Decimal`` (never float: they are money and energy); entries with scale 1
(counts, modes, bit fields) are plain ``int``. 32-bit values span two registers, high word first,
each word big-endian, as on the meters.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from .profiles import REGISTER_TYPES, Entry, Profile

Value = int | Decimal

MAX_READ_REGISTERS = 125  # FC03 limit
MAX_WRITE_REGISTERS = 123  # FC16 limit
# Bridging up to 10 unrequested registers (20 bytes on the wire) is always cheaper than a second
# transaction, which costs an 8-byte request, a 5-byte response header, two 3.5-character gaps
# and the meter's turnaround on top.
DEFAULT_MAX_GAP = 10


class CodecError(ValueError):
    """A value does not fit its entry, or words do not match its type."""


def raw_range(type_: str) -> tuple[int, int]:
    """Smallest and largest raw integer a register type holds."""
    bits = 16 * REGISTER_TYPES[type_]
    if type_.startswith("INT"):
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def words_to_raw(words: Sequence[int], type_: str) -> int:
    """Combine register words (high word first) into the raw integer of ``type_``."""
    count = REGISTER_TYPES[type_]
    if len(words) != count:
        raise CodecError(f"{type_} needs {count} register(s), got {len(words)}")
    raw = 0
    for word in words:
        if not 0 <= word <= 0xFFFF:
            raise CodecError(f"register word {word!r} is outside 0..0xFFFF")
        raw = (raw << 16) | word
    if type_.startswith("INT") and raw >= 1 << (16 * count - 1):
        raw -= 1 << (16 * count)
    return raw


def raw_to_words(raw: int, type_: str) -> list[int]:
    """Split a raw integer of ``type_`` into register words, high word first."""
    low, high = raw_range(type_)
    if not low <= raw <= high:
        raise CodecError(f"{raw} does not fit {type_} ({low}..{high})")
    count = REGISTER_TYPES[type_]
    unsigned = raw & ((1 << (16 * count)) - 1)
    return [(unsigned >> (16 * (count - 1 - i))) & 0xFFFF for i in range(count)]


def decode(entry: Entry, words: Sequence[int]) -> Value:
    """The entry's value from its register words: Decimal when scaled, int when scale is 1."""
    raw = words_to_raw(words, entry.type)
    if entry.scale == 1:
        return raw
    return Decimal(raw).scaleb(_exponent(entry))


def encode(entry: Entry, value: Value) -> list[int]:
    """Register words for ``value``; it must be an exact multiple of the scale and in range."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise CodecError(f"{entry.name}: value must be int or Decimal, got {type(value).__name__}")
    raw = Decimal(value) / entry.scale
    if raw != raw.to_integral_value():
        raise CodecError(f"{entry.name}: {value} is not a multiple of its scale {entry.scale}")
    low, high = raw_range(entry.type)
    if not low <= raw <= high:
        raise CodecError(
            f"{entry.name}: {value} is outside {low * entry.scale}..{high * entry.scale} {entry.unit}".rstrip()
        )
    return raw_to_words(int(raw), entry.type)


def fit(entry: Entry, value: Value, rounding: str = ROUND_HALF_EVEN) -> Value:
    """``value`` rounded to the entry's scale and clamped to its range, ready for ``encode``.

    For a measurement display, as a meter does; money and energy use ``ROUND_FLOOR`` so a meter never
    shows more than it holds.
    """
    low, high = raw_range(entry.type)
    raw = (Decimal(value) / entry.scale).to_integral_value(rounding=rounding)
    raw = min(max(raw, Decimal(low)), Decimal(high))
    if entry.scale == 1:
        return int(raw)
    return raw.scaleb(_exponent(entry))


def _exponent(entry: Entry) -> int:
    """Power of ten of the entry's scale (-2 for 0.01): keeps trailing zeros, so 5 reads "0.05"."""
    return int(entry.scale.as_tuple().exponent)


def floor_to(entry: Entry, value: Value) -> Value:
    """``fit`` rounding toward minus infinity (money and energy registers)."""
    return fit(entry, value, ROUND_FLOOR)


# ----------------------------------------------------------------------------------------------
# Several entries at once


def decode_block(profile: Profile, address: int, words: Sequence[int]) -> dict[str, Value]:
    """Every readable entry lying wholly inside the block of ``words`` read from ``address``."""
    end = address + len(words)
    return {
        entry.name: decode(entry, words[entry.address - address : entry.end - address])
        for entry in profile.entries
        if entry.readable and address <= entry.address and entry.end <= end
    }


def encode_entries(profile: Profile, values: Mapping[str, Value]) -> tuple[int, list[int]]:
    """(address, words) for one FC16 write of ``values``; the entries must be contiguous."""
    if not values:
        raise CodecError("nothing to encode")
    entries = sorted((profile.entry(name) for name in values), key=lambda e: e.address)
    for before, after in itertools.pairwise(entries):
        if after.address != before.end:
            raise CodecError(f"{before.name} and {after.name} are not contiguous; write them separately")
    for entry in entries:
        if not entry.writable:
            raise CodecError(f"{entry.name} is read-only")
    words = [word for entry in entries for word in encode(entry, values[entry.name])]
    if len(words) > MAX_WRITE_REGISTERS:
        raise CodecError(f"{len(words)} registers exceed one FC16 write ({MAX_WRITE_REGISTERS})")
    return entries[0].address, words


def encode_command(profile: Profile, command: str, values: Mapping[str, Value]) -> tuple[int, list[int]]:
    """(address, words) for a profile command; every field of the command must be given."""
    spec = profile.commands.get(command)
    if spec is None:
        raise CodecError(f"{profile.model} has no command {command!r}")
    if set(values) != set(spec.entries):
        raise CodecError(f"command {command!r} takes exactly {list(spec.entries)}, got {sorted(values)}")
    return encode_entries(profile, values)


# ----------------------------------------------------------------------------------------------
# Read planning


@dataclass(frozen=True)
class ReadBlock:
    """One FC03 read: ``count`` registers from ``address``, carrying the requested ``entries``."""

    address: int
    count: int
    entries: tuple[str, ...]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(
    profile: Profile,
    entry_names: Iterable[str] | None = None,
    max_block: int = MAX_READ_REGISTERS,
    max_gap: int = DEFAULT_MAX_GAP,
) -> list[ReadBlock]:
    """The fewest contiguous FC03 blocks that read ``entry_names`` (default: the profile's read plan).

    Two entries share a block when the registers between them number at most ``max_gap`` and every
    one of them belongs to a readable entry of the profile: an address the profile does not define
    may answer exception 02 on a real meter, so a block never spans one. Blocks stay within
    ``max_block`` registers. Greedy left-to-right extension gives the fewest blocks because both
    rules only get harder to meet as a block grows.
    """
    if not 1 <= max_block <= MAX_READ_REGISTERS:
        raise CodecError(f"max_block must be 1..{MAX_READ_REGISTERS}")
    names = profile.read_plan if entry_names is None else tuple(dict.fromkeys(entry_names))
    wanted = sorted((_readable(profile, name) for name in names), key=lambda e: e.address)
    readable = _readable_addresses(profile)
    blocks: list[ReadBlock] = []
    for entry in wanted:
        last = blocks[-1] if blocks else None
        if last is not None and _can_extend(last, entry, readable, max_block, max_gap):
            blocks[-1] = ReadBlock(last.address, entry.end - last.address, (*last.entries, entry.name))
        else:
            blocks.append(ReadBlock(entry.address, entry.count, (entry.name,)))
    return blocks


def _readable(profile: Profile, name: str) -> Entry:
    entry = profile.entry(name)
    if not entry.readable:
        raise CodecError(f"{profile.model}: {name} is write-only")
    return entry


def _readable_addresses(profile: Profile) -> frozenset[int]:
    return frozenset(a for e in profile.entries if e.readable for a in range(e.address, e.end))


def _can_extend(block: ReadBlock, entry: Entry, readable: frozenset[int], max_block: int, max_gap: int) -> bool:
    gap = range(block.end, entry.address)
    return (
        len(gap) <= max_gap
        and entry.end - block.address <= max_block
        and all(address in readable for address in gap)
    )
