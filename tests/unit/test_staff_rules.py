from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.access import Grant, Role
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.staff import (
    StaffUser,
    after_failed_login,
    lock_duration,
    seconds_locked,
    validate_new_password,
    validate_username,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def user(failures: int = 0) -> StaffUser:
    return StaffUser("op", "amy", "Amy", "hash", Grant(Role.CASHIER), failed_logins=failures)


def test_first_failures_do_not_lock() -> None:
    current = user()
    for _ in range(4):
        current = after_failed_login(current, NOW)
        assert current.locked_until is None
    assert current.failed_logins == 4


def test_fifth_failure_locks_and_back_off_doubles_to_a_cap() -> None:
    assert lock_duration(5) == timedelta(seconds=30)
    assert lock_duration(6) == timedelta(seconds=60)
    assert lock_duration(7) == timedelta(seconds=120)
    assert lock_duration(30) == timedelta(minutes=15)
    locked = after_failed_login(user(4), NOW)
    assert seconds_locked(locked, NOW) == 30
    assert seconds_locked(locked, NOW + timedelta(seconds=31)) == 0


@pytest.mark.parametrize("name", ["a", "Has Space", "x" * 40, "-lead", "ünï"])
def test_bad_usernames(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_username(name)


def test_username_is_normalised() -> None:
    assert validate_username("  Amy.Li ") == "amy.li"


def test_password_rules() -> None:
    with pytest.raises(ValidationError):
        validate_new_password("short", username="amy")
    with pytest.raises(ValidationError):
        validate_new_password("amy-is-great-2026", username="amy")
    assert validate_new_password("correct horse battery", username="amy")
