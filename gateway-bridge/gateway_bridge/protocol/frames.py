"""Transport frames: the JSON text messages that travel over the WebSocket, chunking included.

API Gateway refuses binary frames, so everything is ASCII JSON text::

    {"t":"env","items":[{"ch":"<channel id>","e":"<base64 envelope>"}, ...]}
    {"t":"part","mid":"<16 hex>","i":<0..n-1>,"n":<parts>,"d":"<slice of a frame's text>"}

An ``env`` frame carries one or more sealed envelopes (a site's batch: one per bus, each under
that bus's collector key). Frame fields only route; meaning lives in the authenticated envelopes.
A frame text longer than the message limit is cut into ``part`` frames; parts are not authenticated
themselves, but the reassembled text is just another frame whose envelopes are.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ProtocolError, Reason
from .keys import check_channel_id
from .strict import dumps, loads

MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway WebSocket message limit
MAX_FRAME_BYTES = 32 * 1024  # API Gateway WebSocket frame limit (see ``fragments``)
_DONE_MEMORY = 256


@dataclass(frozen=True)
class Limits:
    """Size limits for frames, both when cutting outbound and when accepting inbound."""

    max_message_bytes: int = MAX_MESSAGE_BYTES  # one WebSocket message
    max_items: int = 256  # envelopes in one env frame
    max_parts: int = 64  # parts of one chunked frame
    max_total_bytes: int = 4 * 1024 * 1024  # a reassembled frame
    part_ttl_s: float = 120.0  # an incomplete set older than this is dropped
    max_incomplete: int = 8  # incomplete sets held at once (oldest evicted)


@dataclass(frozen=True)
class Sealed:
    """One envelope addressed to a channel (collector)."""

    channel: str
    envelope: str


@dataclass(frozen=True)
class Part:
    mid: str
    index: int
    total: int
    data: str


def encode_frame(items: Iterable[Sealed]) -> str:
    """The ``env`` frame text for some sealed envelopes."""
    return dumps({"t": "env", "items": [{"ch": s.channel, "e": s.envelope} for s in items]})


def _part_text(mid: str, index: int, total: int, data: str) -> str:
    return dumps({"t": "part", "mid": mid, "i": index, "n": total, "d": data})


def _cut(text: str, budget: int) -> list[str]:
    chunks, pos = [], 0
    while pos < len(text):
        size = budget
        # JSON escaping (quotes, backslashes) grows a slice; shrink until its escaped form fits.
        while (grown := len(dumps(text[pos : pos + size])) - 2) > budget:
            size = max(1, min(size - 1, size * budget // grown))
        chunks.append(text[pos : pos + size])
        pos += size
    return chunks


def split(text: str, limits: Limits | None = None) -> list[str]:
    """``[text]`` if it fits one message, else part frames that each fit; OVERSIZED if too many."""
    limits = limits or Limits()
    if len(text) <= limits.max_message_bytes:
        return [text]
    if len(text) > limits.max_total_bytes:
        raise ProtocolError(Reason.OVERSIZED, "frame larger than max_total_bytes").logged(op="split")
    mid = secrets.token_hex(8)
    digits = 10 ** len(str(len(text)))  # an upper bound for both i and n, to size the overhead
    budget = limits.max_message_bytes - len(_part_text(mid, digits, digits, ""))
    if budget < 6:  # one character may escape to six (\u00XX)
        raise ProtocolError(Reason.OVERSIZED, "message limit too small for parts").logged(op="split")
    chunks = _cut(text, budget)
    if len(chunks) > limits.max_parts:
        raise ProtocolError(Reason.OVERSIZED, "frame needs more than max_parts parts").logged(op="split")
    return [_part_text(mid, i, len(chunks), chunk) for i, chunk in enumerate(chunks)]


def fragments(text: str, frame_bytes: int = MAX_FRAME_BYTES) -> list[str]:
    """WebSocket frame fragments of one message (``await ws.send(fragments(text))`` in websockets)."""
    return [text[i : i + frame_bytes] for i in range(0, len(text), frame_bytes)] or [""]


def _field(data: Mapping[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if type(value) is not kind:
        raise ProtocolError(Reason.MALFORMED, f"frame field {name} missing or wrong type")
    return value


def _items(data: Mapping[str, Any], limits: Limits) -> tuple[Sealed, ...]:
    items = _field(data, "items", list)
    if not items or len(items) > limits.max_items:
        raise ProtocolError(Reason.OVERSIZED if items else Reason.MALFORMED, "item count")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ProtocolError(Reason.MALFORMED, "item is not an object")
        out.append(Sealed(check_channel_id(item.get("ch")), _field(item, "e", str)))
    return tuple(out)


def _part(data: Mapping[str, Any], limits: Limits) -> Part:
    mid, index, total = _field(data, "mid", str), _field(data, "i", int), _field(data, "n", int)
    payload = _field(data, "d", str)
    if len(mid) != 16 or not all(c in "0123456789abcdef" for c in mid) or not payload:
        raise ProtocolError(Reason.MALFORMED, "part id or data malformed")
    if total > limits.max_parts:
        raise ProtocolError(Reason.OVERSIZED, "more parts than max_parts")
    if not 0 <= index < total:
        raise ProtocolError(Reason.MALFORMED, "part index out of range")
    return Part(mid, index, total, payload)


def decode(text: object, limits: Limits, max_len: int, allow_part: bool = True) -> tuple[Sealed, ...] | Part:
    """Parse one untrusted frame text; only ``ProtocolError`` escapes (not logged here)."""
    if not isinstance(text, str):
        raise ProtocolError(Reason.MALFORMED, "frames are text, not binary")
    if len(text) > max_len:
        raise ProtocolError(Reason.OVERSIZED, f"frame of {len(text)} characters")
    if not text.isascii():
        raise ProtocolError(Reason.MALFORMED, "frame is not ASCII")
    data = loads(text, "frame")
    if not isinstance(data, dict):
        raise ProtocolError(Reason.MALFORMED, "frame is not an object")
    kind = data.get("t")
    if kind == "env":
        return _items(data, limits)
    if kind == "part" and allow_part:
        return _part(data, limits)
    raise ProtocolError(Reason.MALFORMED, "unknown frame type")


@dataclass
class _PartSet:
    total: int
    first_ms: int
    size: int = 0
    parts: dict[int, str] = field(default_factory=dict)


class Reassembler:
    """Collects part frames into whole frame texts. First arrival wins: a duplicate part is ignored,
    a part that contradicts the set (other total, other data) is rejected and the set kept."""

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._sets: dict[str, _PartSet] = {}
        # Recently completed ids, so a late duplicate part does not open a new set that never completes.
        self._done: dict[str, None] = {}

    def _drop_expired(self, now_ms: int) -> None:
        ttl_ms = self.limits.part_ttl_s * 1000
        for mid in [m for m, s in self._sets.items() if now_ms - s.first_ms > ttl_ms]:
            del self._sets[mid]
            ProtocolError(Reason.PART_EXPIRED, "incomplete message timed out").logged(op="parts", mid=mid)

    def _new_set(self, part: Part, now_ms: int) -> _PartSet:
        if len(self._sets) >= self.limits.max_incomplete:
            oldest = min(self._sets, key=lambda m: self._sets[m].first_ms)
            del self._sets[oldest]
            ProtocolError(Reason.PART_EXPIRED, "evicted by newer messages").logged(op="parts", mid=oldest)
        self._sets[part.mid] = _PartSet(part.total, now_ms)
        return self._sets[part.mid]

    def add(self, part: Part) -> str | None:
        """The whole frame text once ``part`` completes its set, else None."""
        now_ms = int(self._clock() * 1000)
        self._drop_expired(now_ms)
        if part.mid in self._done:
            return None
        held = self._sets.get(part.mid) or self._new_set(part, now_ms)
        if part.total != held.total:
            raise ProtocolError(Reason.PART_INCONSISTENT, "part count differs from earlier parts")
        if part.index in held.parts:
            if held.parts[part.index] != part.data:
                raise ProtocolError(Reason.PART_INCONSISTENT, "duplicate part with other data")
            return None
        if held.size + len(part.data) > self.limits.max_total_bytes:
            del self._sets[part.mid]
            raise ProtocolError(Reason.OVERSIZED, "reassembled message over max_total_bytes")
        held.parts[part.index] = part.data
        held.size += len(part.data)
        if len(held.parts) < held.total:
            return None
        del self._sets[part.mid]
        self._done[part.mid] = None
        if len(self._done) > _DONE_MEMORY:
            del self._done[next(iter(self._done))]
        return "".join(held.parts[i] for i in range(held.total))

    def incomplete(self) -> int:
        """How many chunked messages are waiting for parts."""
        return len(self._sets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly snapshot, for a stateless receiver (Lambda) that keeps it per connection."""
        sets = {m: {"n": s.total, "first_ms": s.first_ms, "parts": {str(i): d for i, d in s.parts.items()}}
                for m, s in self._sets.items()}
        return {"sets": sets, "done": list(self._done)}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load a ``to_dict`` snapshot (from the receiver's own storage) into this reassembler."""
        self._done = dict.fromkeys(data.get("done", []))
        self._sets = {}
        for mid, raw in dict(data.get("sets", {})).items():
            parts = {int(i): str(d) for i, d in raw["parts"].items()}
            self._sets[mid] = _PartSet(int(raw["n"]), int(raw["first_ms"]), sum(map(len, parts.values())), parts)


class FrameReader:
    """Untrusted WebSocket text in, sealed envelopes out (an empty tuple while parts are pending)."""

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or Limits()
        self.reassembler = Reassembler(self.limits, clock)

    def feed(self, text: object) -> tuple[Sealed, ...]:
        try:
            got = decode(text, self.limits, self.limits.max_message_bytes)
            if isinstance(got, tuple):
                return got
            whole = self.reassembler.add(got)
            if whole is None:
                return ()
            # A reassembled text may only be an env frame: parts never nest.
            result = decode(whole, self.limits, self.limits.max_total_bytes, allow_part=False)
            if isinstance(result, Part):  # unreachable with allow_part=False; keeps the type exact
                raise ProtocolError(Reason.MALFORMED, "nested part")
            return result
        except ProtocolError as err:
            raise err.logged(op="frame") from None
