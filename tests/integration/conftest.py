"""Integration fixtures: the real app served by a LocalHost, pushing to bridges through its management API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from infra.local.host import LocalHost
from tests.integration.portal_client import PortalClient
from tests.support.cloud_stack import app_with_bridge_gateway


@pytest.fixture()
def client(ddb: str) -> Iterator[Client]:
    """The app in process through Chalice's test client (routes, middleware, guards; no sockets)."""
    from app import app

    with Client(app) as test_client:
        yield test_client


@pytest.fixture()
def portal(client: Client) -> PortalClient:
    """A browser-like client of the portal pages: keeps cookies, finds form tokens."""
    return PortalClient(client)


@pytest.fixture(scope="module")
def cloud(ddb: str) -> Iterator[LocalHost]:
    with app_with_bridge_gateway() as host:
        yield host


from tests.support.live_site import live_site  # noqa: E402,F401  (a fixture: registered by being here)
