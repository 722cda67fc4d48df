"""Collector keys, cipher suites and the per-collector key ring (current, pending, previous).

A key ring holds secrets: callers persist ``KeyRing.to_dict()`` in secret storage (bridge: a 0600
file or the SQLite store; cloud: KMS-encrypted attribute), never in logs. ``repr`` hides the bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from Crypto.Cipher import DES3
from Crypto.Random import get_random_bytes

from .errors import ProtocolError, Reason
from .strict import b64decode, b64encode

MAX_KEY_ID = 2**32 - 1
CHANNEL_ID_RE = re.compile(r"[A-Za-z0-9._:@/-]{1,64}")


class Suite(StrEnum):
    """Cipher suites; selectable per collector (crypto agility), switched through a rekey."""

    TDES_CBC_HMAC = "3des-cbc-hmac-sha256"  # the design card's 3DES, encrypt-then-MAC
    AES_GCM = "aes-256-gcm"

    @property
    def code(self) -> int:
        """The suite's byte in the envelope header."""
        return _SUITE_CODES[self]

    @property
    def enc_len(self) -> int:
        return 24 if self is Suite.TDES_CBC_HMAC else 32

    @property
    def mac_len(self) -> int:
        # AES-GCM authenticates itself; 3DES gets an independent HMAC-SHA256 key.
        return 32 if self is Suite.TDES_CBC_HMAC else 0

    @property
    def soft_limit(self) -> int:
        """Usage per direction after which a rekey is due (see ``Channel.needs_rotation``).

        3DES counts 64-bit blocks: 2^18 per direction keeps the key under 2^19 in total when the
        rekey starts, far from NIST's 2^20 cap. AES-GCM counts messages (random 96-bit nonces).
        """
        return 2**18 if self is Suite.TDES_CBC_HMAC else 2**30

    @property
    def hard_limit(self) -> int:
        """Usage per direction at which sealing is refused: both directions together stay < 2^20."""
        return 2**19 if self is Suite.TDES_CBC_HMAC else 2**31


_SUITE_CODES = {Suite.TDES_CBC_HMAC: 1, Suite.AES_GCM: 2}
SUITE_BY_CODE = {code: suite for suite, code in _SUITE_CODES.items()}


def _check_3des(key: bytes) -> None:
    try:
        adjusted = DES3.adjust_key_parity(key)
    except ValueError:
        raise ProtocolError(Reason.INVALID_MESSAGE, "degenerate 3DES key") from None
    if adjusted != key:
        raise ProtocolError(Reason.INVALID_MESSAGE, "3DES key parity wrong")


