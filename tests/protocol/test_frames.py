"""Transport frames: parsing, chunking limits and reassembly rules."""

from __future__ import annotations

import json

import pytest
from gateway_bridge.protocol import (
    FrameReader,
    Limits,
    ProtocolError,
    Reason,
    Sealed,
    encode_frame,
    fragments,
    split,
)

from .conftest import FakeClock

ENV = encode_frame([Sealed("col-1", "QUJD" * 2000)])  # 8 KB of (fake) envelope text


def _reason(reader: FrameReader, text: object) -> Reason:
    with pytest.raises(ProtocolError) as info:
        reader.feed(text)
    return info.value.reason


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _parts(text: str, limit: int = 1000, **kw: int) -> list[str]:
    return split(text, Limits(max_message_bytes=limit, **kw))


def test_small_frame_is_not_split() -> None:
    assert split(ENV) == [ENV]
    assert FrameReader().feed(ENV) == (Sealed("col-1", "QUJD" * 2000),)


def test_parts_fit_the_limit_even_with_escaping() -> None:
    text = json.dumps({"t": "env", "items": [{"ch": "c", "e": '"\\' * 3000}]}, separators=(",", ":"))
    parts = _parts(text, 500, max_parts=1000)
    assert all(len(p) <= 500 for p in parts)
    reader = FrameReader(Limits(max_message_bytes=500, max_parts=1000))
    got = [s for p in parts for s in reader.feed(p)]
    assert got == [Sealed("c", '"\\' * 3000)] and reader.reassembler.incomplete() == 0


@pytest.mark.parametrize(
    "text",
    [
        b'{"t":"env"}', None, "", "[]", "{", '{"t":"env","items":[]}', '{"t":"nope"}',
        '{"t":"env","items":[{"ch":"bad id!","e":"AAAA"}]}', '{"t":"env","items":[{"ch":"c","e":5}]}',
        '{"t":"env","items":["x"]}', '{"t":"env","t":"env","items":[{"ch":"c","e":""}]}',
        '{"t":"env","items":[{"ch":"c","e":"x"}],"n":NaN}', '{"t":"env","items":[{"ch":"c\\n","e":""}]}',
        '{"t":"part","mid":"00","i":0,"n":1,"d":"x"}', '{"t":"part","mid":"0123456789abcdef","i":1,"n":1,"d":"x"}',
        '{"t":"part","mid":"0123456789abcdef","i":true,"n":2,"d":"x"}', "[" * 100_000 + "]" * 100_000,
        '{"t":"env","items":[{"ch":"c","e":"é"}]}', "1" * 5000,
    ],
)
def test_malformed_frames(text: object) -> None:
    assert _reason(FrameReader(Limits(max_message_bytes=300_000)), text) in {Reason.MALFORMED, Reason.OVERSIZED}


def test_oversized_message_and_item_count() -> None:
    assert _reason(FrameReader(Limits(max_message_bytes=100)), ENV) is Reason.OVERSIZED
    many = encode_frame([Sealed("c", "AAAA")] * 5)
    assert _reason(FrameReader(Limits(max_items=4)), many) is Reason.OVERSIZED


def test_too_many_parts_refused_both_ways() -> None:
    with pytest.raises(ProtocolError) as info:
        _parts(ENV, 1000, max_parts=4)
    assert info.value.reason is Reason.OVERSIZED
    parts = _parts(ENV, 1000, max_parts=64)
    assert _reason(FrameReader(Limits(max_message_bytes=1000, max_parts=4)), parts[0]) is Reason.OVERSIZED


def test_total_bytes_limit() -> None:
    parts = _parts(ENV, 1000, max_parts=64)
    reader = FrameReader(Limits(max_message_bytes=1000, max_parts=64, max_total_bytes=3000))
    with pytest.raises(ProtocolError) as info:
        for p in parts:
            reader.feed(p)
    assert info.value.reason is Reason.OVERSIZED and reader.reassembler.incomplete() == 0


def test_duplicates_ignored_and_contradictions_rejected() -> None:
    parts = _parts(ENV)
    reader = FrameReader(Limits(max_message_bytes=1000))
    assert reader.feed(parts[0]) == () and reader.feed(parts[0]) == ()
    forged = json.loads(parts[0])
    assert _reason(reader, _compact({**forged, "d": forged["d"][::-1]})) is Reason.PART_INCONSISTENT
    other_total = {**json.loads(parts[1]), "n": len(parts) + 1}
    assert _reason(reader, _compact(other_total)) is Reason.PART_INCONSISTENT
    got = [s for p in reversed(parts[1:]) for s in reader.feed(p)]
    assert got == [Sealed("col-1", "QUJD" * 2000)]
    assert reader.feed(parts[2]) == () and reader.reassembler.incomplete() == 0  # late duplicate


def test_incomplete_sets_expire_and_are_evicted() -> None:
    clock = FakeClock()
    limits = Limits(max_message_bytes=1000, part_ttl_s=10, max_incomplete=2)
    reader = FrameReader(limits, clock)
    first = _parts(ENV)
    reader.feed(first[0])
    clock.now += 11
    for p in first[1:]:
        assert reader.feed(p) == ()  # the set restarted without part 0
    assert reader.reassembler.incomplete() == 1
    for _ in range(3):
        reader.feed(_parts(ENV)[0])
    assert reader.reassembler.incomplete() == 2


def test_parts_never_nest() -> None:
    inner = _parts(ENV)[0]
    outer = _parts(inner + " " * 2000, 1000)
    reader = FrameReader(Limits(max_message_bytes=1000))
    with pytest.raises(ProtocolError) as info:
        for p in outer:
            reader.feed(p)
    assert info.value.reason is Reason.MALFORMED


def test_fragments_cover_the_text() -> None:
    text = "x" * 70_000
    frags = fragments(text)
    assert "".join(frags) == text and max(map(len, frags)) == 32 * 1024
    assert fragments("") == [""]


def test_reassembly_state_survives_a_snapshot() -> None:
    # A stateless receiver (one Lambda per WebSocket message) stores the snapshot between parts.
    parts = _parts(ENV)
    limits = Limits(max_message_bytes=1000)
    snapshot: dict[str, object] = {}
    got = []
    for p in parts:
        reader = FrameReader(limits)
        reader.reassembler.restore(json.loads(json.dumps(snapshot)))
        got.extend(reader.feed(p))
        snapshot = reader.reassembler.to_dict()
    assert got == [Sealed("col-1", "QUJD" * 2000)]
