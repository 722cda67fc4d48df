"""Integration fixtures: the real app served by a LocalHost, pushing to bridges through its management API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.host import LocalHost


@pytest.fixture(scope="module")
def cloud(ddb: str) -> Iterator[LocalHost]:
    from app import app
    from infra.local.stack import use_management_api

    host = LocalHost(app, run_schedules=False)
    host.start()
    use_management_api(host.management_url)
    try:
        yield host
    finally:
        host.stop()


from tests.support.live_site import live_site  # noqa: E402,F401  (a fixture: registered by being here)
