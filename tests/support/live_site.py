"""A live site for end-to-end tests: simulated meters, the real bridge process, and helpers to drive them."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.bootstrap import get_services
from infra.local.bridge_process import BridgeProcess, start_bridge, write_bridge_config
from infra.local.host import LocalHost
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor, build_site


@pytest.fixture()
def live_site(cloud: LocalHost, new_operator: OperatorFixture,
              tmp_path: Path) -> Iterator[tuple[SiteFixture, BridgeProcess]]:
    site = build_site(new_operator, tmp_path / "site", meters=6, reading_interval_s=3600)
    config = write_bridge_config(tmp_path / "bridge", cloud_url=cloud.ws_url, bridge_id=site.bundle.bridge_id,
                                 site_id=site.site_id, credential=site.bundle.credential,
                                 keyrings=site.bundle.keyrings, buses=site.simulator.ready["buses"])
    bridge = start_bridge(config)
    try:
        wait_for_connection(site)
        yield site, bridge
    finally:
        bridge.stop()
        site.simulator.stop()


def wait_for_connection(site: SiteFixture) -> None:
    def connected() -> bool:
        bridge = get_services().bridge_link.bridge(site.operator_id, site.bundle.bridge_id)
        return bridge is not None and bridge.connection_id is not None

    wait_for(connected, "the bridge to connect")


def wait_for(condition: Any, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def simulated(site: SiteFixture) -> dict[int, dict[str, Any]]:
    with urllib.request.urlopen(f"{site.simulator.control_url}/state", timeout=5) as response:
        state = json.load(response)
    meters = [m for bus in state["buses"] for m in bus["meters"]] if "buses" in state else state["meters"]
    return {m["address"]: m for m in meters}


def post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()


def read_meter_now(site: SiteFixture, operator: OperatorFixture, meter_id: str) -> dict[str, Any]:
    services = get_services()
    before = services.readings.get_states(site.operator_id, site.site_id, [meter_id])
    previous = before[0].read_at if before else None
    services.site_control.read_now(admin_actor(operator), site.site_id, meter_id)

    def fresh() -> bool:
        now = services.readings.get_states(site.operator_id, site.site_id, [meter_id])
        return bool(now) and now[0].read_at != previous

    wait_for(fresh, f"a fresh reading of {meter_id}")
    return services.readings.get_states(site.operator_id, site.site_id, [meter_id])[0].values


