"""Gateway bridges as the cloud knows them: identity, credential check, and presence rules."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import ValidationError

BRIDGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
LOST_CONTACT_AFTER = timedelta(minutes=15)


class BridgeStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


def bridge_id_for(operator_id: str, name: str) -> str:
    """Bridge ids lead with the operator's id, so ``$connect`` finds the bridge without a global index."""
    if not BRIDGE_NAME.match(name):
        raise ValidationError("bridge name: 1-31 lower-case letters, digits or dashes", field="name")
    return f"{operator_id}.{name}"


def operator_of(bridge_id: str) -> str | None:
    operator_id, dot, name = bridge_id.partition(".")
    return operator_id if dot and operator_id and BRIDGE_NAME.match(name) else None


def new_credential() -> str:
    return secrets.token_urlsafe(32)


def credential_digest(credential: str) -> str:
    """A 256-bit random credential needs no slow hash: SHA-256 is irreversible for it."""
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Bridge:
    operator_id: str
    bridge_id: str
    site_id: str
    collectors: tuple[str, ...]
    credential_digest: str
    status: BridgeStatus = BridgeStatus.ACTIVE
    last_seen: datetime | None = None
    connection_id: str | None = None

    def accepts(self, credential: str) -> bool:
        if self.status is not BridgeStatus.ACTIVE or not credential:
            return False
        return hmac.compare_digest(credential_digest(credential), self.credential_digest)

    def accepts_connection(self, connection_id: str) -> bool:
        return self.status is BridgeStatus.ACTIVE and self.connection_id == connection_id

    def online(self, now: datetime, lost_after: timedelta = LOST_CONTACT_AFTER) -> bool:
        return self.connection_id is not None and self.last_seen is not None and now - self.last_seen < lost_after


@dataclass(frozen=True)
class TunnelState:
    collector_id: str
    keyring: dict[str, Any]
    inbound: dict[str, Any]
    outbound: dict[str, Any]
    version: int


@dataclass(frozen=True)
class BridgeConnection:
    connection_id: str
    operator_id: str
    bridge_id: str
    site_id: str
