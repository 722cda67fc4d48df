"""A fresh operator for a benchmark: onboarded as the product onboards one, with its administrator's password."""

from __future__ import annotations

import secrets


def onboard(prefix: str, admin: str = "admin") -> tuple[str, str]:
    """A new operator named ``<prefix>-<random>``; returns its id and its administrator's password."""
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.bootstrap import get_services
    from chalicelib.services.provisioning import OperatorOnboarding

    op, password = f"{prefix}-{secrets.token_hex(3)}", f"pw-{secrets.token_hex(8)}"
    OperatorOnboarding(get_services().tenancy, Argon2PasswordHasher(), SystemClock()).onboard(
        op, prefix, admin, password)
    return op, password
