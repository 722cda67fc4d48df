"""The round-trip contract: cloud -> bridge -> cloud through frames, persistence, rekey and chunking."""

from __future__ import annotations

import json
import random

import pytest
from gateway_bridge.protocol import (
    Ack,
    Batch,
    BatchResult,
    Channel,
    ChannelState,
    FrameReader,
    Heartbeat,
    KeyRing,
    Limits,
    Message,
    ProtocolError,
    Reason,
    Rekey,
    Role,
    Sealed,
    Suite,
    Txn,
    TxnError,
    TxnResult,
    Upload,
    accept_rekey,
    encode_frame,
    open_,
    seal,
    split,
    start_rekey,
)

from .conftest import T0, FakeClock, Pair, make_pair

READ = bytes.fromhex("070300000014") + b"\x45\xa3"  # opaque RTU request bytes (CRC not checked here)


def _persisted(state: ChannelState) -> ChannelState:
    # What the bridge (SQLite) and the cloud (DynamoDB) do between calls: store and reload as JSON.
    return ChannelState.from_dict(json.loads(json.dumps(state.to_dict())))


def _send(sender: Channel, state: ChannelState, msg: Message, reader: FrameReader,
          receiver: Channel, rx: ChannelState) -> Message:
    frame = encode_frame([Sealed(sender.channel_id, sender.seal(msg, state))])
    (item,) = [got for text in split(frame) for got in reader.feed(text)]
    assert item.channel == receiver.channel_id
    return receiver.open(item.envelope, rx).message()


def _results(batch: Batch) -> BatchResult:
    results = tuple(
        TxnResult(t.id, b"\x07\x03\x28" + bytes(40) + b"\x00\x00", None, 1, 2) if i % 5 else
        TxnResult(t.id, None, TxnError.TIMEOUT, 1, 2)
        for i, t in enumerate(batch.txns)
    )
    return BatchResult(batch.cycle, batch.bus, results)


def test_cycle_round_trip_with_persisted_state(pair: Pair) -> None:
    reader_b, reader_c = FrameReader(clock=pair.clock), FrameReader(clock=pair.clock)
    for cycle in range(5):
        batch = Batch(f"c{cycle}", "bus-1", tuple(Txn(f"m{i}", READ, 500) for i in range(32)), every_s=60)
        got = _send(pair.cloud, pair.down_tx, batch, reader_b, pair.bridge, pair.down_rx)
        assert got == batch
        answer = _send(pair.bridge, pair.up_tx, _results(batch), reader_c, pair.cloud, pair.up_rx)
        assert answer == _results(batch)
        pair.down_tx, pair.down_rx = _persisted(pair.down_tx), _persisted(pair.down_rx)
        pair.up_tx, pair.up_rx = _persisted(pair.up_tx), _persisted(pair.up_rx)
    assert pair.down_rx.seq == pair.up_rx.seq == 5


def test_site_batch_one_envelope_per_bus_key() -> None:
    clock = FakeClock()
    pairs = {f"col-{n}": make_pair(Suite.TDES_CBC_HMAC if n % 2 else Suite.AES_GCM, f"col-{n}") for n in range(8)}
    items = []
    for cid, p in pairs.items():
        batch = Batch("c1", cid, tuple(Txn(f"m{i}", READ) for i in range(32)))
        items.append(Sealed(cid, p.cloud.seal(batch, p.down_tx)))
    texts = split(encode_frame(items))
    reader = FrameReader(clock=clock)
    got = [s for text in texts for s in reader.feed(text)]
    assert [s.channel for s in got] == list(pairs)
    for sealed in got:
        p = pairs[sealed.channel]
        msg = p.bridge.open(sealed.envelope, p.down_rx).message()
        assert isinstance(msg, Batch) and msg.bus == sealed.channel


def test_contract_functions(pair: Pair) -> None:
    text = seal({"k": "heartbeat", "now_ms": 5}, "col-1", pair.cloud.keyring, pair.down_tx, Role.CLOUD)
    opened = open_(text, "col-1", pair.bridge.keyring, pair.down_rx, Role.BRIDGE)
    assert opened.message() == Heartbeat(now_ms=5)  # both shorthands use the real clock


