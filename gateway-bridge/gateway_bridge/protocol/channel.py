"""A channel: one collector's key ring seen from one side, sealing one way and opening the other.

Replay protection lives in :class:`ChannelState`, one per channel per direction, which the caller
loads before and stores after each call (bridge: SQLite; cloud: DynamoDB, one item per direction so
concurrent senders and receivers never contend). A state changes only when a seal succeeds or an
envelope is accepted; a rejected input leaves it untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import envelope as env_mod
from .envelope import Direction, Header
from .errors import ProtocolError, Reason
from .keys import KeyRing, check_channel_id
from .messages import Message, encode_message, parse_message
from .strict import b64decode, b64encode

WINDOW_BITS = 64
_WINDOW_MASK = (1 << WINDOW_BITS) - 1


class Role(StrEnum):
    """Which end of the tunnel a channel object serves."""

    CLOUD = "cloud"
    BRIDGE = "bridge"

    @property
    def outbound(self) -> Direction:
        return Direction.DOWN if self is Role.CLOUD else Direction.UP

    @property
    def inbound(self) -> Direction:
        return Direction.UP if self is Role.CLOUD else Direction.DOWN


@dataclass(frozen=True)
class Policy:
    """Acceptance limits. The timestamp window must exceed clock skew plus transit time."""

    window_s: float = 300.0  # |receiver clock - sealing time| allowed, either way
    overlap_s: float = 120.0  # the previous key still opens this long after a switch
    max_envelope_chars: int = 6 * 1024 * 1024  # base64 text of one envelope
    max_plaintext: int = 4 * 1024 * 1024


@dataclass
class ChannelState:
    """Sequence and usage state of one channel in one direction; small and JSON-serialisable.

    Sender: ``seq`` is the last sequence number sealed. Receiver: ``seq`` is the highest accepted
    and bit i of ``seen`` marks ``seq - 1 - i`` as accepted (tells a replay from a reordering).
    ``usage`` counts, per key id, 3DES blocks or GCM messages processed in this direction.
    """

    seq: int = 0
    seen: int = 0
    usage: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "seen": self.seen, "usage": {str(k): v for k, v in self.usage.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelState:
        usage = {int(k): int(v) for k, v in dict(data.get("usage", {})).items()}
        return cls(seq=int(data.get("seq", 0)), seen=int(data.get("seen", 0)), usage=usage)


@dataclass(frozen=True)
class Opened:
    """An accepted envelope. ``promoted`` means the ring switched keys: persist it too."""

    payload: bytes
    key_id: int
    seq: int
    ts_ms: int
    promoted: bool

    def message(self) -> Message:
        """The payload parsed as a protocol message (``ProtocolError`` if it is not one)."""
        try:
            return parse_message(self.payload)
        except ProtocolError as err:
            raise err.logged(key_id=self.key_id, seq=self.seq) from None


def _check_sequence(state: ChannelState, seq: int) -> None:
    if seq > state.seq:
        return
    back = state.seq - seq
    if back == 0 or back > WINDOW_BITS or state.seen >> (back - 1) & 1:
        raise ProtocolError(Reason.REPLAYED, f"sequence {seq} already accepted or too old")
    raise ProtocolError(Reason.REORDERED, f"sequence {seq} arrived after {state.seq}")


def _accept_sequence(state: ChannelState, seq: int) -> None:
    shift = seq - state.seq
    state.seen = ((state.seen << shift) | (1 << (shift - 1))) & _WINDOW_MASK
    state.seq = seq


def _count(state: ChannelState, ring: KeyRing, key_id: int, amount: int) -> None:
    state.usage[key_id] = state.usage.get(key_id, 0) + amount
    for stale_id in set(state.usage) - ring.key_ids():
        del state.usage[stale_id]


def _to_bytes(message: Message | Mapping[str, Any] | bytes) -> bytes:
    if isinstance(message, bytes):
        return message
    if isinstance(message, Mapping):
        # Round-trip through the schema so that nothing invalid is ever sealed.
        message = parse_message(encode_message(message))
    return encode_message(message)


class Channel:
    """Seals in ``role.outbound`` and opens ``role.inbound`` for one collector's key ring."""

    def __init__(
        self,
        channel_id: str,
        keyring: KeyRing,
        role: Role,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel_id = check_channel_id(channel_id)
        self.keyring = keyring
        self.role = role
        self.policy = policy or Policy()
        self._clock = clock

    def now_ms(self) -> int:
        """The channel clock in integer milliseconds."""
        return int(self._clock() * 1000)

    def seal(self, message: Message | Mapping[str, Any] | bytes, state: ChannelState) -> str:
        """Encrypt under the current key with the next sequence number; returns base64 text."""
        try:
            plaintext = _to_bytes(message)
            key = self.keyring.current
            if len(plaintext) > self.policy.max_plaintext:
                raise ProtocolError(Reason.OVERSIZED, "plaintext over the policy limit")
            cost = env_mod.usage(key.suite, len(plaintext) + 8)
            if state.usage.get(key.key_id, 0) + cost > key.suite.hard_limit:
                raise ProtocolError(Reason.KEY_EXHAUSTED, "key usage cap reached; rekey first")
            header = Header(key.suite, self.role.outbound, key.key_id, state.seq + 1, self.now_ms())
            raw = env_mod.seal(key, header, plaintext, self.channel_id)
        except ProtocolError as err:
            raise err.logged(channel=self.channel_id, op="seal") from None
        state.seq = header.seq
        _count(state, self.keyring, key.key_id, cost)
        return b64encode(raw)

    def open(self, text: object, state: ChannelState) -> Opened:
        """Authenticate and decrypt one base64 envelope, enforcing direction, order and window."""
        ctx: dict[str, Any] = {"channel": self.channel_id, "op": "open"}
        try:
            return self._open(text, state, ctx)
        except ProtocolError as err:
            raise err.logged(**ctx) from None

    def _open(self, text: object, state: ChannelState, ctx: dict[str, Any]) -> Opened:
        raw = b64decode(text, "envelope", self.policy.max_envelope_chars)
        env = env_mod.parse(raw)
        head = env.header
        ctx.update(key_id=head.key_id, seq=head.seq)
        now_ms = self.now_ms()
        key, pending = self.keyring.lookup(head.key_id, now_ms)
        payload = env_mod.open_(key, env, self.channel_id)
        # Only authentic fields are judged from here on, so the logged reason is the true one.
        if head.direction is not self.role.inbound:
            raise ProtocolError(Reason.WRONG_DIRECTION, "message sent the other way (reflected)")
        _check_sequence(state, head.seq)
        if abs(now_ms - head.ts_ms) > self.policy.window_s * 1000:
            raise ProtocolError(Reason.STALE, f"timestamp {(head.ts_ms - now_ms) / 1000:+.0f}s from now")
        if pending:
            # The peer sealed under the pending key: proof it installed it. Switch now.
            self.keyring.promote(now_ms, int(self.policy.overlap_s * 1000))
        _accept_sequence(state, head.seq)
        _count(state, self.keyring, head.key_id, env_mod.usage(key.suite, len(env.ciphertext)))
        return Opened(payload, head.key_id, head.seq, head.ts_ms, pending)

    def needs_rotation(self, *states: ChannelState) -> bool:
        """True when the current key is due for a rekey (either direction past the soft limit)."""
        key = self.keyring.current
        return any(s.usage.get(key.key_id, 0) >= key.suite.soft_limit for s in states)


def seal(
    message: Message | Mapping[str, Any] | bytes, channel_id: str, keyring: KeyRing, state: ChannelState,
    role: Role, policy: Policy | None = None,
) -> str:
    """Contract shorthand for ``Channel(channel_id, keyring, role, policy).seal(message, state)``."""
    return Channel(channel_id, keyring, role, policy).seal(message, state)


def open_(
    text: object, channel_id: str, keyring: KeyRing, state: ChannelState, role: Role,
    policy: Policy | None = None,
) -> Opened:
    """Contract shorthand for ``Channel(channel_id, keyring, role, policy).open(text, state)``."""
    return Channel(channel_id, keyring, role, policy).open(text, state)
