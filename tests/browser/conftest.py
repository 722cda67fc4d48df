"""Browser fixtures: the real app on a LocalHost, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.host import LocalHost

CHROMIUM = "/usr/bin/chromium"
QUIET_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
               "--disable-component-update", "--disable-default-apps", "--disable-sync", "--no-first-run",
               "--metrics-recording-only", "--disable-quic",
               "--disable-features=Translate,MediaRouter,OptimizationHints"]


@pytest.fixture(scope="session")
def portal_url(ddb: str) -> Iterator[str]:
    from app import app

    host = LocalHost(app, run_schedules=False)
    host.start()
    try:
        yield host.http_url
    finally:
        host.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=QUIET_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="module")
def cloud(ddb: str) -> Iterator[LocalHost]:
    """The app with its WebSocket gateway, for browser tests on a live site with the real bridge."""
    from tests.support.cloud_stack import app_with_bridge_gateway

    with app_with_bridge_gateway() as host:
        yield host