def test_key_rotation_mid_stream(pair: Pair, suite: Suite) -> None:
    old_id = pair.cloud.keyring.current.key_id
    pair.bridge.open(pair.cloud.seal(Heartbeat(1), pair.down_tx), pair.down_rx)
    rekey = start_rekey(pair.cloud)
    rekey_text = pair.cloud.seal(rekey, pair.down_tx)
    in_flight = pair.cloud.seal(Heartbeat(2), pair.down_tx)  # still under the old key
    up_in_flight = pair.bridge.seal(Heartbeat(3), pair.up_tx)  # bridge, before it saw the rekey

    msg = pair.bridge.open(rekey_text, pair.down_rx).message()
    assert isinstance(msg, Rekey)
    ack = accept_rekey(pair.bridge, msg)
    assert ack == Ack(rekey.ref) and pair.bridge.keyring.current.key_id == old_id + 1
    ack_text = pair.bridge.seal(ack, pair.up_tx)
    assert pair.bridge.open(in_flight, pair.down_rx).key_id == old_id  # overlap: old key still opens

    assert pair.cloud.open(up_in_flight, pair.up_rx).key_id == old_id
    opened = pair.cloud.open(ack_text, pair.up_rx)
    assert opened.promoted and opened.message() == ack
    assert pair.cloud.keyring.current == pair.bridge.keyring.current
    after = pair.cloud.seal(Heartbeat(4), pair.down_tx)
    assert pair.bridge.open(after, pair.down_rx).key_id == old_id + 1
    assert set(pair.down_tx.usage) <= {old_id, old_id + 1}

    stale_old = Channel("col-1", KeyRing(pair.cloud.keyring.previous), Role.CLOUD,  # type: ignore[arg-type]
                        clock=pair.clock).seal(Heartbeat(5), ChannelState(seq=100))
    pair.clock.now += pair.bridge.policy.overlap_s + 1
    with pytest.raises(ProtocolError) as info:
        pair.bridge.open(stale_old, pair.down_rx)
    assert info.value.reason is Reason.KEY_RETIRED


def test_lost_ack_next_message_promotes_and_resent_rekey_is_reacked(pair: Pair) -> None:
    rekey = start_rekey(pair.cloud)
    assert start_rekey(pair.cloud) == rekey  # resending offers the same pending key
    msg = pair.bridge.open(pair.cloud.seal(rekey, pair.down_tx), pair.down_rx).message()
    assert isinstance(msg, Rekey)
    accept_rekey(pair.bridge, msg)  # its ack is lost
    again = pair.bridge.open(pair.cloud.seal(start_rekey(pair.cloud), pair.down_tx), pair.down_rx).message()
    assert isinstance(again, Rekey) and accept_rekey(pair.bridge, again).ok
    opened = pair.cloud.open(pair.bridge.seal(Heartbeat(9), pair.up_tx), pair.up_rx)
    assert opened.promoted and pair.cloud.keyring.pending is None


def test_suite_switch_to_aes_gcm_through_rekey() -> None:
    pair = make_pair(Suite.TDES_CBC_HMAC)
    rekey = start_rekey(pair.cloud, Suite.AES_GCM)
    msg = pair.bridge.open(pair.cloud.seal(rekey, pair.down_tx), pair.down_rx).message()
    assert isinstance(msg, Rekey)
    pair.cloud.open(pair.bridge.seal(accept_rekey(pair.bridge, msg), pair.up_tx), pair.up_rx)
    assert pair.cloud.keyring.current.suite is Suite.AES_GCM
    text = pair.cloud.seal(Heartbeat(1), pair.down_tx)
    assert pair.bridge.open(text, pair.down_rx).message() == Heartbeat(1)


def test_keyring_survives_persistence_through_rotation(pair: Pair) -> None:
    start_rekey(pair.cloud)
    restored = KeyRing.from_dict(json.loads(json.dumps(pair.cloud.keyring.to_dict())))
    assert restored == pair.cloud.keyring


def test_rotation_many_times_with_usage_trigger(pair: Pair, suite: Suite) -> None:
    rotations = 0
    for n in range(40):
        if n % 7 == 6:  # pretend the soft limit was reached
            pair.down_tx.usage[pair.cloud.keyring.current.key_id] = suite.soft_limit
        if pair.cloud.needs_rotation(pair.down_tx, pair.up_rx):
            msg = pair.bridge.open(pair.cloud.seal(start_rekey(pair.cloud), pair.down_tx), pair.down_rx)
            rekey = msg.message()
            assert isinstance(rekey, Rekey)
            pair.cloud.open(pair.bridge.seal(accept_rekey(pair.bridge, rekey), pair.up_tx), pair.up_rx)
            rotations += 1
        assert pair.bridge.open(pair.cloud.seal(Heartbeat(n), pair.down_tx), pair.down_rx).message() == Heartbeat(n)
    assert rotations == 5 and pair.cloud.keyring.current.key_id == 6


@pytest.mark.parametrize("limit", [128 * 1024, 4096])
def test_chunked_large_upload_out_of_order_with_duplicates(pair: Pair, limit: int) -> None:
    rng = random.Random(7)
    sets = tuple(
        BatchResult(f"c{c}", "bus-1", tuple(TxnResult(f"m{i}", rng.randbytes(65), None, T0_MS, T0_MS + 90)
                                            for i in range(32)))
        for c in range(40)
    )
    upload = Upload("up-1", sets)
    limits = Limits(max_message_bytes=limit, max_parts=1024)
    texts = split(encode_frame([Sealed("col-1", pair.bridge.seal(upload, pair.up_tx))]), limits)
    assert len(texts) > 1 and all(len(t) <= limit for t in texts)
    shuffled = texts + rng.sample(texts, 3)  # three duplicates
    rng.shuffle(shuffled)
    reader = FrameReader(limits, clock=pair.clock)
    got = [s for t in shuffled for s in reader.feed(t)]
    assert len(got) == 1 and reader.reassembler.incomplete() == 0
    assert pair.cloud.open(got[0].envelope, pair.up_rx).message() == upload


T0_MS = int(T0 * 1000)
