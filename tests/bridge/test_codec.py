"""Register words ↔ values for every profile entry, and read planning."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any, cast

import pytest
from gateway_bridge.codec import (
    CodecError,
    ReadBlock,
    Value,
    decode,
    decode_block,
    encode,
    encode_command,
    encode_entries,
    fit,
    floor_to,
    plan_reads,
    raw_range,
    raw_to_words,
    words_to_raw,
)
from gateway_bridge.profiles import Entry, Profile, available_models, load_profile
from hypothesis import given, settings
from hypothesis import strategies as st

ALL_ENTRIES = [(model, entry) for model in available_models() for entry in load_profile(model).entries]
ENTRY_IDS = [f"{model}.{entry.name}" for model, entry in ALL_ENTRIES]


@pytest.mark.parametrize(("model", "entry"), ALL_ENTRIES, ids=ENTRY_IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip_every_entry(model: str, entry: Entry, data: st.DataObject) -> None:
    low, high = raw_range(entry.type)
    raw = data.draw(st.integers(low, high))
    words = raw_to_words(raw, entry.type)
    value = decode(entry, words)
    assert encode(entry, value) == words
    assert decode(entry, encode(entry, value)) == value
    if entry.scale == 1:
        assert isinstance(value, int) and value == raw
    else:
        assert isinstance(value, Decimal) and value == raw * entry.scale
        assert value.as_tuple().exponent == entry.scale.as_tuple().exponent  # "0.05", not "5E-2"


@given(st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2))
def test_words_round_trip_32_bit(words: list[int]) -> None:
    for type_ in ("UINT32", "INT32"):
        assert raw_to_words(words_to_raw(words, type_), type_) == words


def test_high_word_first_big_endian() -> None:
    assert raw_to_words(0x12345678, "UINT32") == [0x1234, 0x5678]
    assert words_to_raw([0xFFFF, 0xFFFE], "INT32") == -2
    assert words_to_raw([0x8000], "INT16") == -32768
    remaining = load_profile("DTSY1352").entry("remaining_amount")
    assert decode(remaining, [0xFFFF, 0xFB2E]) == Decimal("-12.34")


def test_encode_refuses_what_does_not_fit() -> None:
    entry = load_profile("DTSY1352").entry("remaining_amount")  # INT32, 0.01
    with pytest.raises(CodecError, match="not a multiple"):
        encode(entry, Decimal("1.005"))
    with pytest.raises(CodecError, match="outside"):
        encode(entry, Decimal("21474836.48"))
    with pytest.raises(CodecError, match="int or Decimal"):
        encode(entry, cast(Any, 1.5))  # a float must be refused at run time
    with pytest.raises(CodecError, match="int or Decimal"):
        encode(entry, True)
    with pytest.raises(CodecError, match="outside"):
        encode(load_profile("DTSY1352").entry("purchase_count"), -1)
    with pytest.raises(CodecError, match="needs 2 register"):
        decode(entry, [1])
    with pytest.raises(CodecError, match=r"outside 0\.\.0xFFFF"):
        decode(entry, [0x10000, 0])


def test_fit_rounds_and_clamps_floor_never_shows_more() -> None:
    power = load_profile("DTSY1352").entry("active_power")  # INT16, 0.001 kW
    assert fit(power, Decimal("1.2345")) == Decimal("1.234")  # half-even
    assert fit(power, Decimal("99")) == Decimal("32.767")
    assert fit(power, Decimal("-99")) == Decimal("-32.768")
    remaining = load_profile("DTSY1352").entry("remaining_amount")
    assert floor_to(remaining, Decimal("10.019")) == Decimal("10.01")
    assert floor_to(remaining, Decimal("-0.001")) == Decimal("-0.01")


def test_decode_block_returns_entries_wholly_inside() -> None:
    profile = load_profile("DTSY1352")
    words = [0, 12345] + [0] * 8 + [0, 2301, 1050, 0xFFFF]
    values = decode_block(profile, 0, words)
    assert values["energy_total"] == Decimal("123.45")
    assert values["voltage"] == Decimal("230.1")
    assert values["current"] == Decimal("10.50")
    assert values["active_power"] == Decimal("-0.001")
    assert "apparent_power" not in values  # starts beyond the block
    assert "energy_total" not in decode_block(profile, 1, words[1:])  # cut in half


def test_encode_command_and_entries() -> None:
    profile = load_profile("DTSY1352")
    fields: dict[str, Value] = {"purchase_command_amount": Decimal("50.00"), "purchase_command_count": 8}
    assert encode_command(profile, "purchase", fields) == (0x0120, [0, 5000, 8])
    with pytest.raises(CodecError, match="takes exactly"):
        encode_command(profile, "purchase", {"purchase_command_amount": Decimal(1)})
    with pytest.raises(CodecError, match="no command"):
        encode_command(profile, "self_destruct", {})
    address, words = encode_entries(profile, {"price_sharp": Decimal("1.2"), "price_peak": Decimal("0.95")})
    assert (address, words) == (0x0110, [0, 12000, 0, 9500])
    with pytest.raises(CodecError, match="not contiguous"):
        encode_entries(profile, {"price_sharp": Decimal(1), "price_flat": Decimal(1)})
    with pytest.raises(CodecError, match="read-only"):
        encode_entries(profile, {"remaining_amount": Decimal(1)})


# ---------------------------------------------------------------------------------------------------
# Read planning


def test_default_plans() -> None:
    assert [(b.address, b.count) for b in plan_reads(load_profile("DTSY1352"))] == [(0x0000, 17), (0x0100, 15)]
    assert [(b.address, b.count) for b in plan_reads(load_profile("ACR"))] == [(0x0000, 30)]


def test_never_bridges_an_undefined_address() -> None:
    profile = load_profile("DTSY1352")
    # power_factor ends at 0x0011 and ct_ratio is at 0x0038: 0x0011..0x0037 is not defined.
    blocks = plan_reads(profile, ["power_factor", "ct_ratio"], max_gap=100)
    assert [(b.address, b.count) for b in blocks] == [(0x0010, 1), (0x0038, 1)]


def test_bridges_readable_gaps_up_to_max_gap() -> None:
    profile = load_profile("DTSY1352")
    assert len(plan_reads(profile, ["energy_total", "voltage"], max_gap=9)) == 1  # 0x0002..0x000A readable
    assert len(plan_reads(profile, ["energy_total", "voltage"], max_gap=8)) == 2


def test_respects_max_block_and_rejects_write_only() -> None:
    profile = load_profile("ACR")
    blocks = plan_reads(profile, None, max_block=10)
    assert [(b.address, b.count) for b in blocks] == [(0, 10), (10, 10), (20, 10)]
    with pytest.raises(CodecError, match="write-only"):
        plan_reads(load_profile("DTSY1352"), ["purchase_command_amount"])
    with pytest.raises(CodecError, match="max_block"):
        plan_reads(profile, None, max_block=126)


def fewest_blocks(profile: Profile, names: list[str], max_block: int, max_gap: int) -> int:
    """Brute force: the smallest number of ways to cut the sorted entries into valid blocks."""
    entries = sorted((profile.entry(n) for n in names), key=lambda e: e.address)
    readable = {a for e in profile.entries if e.readable for a in range(e.address, e.end)}

    def valid(run: list[Entry]) -> bool:
        return run[-1].end - run[0].address <= max_block and all(
            b.address - a.end <= max_gap and all(x in readable for x in range(a.end, b.address))
            for a, b in itertools.pairwise(run))

    best = [0] + [len(entries) + 1] * len(entries)
    for end in range(1, len(entries) + 1):
        for start in range(end):
            if valid(entries[start:end]):
                best[end] = min(best[end], best[start] + 1)
    return best[-1]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_plan_is_valid_complete_and_minimal(data: st.DataObject) -> None:
    profile = load_profile(data.draw(st.sampled_from(available_models())))
    readable = [e.name for e in profile.entries if e.readable]
    names = data.draw(st.lists(st.sampled_from(readable), min_size=1, unique=True))
    max_block = data.draw(st.integers(2, 125))
    max_gap = data.draw(st.integers(0, 20))
    blocks = plan_reads(profile, names, max_block=max_block, max_gap=max_gap)
    assert sorted(n for b in blocks for n in b.entries) == sorted(names)
    for block in blocks:
        assert isinstance(block, ReadBlock) and block.count <= max_block
        for address in range(block.address, block.end):
            entry = profile.entry_at(address)
            assert entry is not None and entry.readable
    assert len(blocks) == fewest_blocks(profile, names, max_block, max_gap)
