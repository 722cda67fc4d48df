"""Back-office operators (the people who log in), their password rules and log-in back-off."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from chalicelib.domain.access import Grant
from chalicelib.domain.errors import AccountLocked, ValidationError

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
FREE_FAILURES = 5
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)


class StaffStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True)
class StaffUser:
    operator_id: str
    username: str
    display_name: str
    password_hash: str
    grant: Grant
    status: StaffStatus = StaffStatus.ACTIVE
    must_change_password: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None
    version: int = 0

    @property
    def is_active(self) -> bool:
        return self.status is StaffStatus.ACTIVE

    def public_view(self) -> dict[str, object]:
        """What the operation log and the API may show: never the hash or lockout internals."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.grant.role.value,
            "extra_permissions": sorted(p.value for p in self.grant.extra),
            "sites": sorted(self.grant.sites),
            "status": self.status.value,
        }


def validate_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise ValidationError(
            "username: 2-32 characters, lower-case letters, digits, dot, dash or underscore", field="username"
        )
    return name


def validate_display_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not 1 <= len(cleaned) <= 80:
        raise ValidationError("display name: 1-80 characters", field="display_name")
    return cleaned


def validate_new_password(password: str, *, username: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"password: at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"password: at most {MAX_PASSWORD_LENGTH} characters", field="password")
    if username and username.lower() in password.lower():
        raise ValidationError("password must not contain the username", field="password")
    return password


def lock_duration(failed_logins: int) -> timedelta | None:
    """Back-off after repeated failures: free attempts, then 30 s doubling up to 15 minutes."""
    if failed_logins < FREE_FAILURES:
        return None
    doubled = FIRST_LOCK * (2 ** (failed_logins - FREE_FAILURES))
    return min(doubled, LONGEST_LOCK)


def after_failed_login(user: StaffUser, now: datetime) -> StaffUser:
    failures = user.failed_logins + 1
    duration = lock_duration(failures)
    return replace(user, failed_logins=failures, locked_until=now + duration if duration else None)


class Lockable(Protocol):
    @property
    def locked_until(self) -> datetime | None: ...


def refuse_if_locked(user: Lockable, now: datetime) -> None:
    """Before any password is checked: a user still in back-off gets no answer about the password."""
    wait = seconds_locked(user, now)
    if wait:
        raise AccountLocked(f"too many failed attempts; try again in {wait} s", retry_after=wait)


def seconds_locked(user: Lockable, now: datetime) -> int:
    """Whole seconds the user must still wait, 0 if free to try."""
    if user.locked_until is None or user.locked_until <= now:
        return 0
    return max(1, int((user.locked_until - now).total_seconds() + 0.999))