@dataclass(frozen=True)
class CollectorKey:
    """One key generation of one collector: an id, a suite and its key bytes (hidden from repr)."""

    key_id: int
    suite: Suite
    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False, default=b"")
    created_ms: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.key_id <= MAX_KEY_ID:
            raise ProtocolError(Reason.INVALID_MESSAGE, "key id out of range")
        if len(self.enc) != self.suite.enc_len or len(self.mac) != self.suite.mac_len:
            raise ProtocolError(Reason.INVALID_MESSAGE, "key length wrong for suite")
        if self.suite is Suite.TDES_CBC_HMAC:
            _check_3des(self.enc)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, secrets included: store it as a secret."""
        return {
            "id": self.key_id,
            "suite": self.suite.value,
            "enc": b64encode(self.enc),
            "mac": b64encode(self.mac),
            "created_ms": self.created_ms,
        }

    @classmethod
    def from_dict(cls, data: object) -> CollectorKey:
        """Inverse of ``to_dict``; any defect raises ``ProtocolError(INVALID_MESSAGE)``."""
        if not isinstance(data, dict):
            raise ProtocolError(Reason.INVALID_MESSAGE, "key is not an object")
        key_id, created = data.get("id"), data.get("created_ms", 0)
        if type(key_id) is not int or type(created) is not int or created < 0:
            raise ProtocolError(Reason.INVALID_MESSAGE, "key id / created_ms not integers")
        try:
            suite = Suite(str(data.get("suite")))
        except ValueError:
            raise ProtocolError(Reason.INVALID_MESSAGE, "unknown suite") from None
        enc = b64decode(data.get("enc"), "key.enc", 64)
        mac = b64decode(data.get("mac"), "key.mac", 64)
        return cls(key_id, suite, enc, mac, created)


def generate_key(key_id: int, suite: Suite = Suite.TDES_CBC_HMAC, created_ms: int = 0) -> CollectorKey:
    """A fresh random key; 3DES keys are drawn until ``adjust_key_parity`` accepts them."""
    mac = get_random_bytes(suite.mac_len)
    if suite is Suite.AES_GCM:
        return CollectorKey(key_id, suite, get_random_bytes(32), mac, created_ms)
    while True:
        try:
            # Rejects K1 == K2 or K2 == K3 (3DES collapsing to single DES); rare, so just redraw.
            enc = DES3.adjust_key_parity(get_random_bytes(24))
        except ValueError:
            continue
        return CollectorKey(key_id, suite, enc, mac, created_ms)


@dataclass
class KeyRing:
    """A collector's keys: ``current`` seals; ``pending`` awaits the peer's proof; ``previous``
    still opens until ``previous_until_ms`` (in-flight messages across a switch)."""

    current: CollectorKey
    pending: CollectorKey | None = None
    previous: CollectorKey | None = None
    previous_until_ms: int = 0
    retired_id: int | None = None  # last key id that left the ring, to log KEY_RETIRED not UNKNOWN

    def lookup(self, key_id: int, now_ms: int) -> tuple[CollectorKey, bool]:
        """The key for ``key_id`` and whether it is the pending one; rejects unknown / retired ids."""
        if key_id == self.current.key_id:
            return self.current, False
        if self.pending is not None and key_id == self.pending.key_id:
            return self.pending, True
        if self.previous is not None and key_id == self.previous.key_id:
            if now_ms <= self.previous_until_ms:
                return self.previous, False
            raise ProtocolError(Reason.KEY_RETIRED, "previous key past its overlap window")
        if key_id == self.retired_id:
            raise ProtocolError(Reason.KEY_RETIRED, "key id retired")
        raise ProtocolError(Reason.UNKNOWN_KEY, "key id not in ring")

    def stage(self, key: CollectorKey) -> None:
        """Install ``key`` as pending (it opens, but does not seal, until promoted)."""
        known = {self.current.key_id, self.previous.key_id if self.previous else None, self.retired_id}
        if key.key_id in known:
            raise ProtocolError(Reason.INVALID_MESSAGE, "new key reuses a known key id")
        self.pending = key

    def promote(self, now_ms: int, overlap_ms: int) -> None:
        """Switch: pending becomes current; the old current opens for ``overlap_ms`` more."""
        if self.pending is None:
            raise ProtocolError(Reason.UNKNOWN_KEY, "no pending key to promote")
        if self.previous is not None:
            self.retired_id = self.previous.key_id
        self.previous, self.current, self.pending = self.current, self.pending, None
        self.previous_until_ms = now_ms + overlap_ms

    def key_ids(self) -> set[int]:
        """Ids whose usage is still worth counting."""
        keys = (self.current, self.pending, self.previous)
        return {k.key_id for k in keys if k is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form including secrets."""
        return {
            "current": self.current.to_dict(),
            "pending": self.pending.to_dict() if self.pending else None,
            "previous": self.previous.to_dict() if self.previous else None,
            "previous_until_ms": self.previous_until_ms,
            "retired_id": self.retired_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyRing:
        """Inverse of ``to_dict`` (trusted storage, but still validated)."""
        pending, previous = data.get("pending"), data.get("previous")
        return cls(
            current=CollectorKey.from_dict(data["current"]),
            pending=CollectorKey.from_dict(pending) if pending else None,
            previous=CollectorKey.from_dict(previous) if previous else None,
            previous_until_ms=int(data.get("previous_until_ms", 0)),
            retired_id=data.get("retired_id"),
        )


def check_channel_id(channel: object) -> str:
    """A channel (collector) id as it may appear on the wire, or ``ProtocolError(MALFORMED)``."""
    if not isinstance(channel, str) or not CHANNEL_ID_RE.fullmatch(channel):
        raise ProtocolError(Reason.MALFORMED, "bad channel id")
    return channel
