"""Every way an envelope is refused, for both suites: typed reason, logged, state untouched."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace

import pytest
from gateway_bridge.protocol import (
    Channel,
    ChannelState,
    Heartbeat,
    KeyRing,
    Policy,
    ProtocolError,
    Reason,
    Role,
    Suite,
    generate_key,
)
from gateway_bridge.protocol.envelope import HEADER

from .conftest import Pair

MSG = Heartbeat(now_ms=1, queued=0)


def _reason(channel: Channel, text: object, state: ChannelState) -> Reason:
    before = ChannelState.from_dict(state.to_dict())
    with pytest.raises(ProtocolError) as info:
        channel.open(text, state)
    assert state == before, "a rejected input must not change the state"
    return info.value.reason


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_valid_envelope_opens(pair: Pair) -> None:
    opened = pair.bridge.open(pair.cloud.seal(MSG, pair.down_tx), pair.down_rx)
    assert opened.message() == MSG and opened.seq == 1 and not opened.promoted


def test_replayed(pair: Pair) -> None:
    text = pair.cloud.seal(MSG, pair.down_tx)
    pair.bridge.open(text, pair.down_rx)
    assert _reason(pair.bridge, text, pair.down_rx) is Reason.REPLAYED


def test_reordered_then_replayed(pair: Pair) -> None:
    first, second, third = (pair.cloud.seal(MSG, pair.down_tx) for _ in range(3))
    pair.bridge.open(first, pair.down_rx)
    pair.bridge.open(third, pair.down_rx)
    assert _reason(pair.bridge, second, pair.down_rx) is Reason.REORDERED
    assert _reason(pair.bridge, third, pair.down_rx) is Reason.REPLAYED
    assert _reason(pair.bridge, first, pair.down_rx) is Reason.REPLAYED


def test_replay_older_than_window_is_replayed(pair: Pair) -> None:
    old = pair.cloud.seal(MSG, pair.down_tx)
    for _ in range(70):
        last = pair.cloud.seal(MSG, pair.down_tx)
    pair.bridge.open(last, pair.down_rx)
    assert _reason(pair.bridge, old, pair.down_rx) is Reason.REPLAYED


@pytest.mark.parametrize("skew_s", [-301.0, 301.0, -86_400.0])
def test_stale_either_way(pair: Pair, skew_s: float) -> None:
    text = pair.cloud.seal(MSG, pair.down_tx)
    pair.clock.now += skew_s
    assert _reason(pair.bridge, text, pair.down_rx) is Reason.STALE


def test_inside_window_accepted(pair: Pair) -> None:
    text = pair.cloud.seal(MSG, pair.down_tx)
    pair.clock.now += 299
    pair.bridge.open(text, pair.down_rx)


def _expected_tamper_reasons(pos: int) -> set[Reason]:
    if pos == 0:
        return {Reason.UNSUPPORTED_VERSION}
    if pos in (1, 2, 3):  # suite / direction / flags: unknown value, or the other (valid) value
        return {Reason.MALFORMED, Reason.SUITE_MISMATCH, Reason.AUTH_FAILED, Reason.TRUNCATED}
    if 4 <= pos < 8:
        return {Reason.UNKNOWN_KEY}
    return {Reason.AUTH_FAILED}  # seq, timestamp, IV/nonce, ciphertext, tag: all authenticated


@pytest.mark.parametrize("flip", [0x01, 0x80, 0xFF])
def test_tampered_every_byte(pair: Pair, flip: int) -> None:
    raw = base64.b64decode(pair.cloud.seal(MSG, pair.down_tx))
    for pos in range(len(raw)):
        bad = bytearray(raw)
        bad[pos] ^= flip
        reason = _reason(pair.bridge, _b64(bytes(bad)), pair.down_rx)
        assert reason in _expected_tamper_reasons(pos), (pos, reason)
    pair.bridge.open(_b64(raw), pair.down_rx)  # the untouched original still opens


def test_truncated_every_length(pair: Pair) -> None:
    raw = base64.b64decode(pair.cloud.seal(MSG, pair.down_tx))
    for length in range(len(raw)):
        reason = _reason(pair.bridge, _b64(raw[:length]), pair.down_rx)
        expected = {Reason.TRUNCATED} if length < HEADER.size + 28 else {Reason.TRUNCATED, Reason.AUTH_FAILED}
        assert reason in expected, (length, reason)


def test_truncated_base64_text(pair: Pair) -> None:
    text = pair.cloud.seal(MSG, pair.down_tx)
    for length in range(len(text)):
        assert _reason(pair.bridge, text[:length], pair.down_rx) in {
            Reason.MALFORMED, Reason.TRUNCATED, Reason.AUTH_FAILED,
        }


def test_extended_envelope(pair: Pair) -> None:
    raw = base64.b64decode(pair.cloud.seal(MSG, pair.down_tx))
    for extra in (b"\x00", b"\x00" * 8, b"\x00" * 16):
        assert _reason(pair.bridge, _b64(raw + extra), pair.down_rx) in {Reason.AUTH_FAILED, Reason.TRUNCATED}


def test_wrong_key_same_id(pair: Pair, suite: Suite) -> None:
    impostor = Channel("col-1", KeyRing(generate_key(1, suite)), Role.CLOUD, clock=pair.clock)
    text = impostor.seal(MSG, ChannelState())
    assert _reason(pair.bridge, text, pair.down_rx) is Reason.AUTH_FAILED


def test_unknown_key_id(pair: Pair, suite: Suite) -> None:
    impostor = Channel("col-1", KeyRing(generate_key(99, suite)), Role.CLOUD, clock=pair.clock)
    assert _reason(pair.bridge, impostor.seal(MSG, ChannelState()), pair.down_rx) is Reason.UNKNOWN_KEY


def test_other_suite_same_id_is_suite_mismatch(pair: Pair, suite: Suite) -> None:
    other = Suite.AES_GCM if suite is Suite.TDES_CBC_HMAC else Suite.TDES_CBC_HMAC
    impostor = Channel("col-1", KeyRing(generate_key(1, other)), Role.CLOUD, clock=pair.clock)
    assert _reason(pair.bridge, impostor.seal(MSG, ChannelState()), pair.down_rx) is Reason.SUITE_MISMATCH


def test_envelope_bound_to_its_channel(pair: Pair) -> None:
    # Same key under another collector id (misconfiguration or a moved envelope) must not open.
    other = Channel("col-2", pair.bridge.keyring, Role.BRIDGE, clock=pair.clock)
    assert _reason(other, pair.cloud.seal(MSG, pair.down_tx), ChannelState()) is Reason.AUTH_FAILED


def test_reflected_message_is_wrong_direction(pair: Pair) -> None:
    text = pair.bridge.seal(MSG, pair.up_tx)
    # An attacker bounces the bridge's own message back at it.
    assert _reason(pair.bridge, text, pair.down_rx) is Reason.WRONG_DIRECTION


def test_oversized_envelope_text(pair: Pair) -> None:
    small = Channel("col-1", pair.bridge.keyring, Role.BRIDGE, Policy(max_envelope_chars=100), pair.clock)
    text = pair.cloud.seal(b"x" * 200, pair.down_tx)
    assert _reason(small, text, pair.down_rx) is Reason.OVERSIZED


def test_oversized_plaintext_refused_on_seal(pair: Pair) -> None:
    small = Channel("col-1", pair.cloud.keyring, Role.CLOUD, Policy(max_plaintext=10), pair.clock)
    with pytest.raises(ProtocolError) as info:
        small.seal(b"x" * 11, pair.down_tx)
    assert info.value.reason is Reason.OVERSIZED and pair.down_tx.seq == 0


@pytest.mark.parametrize(
    "text",
    [None, 42, b"AAAA", "", "A", "AAA", "AAAAA===", "!!!!", "AAAA\n", "ÀÀÀÀ", "AB==", "A" * 2 + "=="],
)
def test_malformed_base64(pair: Pair, text: object) -> None:
    assert _reason(pair.bridge, text, pair.down_rx) in {Reason.MALFORMED, Reason.TRUNCATED}


def test_non_canonical_base64_rejected(pair: Pair) -> None:
    text = pair.cloud.seal(MSG, pair.down_tx)
    raw = base64.b64decode(text)
    if len(raw) % 3:  # padding bits exist only when the length is not a multiple of 3
        last = text.rstrip("=")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        bumped = last[:-1] + alphabet[alphabet.index(last[-1]) + 1] + text[len(last) :]
        assert base64.b64decode(bumped) == raw
        assert _reason(pair.bridge, bumped, pair.down_rx) is Reason.MALFORMED


def test_retired_key_after_overlap(pair: Pair, suite: Suite) -> None:
    old_text = pair.cloud.seal(MSG, pair.down_tx)
    ring = pair.bridge.keyring
    ring.stage(generate_key(2, suite))
    ring.promote(pair.bridge.now_ms(), overlap_ms=120_000)
    pair.clock.now += 121
    assert _reason(pair.bridge, old_text, pair.down_rx) in {Reason.KEY_RETIRED}


@pytest.mark.parametrize(
    "enc",
    [b"\x01" * 16 + b"\x02" * 8, b"\x01" * 8 + b"\x02" * 16, b"\x00" * 24, b"\x01" * 23],
    ids=["k1=k2", "k2=k3", "parity", "short"],
)
def test_bad_3des_key_refused(enc: bytes) -> None:
    with pytest.raises(ProtocolError):
        replace(generate_key(1), enc=enc)


def test_key_usage_cap_refuses_to_seal(pair: Pair, suite: Suite) -> None:
    key_id = pair.cloud.keyring.current.key_id
    pair.down_tx.usage[key_id] = suite.soft_limit
    assert pair.cloud.needs_rotation(pair.down_tx, pair.up_rx)
    pair.down_tx.usage[key_id] = suite.hard_limit
    with pytest.raises(ProtocolError) as info:
        pair.cloud.seal(MSG, pair.down_tx)
    assert info.value.reason is Reason.KEY_EXHAUSTED


def test_rejection_logged_once_without_key_material(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    text = pair.cloud.seal(MSG, pair.down_tx)
    pair.bridge.open(text, pair.down_rx)
    caplog.set_level(logging.WARNING, logger="gateway_bridge.protocol")
    with pytest.raises(ProtocolError):
        pair.bridge.open(text, pair.down_rx)
    records = [r for r in caplog.records if r.name == "gateway_bridge.protocol"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert records[0].tunnel_reason == "replayed"  # type: ignore[attr-defined]
    key = pair.bridge.keyring.current
    logged = caplog.text
    for secret in (key.enc, key.mac):
        if secret:
            assert secret.hex() not in logged and base64.b64encode(secret).decode() not in logged
    assert "enc=" not in repr(key) and key.enc.hex() not in repr(pair.bridge.keyring)
