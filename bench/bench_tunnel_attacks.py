"""tunnel_attacks: hostile input against the bridge's receiving end of the tunnel, both cipher suites.

Replayed, reordered (delayed), stale, tampered, truncated, wrong-key, unknown-key, reflected,
oversized and fuzzed inputs go through the same path a real receiver uses (frame reader -> channel
open -> message parser). Every input must be rejected with a ProtocolError whose reason is logged;
anything else escaping is a crash, anything accepted is an accepted attack (both must be 0).

value: attack inputs handled per second. baseline: genuine envelopes opened per second through the
same path in the same run (the useful work a receiver does), so ratio > 1 means an attacker costs
the receiver less per input than genuine traffic does.
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway_bridge.protocol import (
    Batch,
    BatchResult,
    Channel,
    ChannelState,
    CollectorKey,
    FrameReader,
    Heartbeat,
    KeyRing,
    Limits,
    Message,
    ProtocolError,
    Reason,
    Role,
    Sealed,
    Suite,
    Txn,
    TxnResult,
    encode_frame,
    generate_key,
    split,
)

from bench.timing import ratio_result

NAME = "tunnel_attacks"
ROUND = 5_000  # inputs generated, then timed, per round (keeps memory flat)
Input = list[str]  # the WebSocket messages of one attack (several when chunked)


class _Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += hasattr(record, "tunnel_reason")


@dataclass
class _Target:
    """One collector channel at the bridge, with the genuine traffic it already accepted."""

    suite: Suite
    channel_id: str
    receiver: Channel
    rx: ChannelState = field(default_factory=ChannelState)
    accepted: list[str] = field(default_factory=list)  # frames already opened (replays)
    delayed: list[str] = field(default_factory=list)  # frames skipped over (now reordered)
    forged: dict[str, list[str]] = field(default_factory=dict)  # fresh but invalid, by kind


def _messages(rng: random.Random, n: int) -> list[Message]:
    read = bytes.fromhex("010300000014") + b"\x45\xc5"
    out: list[Message] = []
    for i in range(n):
        if i % 3 == 0:
            out.append(Heartbeat(now_ms=i, queued=rng.randrange(100)))
        elif i % 3 == 1:
            out.append(Batch(f"c{i}", "bus-1", tuple(Txn(f"m{j}", read, 500) for j in range(32))))
        else:
            res = tuple(TxnResult(f"m{j}", rng.randbytes(45), None, 1, 2) for j in range(32))
            out.append(BatchResult(f"c{i}", "bus-1", res))
    return out


def _frame(channel_id: str, envelope: str) -> str:
    return encode_frame([Sealed(channel_id, envelope)])


def _forge(sender: Channel, seq: int, n: int) -> list[str]:
    state = ChannelState(seq=seq)
    return [_frame(sender.channel_id, sender.seal(Heartbeat(i), state)) for i in range(n)]


def _forgeries(key: CollectorKey, cid: str, n: int) -> dict[str, list[str]]:
    """Fresh (never seen) envelopes that each carry exactly one defect."""
    far = 10**9  # sequence numbers far ahead, so only the intended defect can reject them
    suite = key.suite
    other = Suite.AES_GCM if suite is Suite.TDES_CBC_HMAC else Suite.TDES_CBC_HMAC
    skewed = Channel(cid, KeyRing(key), Role.CLOUD, clock=lambda: time.time() - 3600)
    return {
        "stale": _forge(skewed, far, n),
        "wrong_key": _forge(Channel(cid, KeyRing(generate_key(key.key_id, suite)), Role.CLOUD), far, n),
        "unknown_key": _forge(Channel(cid, KeyRing(generate_key(key.key_id + 76, suite)), Role.CLOUD), far, n),
        "wrong_suite": _forge(Channel(cid, KeyRing(generate_key(key.key_id, other)), Role.CLOUD), far, n),
        "reflected": _forge(Channel(cid, KeyRing(key), Role.BRIDGE), far, n),  # the bridge's own, bounced
    }


def _target(suite: Suite, genuine: int, rng: random.Random) -> tuple[_Target, float]:
    """A channel pair; the bridge opens every other genuine frame in order. Returns the time it took."""
    cid = f"col-{suite.name.lower()}"
    key = generate_key(1, suite)
    cloud, tx = Channel(cid, KeyRing(key), Role.CLOUD), ChannelState()
    target = _Target(suite, cid, Channel(cid, KeyRing(key), Role.BRIDGE))
    frames = [_frame(cid, cloud.seal(m, tx)) for m in _messages(rng, 2 * genuine)]
    # Reflections must carry the real key to reach the direction check.
    target.forged = _forgeries(key, cid, 50)
    target.delayed, target.accepted = frames[0::2], frames[1::2]
    reader = FrameReader()
    start = time.perf_counter()
    for text in target.accepted:
        for sealed in reader.feed(text):
            target.receiver.open(sealed.envelope, target.rx).message()
    return target, time.perf_counter() - start


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(max(1, len(data)))
        op = rng.randrange(3)
        if op == 0 and data:
            data[pos] ^= rng.randrange(1, 256)
        elif op == 1:
            del data[pos : pos + rng.randint(1, 16)]
        else:
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
    return bytes(data)


def _envelope_of(frame: str) -> bytes:
    return base64.b64decode(frame.split('"e":"', 1)[1].split('"', 1)[0])


def _tampered(t: _Target, rng: random.Random) -> Input:
    raw = _mutate(rng, _envelope_of(rng.choice(t.accepted)))
    return [_frame(t.channel_id, base64.b64encode(raw).decode())]


def _truncated(t: _Target, rng: random.Random) -> Input:
    frame = rng.choice(t.accepted)
    if rng.random() < 0.5:
        raw = _envelope_of(frame)
        return [_frame(t.channel_id, base64.b64encode(raw[: rng.randrange(len(raw))]).decode())]
    return [frame[: rng.randrange(len(frame))]]


def _text_mutation(t: _Target, rng: random.Random) -> Input:
    frame = rng.choice(t.accepted + t.delayed)
    pos = rng.randrange(len(frame))
    return [frame[:pos] + chr(rng.randrange(32, 127)) + frame[pos + 1 :]]


def _fuzz(t: _Target, rng: random.Random) -> Input:
    roll = rng.random()
    if roll < 0.4:  # random envelope bytes, sometimes behind a genuine header
        head = _envelope_of(rng.choice(t.accepted))[:24] if roll < 0.2 else b""
        raw = head + rng.randbytes(rng.randrange(200))
        return [_frame(t.channel_id, base64.b64encode(raw).decode())]
    if roll < 0.7:
        return [rng.randbytes(rng.randrange(300)).decode("latin-1")]
    return [rng.choice(['{"t":"env","items":', '{"t":"part",', "[", '{"t":"env","items":[{"ch":']) +
            "".join(rng.choice('{}[]":,0123456789aetn\\') for _ in range(rng.randrange(60)))]


def _oversized(t: _Target, rng: random.Random) -> Input:
    if rng.random() < 0.5:
        return ["{" + " " * (128 * 1024)]  # one WebSocket message over the limit
    mid, parts = rng.getrandbits(64), rng.randint(65, 10**6)  # more parts than max_parts
    return [f'{{"t":"part","mid":"{mid:016x}","i":0,"n":{parts},"d":"x"}}']


def _chunked_tampered(t: _Target, rng: random.Random) -> Input:
    frame = _tampered(t, rng)[0]
    return split(frame + " " * 3000, Limits(max_message_bytes=1024))


def _replayed(t: _Target, rng: random.Random) -> Input:
    return [rng.choice(t.accepted)]


def _reordered(t: _Target, rng: random.Random) -> Input:
    # Skipped-over frames within the 64-deep window; older ones are reported as replays.
    return [rng.choice(t.delayed[-30:])]


def _forged(kind: str) -> Callable[[_Target, random.Random], Input]:
    return lambda t, rng: [rng.choice(t.forged[kind])]


ATTACKS: dict[str, Callable[[_Target, random.Random], Input]] = {
    "replayed": _replayed, "reordered": _reordered, "tampered": _tampered, "truncated": _truncated,
    "text_mutation": _text_mutation, "fuzz": _fuzz, "oversized": _oversized, "chunked_tampered": _chunked_tampered,
    **{kind: _forged(kind) for kind in ("stale", "wrong_key", "unknown_key", "wrong_suite", "reflected")},
}
WEIGHTS = {"tampered": 6, "text_mutation": 4, "fuzz": 4, "truncated": 3, "replayed": 2, "reordered": 2}


@dataclass
class _Tally:
    inputs: int = 0
    crashes: int = 0
    accepted: int = 0
    unlogged: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)


def _receive(targets: dict[str, _Target], reader: FrameReader, texts: Input) -> None:
    for text in texts:
        for sealed in reader.feed(text):
            target = targets.get(sealed.channel)
            if target is None:  # what the service does with a channel it does not serve
                raise ProtocolError(Reason.UNKNOWN_KEY, "unknown channel").logged(channel=sealed.channel)
            target.receiver.open(sealed.envelope, target.rx).message()


def _judge(tally: _Tally, targets: dict[str, _Target], reader: FrameReader, texts: Input,
           counter: _Counting) -> None:
    before = counter.count
    try:
        _receive(targets, reader, texts)
        tally.accepted += 1
    except ProtocolError as err:
        tally.reasons[err.reason.value] += 1
        tally.unlogged += counter.count == before
    except Exception:
        tally.crashes += 1


def _round(tally: _Tally, targets: dict[str, _Target], rng: random.Random, size: int,
           counter: _Counting) -> None:
    names = list(ATTACKS)
    weights = [WEIGHTS.get(n, 1) for n in names]
    batch = []
    for _ in range(size):
        kind = rng.choices(names, weights)[0]
        batch.append(ATTACKS[kind](rng.choice(list(targets.values())), rng))
        tally.kinds[kind] += 1
    reader = FrameReader(Limits(max_parts=64))
    start = time.perf_counter()
    for texts in batch:
        _judge(tally, targets, reader if len(texts) == 1 else FrameReader(Limits(max_message_bytes=1024)),
               texts, counter)
    tally.seconds += time.perf_counter() - start
    tally.inputs += size


def run(quick: bool) -> Iterator[dict[str, Any]]:
    rng = random.Random(20261123)
    total, genuine = (5_000, 100) if quick else (100_000, 500)
    log = logging.getLogger("gateway_bridge.protocol")
    counter, propagate = _Counting(), log.propagate
    log.addHandler(counter)
    log.propagate = False  # 100k warnings are counted, not printed
    try:
        built = [_target(suite, genuine, rng) for suite in Suite]
        targets = {t.channel_id: t for t, _ in built}
        valid_rate = 2 * genuine / sum(seconds for _, seconds in built)
        tally = _Tally()
        while tally.inputs < total:
            _round(tally, targets, rng, min(ROUND, total - tally.inputs), counter)
    finally:
        log.removeHandler(counter)
        log.propagate = propagate
    yield ratio_result(
        tally.inputs / tally.seconds, valid_rate, "inputs/s",
        inputs=tally.inputs, crashes=tally.crashes, accepted_attacks=tally.accepted,
        unlogged_rejections=tally.unlogged, genuine_opened=2 * genuine,
        reasons=dict(sorted(tally.reasons.items())), attacks=dict(sorted(tally.kinds.items())),
    )
