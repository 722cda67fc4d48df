"""Shop tenants who sign in on their phones (issue 8), pure: who they are, what they may see, invitations.

A tenant belongs to one property operator and sees only the customer accounts they were invited to. They sign in
with a phone number or an e-mail address (unique within the operator) and a password; the log-in back-off is the
staff's (domain.staff). An invitation is single-use and expires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.staff import lock_duration

INVITATION_LIFETIME = timedelta(days=14)
RESET_LIFETIME = timedelta(hours=1)
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[a-z]{2,24}$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
LANGUAGES = ("zh_Hans", "en")


def normalise_login(text: str) -> str:
    """An e-mail address (lower-cased) or a phone number in international form (+8613800138000; spaces, dashes
    and a leading 00 are tolerated)."""
    raw = (text or "").strip()
    if "@" in raw:
        email = raw.lower()
        if not EMAIL.match(email):
            raise ValidationError("not an e-mail address", field="login")
        return email
    phone = re.sub(r"[\s\-()]", "", raw)
    phone = "+" + phone[2:] if phone.startswith("00") else phone
    if not PHONE.match(phone):
        raise ValidationError("a phone number in international form, like +8613800138000, or an e-mail address",
                              field="login")
    return phone


@dataclass(frozen=True)
class TenantUser:
    operator_id: str
    tenant_id: str
    login: str  # normalised: phone or e-mail
    display_name: str
    password_hash: str
    account_ids: tuple[str, ...]
    language: str = "zh_Hans"
    sms_alerts: bool = True  # alarm SMS to the tenant's phone (urgent ones are sent whatever the choice)
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None
    version: int = 0

    def sees(self, account_id: str) -> bool:
        return account_id in self.account_ids

    def with_account(self, account_id: str) -> TenantUser:
        return self if self.sees(account_id) else replace(self, account_ids=(*self.account_ids, account_id))

    def after_failed_login(self, now: datetime) -> TenantUser:
        failures = self.failed_logins + 1
        duration = lock_duration(failures)
        return replace(self, failed_logins=failures, locked_until=now + duration if duration else None)

    def preferences(self, language: str, sms_alerts: bool) -> TenantUser:
        if language not in LANGUAGES:
            raise ValidationError("language: zh_Hans or en", field="language")
        return replace(self, language=language, sms_alerts=sms_alerts)


@dataclass(frozen=True)
class TenantActor:
    """A signed-in tenant, resolved once per request from their session."""

    operator_id: str
    tenant_id: str
    display_name: str
    login: str
    account_ids: tuple[str, ...]
    session_id: str
    csrf_token: str
    language: str = "zh_Hans"
    source_ip: str = ""

    @property
    def username(self) -> str:
        """How the operation log and the ledger name a tenant (never a staff username: those have no colon)."""
        return f"tenant:{self.tenant_id}"


@dataclass(frozen=True)
class Invitation:
    """A single-use link (and QR code) to one customer account."""

    operator_id: str
    invitation_id: str
    account_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_by: str | None = None  # tenant id, once used

    def usable(self, now: datetime) -> bool:
        return self.used_by is None and now < self.expires_at


def invitation_path(invitation: Invitation) -> str:
    """Where an invitation is accepted (the link and QR code add the host)."""
    return f"/t/{invitation.operator_id}/invite/{invitation.invitation_id}"
