"""Strict decoding of untrusted text: JSON and base64 that can only fail with a ProtocolError.

The standard library raises a zoo of exceptions on hostile input (JSONDecodeError, RecursionError on
deep nesting, ValueError on huge integers, binascii.Error); these helpers fold them into
``Reason.MALFORMED`` so callers handle exactly one type.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import ProtocolError, Reason


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys make a message mean different things to different parsers; refuse them.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ProtocolError(Reason.MALFORMED, "duplicate JSON key")
    return obj


def _no_constant(name: str) -> Any:
    raise ProtocolError(Reason.MALFORMED, f"JSON constant {name} not allowed")


def loads(text: str | bytes, what: str) -> Any:
    """Parse JSON or raise ``ProtocolError(MALFORMED)``; NaN/Infinity and duplicate keys refused."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError, TypeError):
        raise ProtocolError(Reason.MALFORMED, f"{what} is not valid JSON") from None


def dumps(obj: Any) -> str:
    """Compact, ASCII-only JSON (frames must be ASCII so that characters equal bytes)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def b64decode(text: object, what: str, max_chars: int) -> bytes:
    """Decode canonical standard base64 or raise ``ProtocolError``.

    Canonical means re-encoding gives the same text, so one byte string has exactly one spelling
    and a mutated text can never decode to an already-accepted envelope unnoticed.
    """
    if not isinstance(text, str):
        raise ProtocolError(Reason.MALFORMED, f"{what} is not a string")
    if len(text) > max_chars:
        raise ProtocolError(Reason.OVERSIZED, f"{what} longer than {max_chars} characters")
    if not text.isascii():
        raise ProtocolError(Reason.MALFORMED, f"{what} is not base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(Reason.MALFORMED, f"{what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ProtocolError(Reason.MALFORMED, f"{what} is not canonical base64")
    return raw


def b64encode(raw: bytes) -> str:
    """Standard base64 as text."""
    return base64.b64encode(raw).decode("ascii")
