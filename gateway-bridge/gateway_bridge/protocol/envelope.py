"""The binary envelope: header layout, sealing and authenticated opening. No state, no policy.

Layout (big-endian), then base64 for the JSON text frames::

    0  u8   version (1)
    1  u8   suite (1 = 3DES-CBC + HMAC-SHA256/128, 2 = AES-256-GCM)
    2  u8   direction (1 = cloud->bridge, 2 = bridge->cloud)
    3  u8   flags (0; reserved)
    4  u32  key id
    8  u64  sequence number (per channel, per direction; starts at 1)
    16 u64  timestamp, ms since the Unix epoch, at sealing
    24 ...  3DES: IV(8) | ciphertext (PKCS#7, n*8) | tag(16)
            GCM:  nonce(12) | ciphertext | tag(16)

Authenticated data = DOMAIN | len(channel id) | channel id | header (24 bytes). The channel id is
bound implicitly (not sent inside the envelope), so an envelope moved to another collector fails.
3DES is encrypt-then-MAC: tag = HMAC-SHA256(mac key, AAD | IV | ciphertext)[:16].
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum

from Crypto.Cipher import AES, DES3
from Crypto.Random import get_random_bytes
from Crypto.Util.Padding import pad, unpad

from .errors import ProtocolError, Reason
from .keys import SUITE_BY_CODE, CollectorKey, Suite

VERSION = 1
HEADER = struct.Struct(">BBBBIQQ")
TAG_LEN = 16
DOMAIN = b"voltvend-tunnel/1"
_NONCE_LEN = {Suite.TDES_CBC_HMAC: 8, Suite.AES_GCM: 12}
_MAX_U64 = 2**64 - 1


class Direction(IntEnum):
    """Which way a message travels; authenticated so a message cannot be reflected back."""

    DOWN = 1  # cloud -> bridge
    UP = 2  # bridge -> cloud


@dataclass(frozen=True)
class Header:
    """The authenticated clear-text fields of an envelope."""

    suite: Suite
    direction: Direction
    key_id: int
    seq: int
    ts_ms: int

    def pack(self) -> bytes:
        if not (0 < self.seq <= _MAX_U64 and 0 <= self.ts_ms <= _MAX_U64):
            raise ProtocolError(Reason.MALFORMED, "sequence or timestamp out of range")
        return HEADER.pack(VERSION, self.suite.code, self.direction, 0, self.key_id, self.seq, self.ts_ms)


@dataclass(frozen=True)
class Envelope:
    """A structurally valid, not yet authenticated envelope."""

    header: Header
    raw_header: bytes
    nonce: bytes
    ciphertext: bytes
    tag: bytes


def _aad(channel: str, raw_header: bytes) -> bytes:
    cid = channel.encode("ascii")
    return DOMAIN + bytes([len(cid)]) + cid + raw_header


def _tdes_tag(key: CollectorKey, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    return hmac.digest(key.mac, aad + iv + ciphertext, "sha256")[:TAG_LEN]


def seal(key: CollectorKey, header: Header, plaintext: bytes, channel: str) -> bytes:
    """Encrypt and authenticate ``plaintext``; returns the envelope bytes."""
    raw_header = header.pack()
    aad = _aad(channel, raw_header)
    if key.suite is Suite.AES_GCM:
        nonce = get_random_bytes(12)
        gcm = AES.new(key.enc, AES.MODE_GCM, nonce=nonce, mac_len=TAG_LEN)
        gcm.update(aad)
        ciphertext, tag = gcm.encrypt_and_digest(plaintext)
        return raw_header + nonce + ciphertext + tag
    iv = get_random_bytes(8)
    ciphertext = DES3.new(key.enc, DES3.MODE_CBC, iv).encrypt(pad(plaintext, 8))
    return raw_header + iv + ciphertext + _tdes_tag(key, aad, iv, ciphertext)


def _parse_header(raw: bytes) -> Header:
    if len(raw) < HEADER.size:
        raise ProtocolError(Reason.TRUNCATED, "shorter than the header")
    version, suite_code, direction, flags, key_id, seq, ts_ms = HEADER.unpack_from(raw)
    if version != VERSION:
        raise ProtocolError(Reason.UNSUPPORTED_VERSION, f"envelope version {version}")
    suite = SUITE_BY_CODE.get(suite_code)
    if suite is None or flags != 0 or direction not in (1, 2):
        raise ProtocolError(Reason.MALFORMED, "unknown suite, flags or direction")
    return Header(suite, Direction(direction), key_id, seq, ts_ms)


def parse(raw: bytes) -> Envelope:
    """Split envelope bytes into their parts; checks structure only (nothing is authentic yet)."""
    header = _parse_header(raw)
    nonce_len = _NONCE_LEN[header.suite]
    body_len = len(raw) - HEADER.size - nonce_len - TAG_LEN
    block = 8 if header.suite is Suite.TDES_CBC_HMAC else 1
    # 3DES always carries at least one padded block; a ragged length means bytes went missing.
    if body_len < (8 if block == 8 else 0) or body_len % block:
        raise ProtocolError(Reason.TRUNCATED, "body length impossible for the suite")
    nonce_end = HEADER.size + nonce_len
    return Envelope(header, raw[: HEADER.size], raw[HEADER.size : nonce_end], raw[nonce_end:-TAG_LEN],
                    raw[-TAG_LEN:])


def open_(key: CollectorKey, env: Envelope, channel: str) -> bytes:
    """Verify the tag, then decrypt. Raises AUTH_FAILED (tampered / wrong key) or SUITE_MISMATCH."""
    if env.header.suite is not key.suite:
        raise ProtocolError(Reason.SUITE_MISMATCH, "header suite differs from the key's suite")
    aad = _aad(channel, env.raw_header)
    if key.suite is Suite.AES_GCM:
        gcm = AES.new(key.enc, AES.MODE_GCM, nonce=env.nonce, mac_len=TAG_LEN)
        gcm.update(aad)
        try:
            return gcm.decrypt_and_verify(env.ciphertext, env.tag)
        except ValueError:
            raise ProtocolError(Reason.AUTH_FAILED, "GCM tag mismatch") from None
    # Encrypt-then-MAC: nothing is decrypted before the tag checks out (no padding oracle).
    if not hmac.compare_digest(_tdes_tag(key, aad, env.nonce, env.ciphertext), env.tag):
        raise ProtocolError(Reason.AUTH_FAILED, "HMAC mismatch")
    plain = DES3.new(key.enc, DES3.MODE_CBC, env.nonce).decrypt(env.ciphertext)
    try:
        return unpad(plain, 8)
    except ValueError:
        raise ProtocolError(Reason.MALFORMED, "bad padding under a valid tag") from None


def usage(suite: Suite, ciphertext_len: int) -> int:
    """What one message costs against the key's limit: 64-bit blocks (3DES) or one (GCM)."""
    return ciphertext_len // 8 if suite is Suite.TDES_CBC_HMAC else 1
