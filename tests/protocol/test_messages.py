"""The message schema: every kind round-trips; wrong shapes are INVALID_MESSAGE (or MALFORMED JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_bridge.protocol import (
    Ack,
    Batch,
    BatchResult,
    Command,
    Heartbeat,
    Hello,
    Message,
    ProtocolError,
    Reason,
    Rekey,
    Suite,
    Txn,
    TxnError,
    TxnResult,
    Upload,
    encode_message,
    generate_key,
    parse_message,
)

REQ = bytes.fromhex("0103000000")
RESULT = BatchResult("c1", "bus-1", (TxnResult("m1", b"\x01\x03\x02\x00\x07", None, 10, 20),
                                     TxnResult("m2", None, TxnError.TIMEOUT, 10, 1010)))
MESSAGES: list[Message] = [
    Hello("bridge-1", "site-1", "0.1.0", 123, ("bus-1", "bus-2")),
    Heartbeat(5, 3),
    Batch("c1", "bus-1", (Txn("m1", REQ, 500), Txn("m2", REQ)), every_s=60),
    Command("cmd-9", "bus-1", (Txn("w1", REQ),)),
    RESULT,
    Upload("up-1", (RESULT, RESULT)),
    Ack("c1"),
    Ack("cmd-9", ok=False, error="bus busy"),
    Rekey("rekey-2", generate_key(2)),
    Rekey("rekey-3", generate_key(3, Suite.AES_GCM)),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_kind_round_trips(msg: Message) -> None:
    assert parse_message(encode_message(msg)) == msg


def _reason(obj: Any) -> Reason:
    with pytest.raises(ProtocolError) as info:
        parse_message(obj if isinstance(obj, bytes) else json.dumps(obj).encode())
    return info.value.reason


def _wire(msg: Message) -> dict[str, Any]:
    return dict(json.loads(encode_message(msg)))


@pytest.mark.parametrize(
    "change",
    [
        {"k": "nope"}, {"k": 5}, {"now_ms": True}, {"now_ms": -1}, {"now_ms": 1.5}, {"now_ms": 2**60},
        {"queued": "3"},
    ],
)
def test_bad_heartbeat(change: dict[str, Any]) -> None:
    assert _reason({**_wire(Heartbeat(1)), **change}) is Reason.INVALID_MESSAGE


@pytest.mark.parametrize(
    "txn",
    [
        {"id": "m1"}, {"id": "m1", "req": ""}, {"id": "m1", "req": "AQ"}, {"id": "m1", "req": "AB=="},
        {"id": "m1", "req": "A" * 400}, {"id": "", "req": "AQ=="}, {"id": "bad id", "req": "AQ=="},
        {"id": "m1", "req": "AQ==", "timeout_ms": 10**9}, [], "m1", None,
    ],
)
def test_bad_txn(txn: Any) -> None:
    assert _reason({"k": "batch", "cycle": "c", "bus": "b", "txns": [txn]}) is Reason.INVALID_MESSAGE


@pytest.mark.parametrize(
    "result",
    [
        {"id": "m", "resp": None, "error": None, "t0_ms": 0, "t1_ms": 0},
        {"id": "m", "resp": "AQ==", "error": "timeout", "t0_ms": 0, "t1_ms": 0},
        {"id": "m", "resp": None, "error": "melted", "t0_ms": 0, "t1_ms": 0},
        {"id": "m", "resp": "AQ==", "error": None, "t0_ms": 0},
    ],
)
def test_bad_result(result: dict[str, Any]) -> None:
    assert _reason({"k": "batch_result", "cycle": "c", "bus": "b", "results": [result]}) is Reason.INVALID_MESSAGE


def test_list_limits() -> None:
    txns = [{"id": "m", "req": "AQ=="}] * 1025
    assert _reason({"k": "batch", "cycle": "c", "bus": "b", "txns": txns}) is Reason.INVALID_MESSAGE


def test_rekey_with_bad_key_is_invalid() -> None:
    wire = _wire(Rekey("r", generate_key(2)))
    wire["key"]["enc"] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"  # 24 bytes of 0x01: K1 == K2 == K3
    assert _reason(wire) is Reason.INVALID_MESSAGE
    wire["key"] = {"id": 2, "suite": "rot13", "enc": "", "mac": ""}
    assert _reason(wire) is Reason.INVALID_MESSAGE


@pytest.mark.parametrize(
    "payload", [b"", b"\xff\xfe", b"[]", b"null", b'"k"', b"{", b'{"k":"ack","ok":true,"ref":"a","ref":"b"}',
                b'{"k":"heartbeat","now_ms":NaN}', b"[" * 50_000],
)
def test_not_a_message(payload: bytes) -> None:
    assert _reason(payload) in {Reason.MALFORMED, Reason.INVALID_MESSAGE}


def test_unknown_fields_ignored_for_forward_compatibility() -> None:
    assert parse_message(json.dumps({**_wire(Heartbeat(1)), "future": [1, 2]}).encode()) == Heartbeat(1)


def test_mapping_that_is_not_json_refused() -> None:
    with pytest.raises(ProtocolError):
        encode_message({"k": "heartbeat", "now_ms": b"x"})
