"""End to end: cloud ⇄ real bridge process ⇄ simulated meters, over real sockets and DynamoDB Local."""

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
        wait_for(lambda: (b := get_services().bridge_link.bridge(site.operator_id, site.bundle.bridge_id)) is not None
                 and b.connection_id is not None, "the bridge to connect")
        yield site, bridge
    finally:
        bridge.stop()
        site.simulator.stop()


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


def test_read_now_reaches_every_meter_through_the_real_bridge(live_site: tuple[SiteFixture, BridgeProcess],
                                                              new_operator: OperatorFixture) -> None:
    site, _ = live_site
    services = get_services()
    started = time.time()
    assert services.site_control.read_now(admin_actor(new_operator), site.site_id) == 1

    def all_fresh() -> bool:
        states = services.readings.list_states(site.operator_id, site.site_id)
        return len([s for s in states if s.last_answer_at and s.last_answer_at.timestamp() >= started - 1]) == 6

    wait_for(all_fresh, "every meter's state")
    truth = simulated(site)
    for state in services.readings.list_states(site.operator_id, site.site_id):
        meter = next(m for m in site.meters if m.meter_id == state.meter_id)
        assert state.values["purchase_count"] == meter.address
        assert state.values["remaining_amount"] == truth[meter.address]["remaining_amount"]
    page_rows = services.sites.overview(admin_actor(new_operator), site.site_id).rows
    assert {row.condition.value for row in page_rows} <= {"normal", "alarm-1", "alarm-2", "arrears"}
