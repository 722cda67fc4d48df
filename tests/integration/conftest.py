"""Integration fixtures: the real app served by a LocalHost, pushing to bridges through its management API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.host import LocalHost
from tests.support.cloud_stack import app_with_bridge_gateway


@pytest.fixture(scope="module")
def cloud(ddb: str) -> Iterator[LocalHost]:
    with app_with_bridge_gateway() as host:
        yield host

from tests.support.live_site import live_site  # noqa: E402,F401  (a fixture: registered by being here)
