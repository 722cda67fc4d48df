"""Property-based fuzzing: whatever arrives, only ProtocolError escapes, and nothing forged is accepted."""

from __future__ import annotations

import base64
import json
from typing import Any

from gateway_bridge.protocol import (
    Batch,
    ChannelState,
    FrameReader,
    Limits,
    ProtocolError,
    Sealed,
    Suite,
    Txn,
    encode_frame,
    parse_message,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import make_pair

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PAIRS = {suite: make_pair(suite) for suite in Suite}
GENUINE = {
    suite: p.cloud.seal(Batch("c1", "bus-1", (Txn("m1", b"\x01\x03\x00\x00\x00\x1e\xc5\xc2"),)), p.down_tx)
    for suite, p in PAIRS.items()
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)
kinds = st.sampled_from(["hello", "heartbeat", "batch", "command", "batch_result", "upload", "ack", "rekey"])
fields = st.sampled_from(["cycle", "bus", "txns", "results", "ref", "ok", "error", "key", "now_ms", "id",
                          "req", "resp", "t0_ms", "t1_ms", "bridge_id", "site_id", "version", "buses"])
messages = st.builds(lambda k, d: {"k": k, **d}, kinds, st.dictionaries(fields, json_values, max_size=8))


def _only_protocol_errors(fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
    except ProtocolError:
        return False
    return True


@FUZZ
@given(st.text(max_size=400) | st.binary(max_size=400).map(lambda b: b.decode("latin-1")))
def test_frame_reader_on_arbitrary_text(text: str) -> None:
    _only_protocol_errors(FrameReader().feed, text)


@FUZZ
@given(json_values)
def test_frame_reader_on_arbitrary_json(value: Any) -> None:
    _only_protocol_errors(FrameReader().feed, json.dumps(value))


@FUZZ
@given(st.sampled_from(list(Suite)), st.binary(max_size=300))
def test_open_arbitrary_bytes_never_accepted(suite: Suite, raw: bytes) -> None:
    text = base64.b64encode(raw).decode()
    assert not _only_protocol_errors(PAIRS[suite].bridge.open, text, ChannelState())


@FUZZ
@given(st.sampled_from(list(Suite)), st.data())
def test_mutated_envelope_never_accepted(suite: Suite, data: st.DataObject) -> None:
    raw = bytearray(base64.b64decode(GENUINE[suite]))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 8))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    text = base64.b64encode(bytes(raw)).decode()
    accepted = _only_protocol_errors(PAIRS[suite].bridge.open, text, ChannelState())
    assert not accepted or text == GENUINE[suite]


@FUZZ
@given(st.sampled_from(list(Suite)), st.integers(0, 2000), st.characters(codec="ascii"))
def test_mutated_frame_text_never_accepted(suite: Suite, pos: int, char: str) -> None:
    frame = encode_frame([Sealed("col-1", GENUINE[suite])])
    pos %= len(frame)
    mutated = frame[:pos] + char + frame[pos + 1 :]
    state = ChannelState(seq=1, seen=0)  # the genuine envelope (seq 1) was already accepted
    reader = FrameReader(Limits())

    def receive() -> None:
        for sealed in reader.feed(mutated):
            PAIRS[suite].bridge.open(sealed.envelope, state).message()

    assert not _only_protocol_errors(receive)


@FUZZ
@given(messages)
def test_message_parser_on_shaped_garbage(obj: dict[str, Any]) -> None:
    _only_protocol_errors(parse_message, json.dumps(obj).encode())


@FUZZ
@given(st.binary(max_size=300))
def test_message_parser_on_bytes(raw: bytes) -> None:
    _only_protocol_errors(parse_message, raw)
