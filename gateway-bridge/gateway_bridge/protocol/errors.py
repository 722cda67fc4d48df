"""The one exception the tunnel protocol raises, and the typed reasons it carries.

Every rejection of untrusted input is a :class:`ProtocolError` with a :class:`Reason`; callers
catch that one type. Each rejection is logged once at WARNING with its reason (never key material).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

log = logging.getLogger("gateway_bridge.protocol")


class Reason(StrEnum):
    """Why an input was rejected. The values are stable: they appear in logs and metrics."""

    MALFORMED = "malformed"  # not the JSON / base64 / binary layout the protocol defines
    OVERSIZED = "oversized"  # larger than a configured limit
    TRUNCATED = "truncated"  # shorter than its own structure says it must be
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"  # key id not in the collector's key ring
    KEY_RETIRED = "key_retired"  # the previous key, after its overlap window closed
    SUITE_MISMATCH = "suite_mismatch"  # header names another cipher suite than the key's (downgrade)
    AUTH_FAILED = "auth_failed"  # MAC / GCM tag mismatch: tampered, or sealed under another key
    WRONG_DIRECTION = "wrong_direction"  # authentic, but sent the other way (reflected)
    REPLAYED = "replayed"  # sequence number already accepted (or older than the replay window)
    REORDERED = "reordered"  # never seen, but older than the newest accepted sequence number
    STALE = "stale"  # timestamp outside the accepted window
    KEY_EXHAUSTED = "key_exhausted"  # sender side: the key reached its usage cap; rekey first
    INVALID_MESSAGE = "invalid_message"  # authentic payload that does not match the message schema
    PART_INCONSISTENT = "part_inconsistent"  # chunk contradicts earlier chunks of the same message
    PART_EXPIRED = "part_expired"  # an incomplete chunked message timed out


class ProtocolError(Exception):
    """A rejected input (or a refused seal). ``reason`` is the typed cause, ``detail`` a short text."""

    def __init__(self, reason: Reason, detail: str = "", **context: Any) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        self.context: dict[str, Any] = dict(context)
        self._logged = False

    def logged(self, **context: Any) -> ProtocolError:
        """Log this rejection once (the outermost public entry point adds its context), return self."""
        for name, value in context.items():
            self.context.setdefault(name, value)
        if not self._logged:
            self._logged = True
            where = " ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
            log.warning(
                "tunnel input rejected: reason=%s %s %s",
                self.reason.value,
                where,
                self.detail,
                extra={"tunnel_reason": self.reason.value},
            )
        return self
