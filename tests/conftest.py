"""Shared fixtures: DynamoDB Local (in memory, started once per session, stopped by PID)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop on the main thread for the
    rest of the session, which would break later tests that call ``asyncio.run``."""
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@dataclass(frozen=True)
class OperatorFixture:
    operator_id: str
    admin_username: str
    admin_password: str


@pytest.fixture(scope="session")
def ddb() -> Iterator[str]:
    """DynamoDB Local in memory with the project's tables; yields its endpoint."""
    from infra.local import dynamodb_local
    from infra.local.stack import configure_environment, prepare_tables

    server = dynamodb_local.start()
    try:
        configure_environment(server.endpoint, cookie_secure=True)
        prepare_tables()
        yield server.endpoint
    finally:
        server.stop()


def onboard_operator() -> OperatorFixture:
    """A fresh property operator with its administrator; tests stay apart by tenancy, not by tables."""
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.bootstrap import get_services
    from chalicelib.services.provisioning import OperatorOnboarding

    code = f"t-{secrets.token_hex(5)}"
    password = f"pw-{secrets.token_hex(8)}"
    OperatorOnboarding(get_services().tenancy, Argon2PasswordHasher(), SystemClock()).onboard(
        code, f"Test company {code}", "boss", password)
    return OperatorFixture(code, "boss", password)


@pytest.fixture()
def new_operator(ddb: str) -> OperatorFixture:
    return onboard_operator()


@pytest.fixture()
def other_operator(ddb: str) -> OperatorFixture:
    return onboard_operator()
