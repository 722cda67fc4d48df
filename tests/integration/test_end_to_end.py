"""End to end: cloud ⇄ real bridge process ⇄ simulated meters, over real sockets and DynamoDB Local."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
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


def test_running_out_of_credit_raises_alarm_1_alarm_2_arrears_in_order_and_trips(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture) -> None:
    site, _ = live_site
    meter = site.meters[0]
    control = f"{site.simulator.control_url}/meters/{site.collector_id}/{meter.address}/remaining"
    read_meter_now(site, new_operator, meter.meter_id)  # 101.00: fine
    for balance in ("45.00", "15.00", "-0.50"):  # below alarm 1 (50.00), alarm 2 (20.00), then arrears
        post(control, {"remaining_amount": balance})
        values = read_meter_now(site, new_operator, meter.meter_id)
    assert values["relay_state"] == 1  # prepaid control opened the relay at zero
    services = get_services()
    history = services.alarm_queries.report(admin_actor(new_operator), site.site_id).history
    mine = [a for a in history if a.subject.subject_id == meter.meter_id]
    raised = [a.kind.value for a in sorted(mine, key=lambda a: a.raised_at)]
    assert raised == ["alarm-1", "alarm-2", "arrears"]
    services.notifier.send_due([site.operator_id])
    outbox = services.alarm_queries.report(admin_actor(new_operator), site.site_id).outbox
    by_alarm = {m.alarm_id.split(":")[2]: m for m in outbox}
    assert set(by_alarm) == {"alarm-1", "alarm-2", "arrears"}
    assert by_alarm["arrears"].status == "sent"  # urgent: never held for quiet hours
    for level in ("alarm-1", "alarm-2"):  # sent, or held until quiet hours end in the site's zone
        assert by_alarm[level].status == "sent" or by_alarm[level].not_before > datetime.now(UTC)
    assert all(m.recipient == "+8613800000000" for m in outbox)
    assert "欠费" in by_alarm["arrears"].text or "arrears" in by_alarm["arrears"].text.lower()


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


TARIFF = {"effective_from": "2026-01-01T00:00:00+08:00",
          "prices": {"sharp": "1.3100", "peak": "0.9700", "flat": "0.6600", "valley": "0.3300"},
          "schedule": [{"starts_on": [1, 1], "bands": [["00:00", "valley"], ["08:00", "flat"], ["18:00", "peak"],
                                                       ["19:00", "sharp"], ["21:00", "flat"], ["23:00", "valley"]]}]}


def test_a_tariff_reaches_every_prepaid_meter_and_is_confirmed_by_read_back(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture) -> None:
    site, _ = live_site
    services, actor = get_services(), admin_actor(new_operator)
    services.tariffs.add_site_version(actor, site.site_id, TARIFF)
    records = services.tariffs.push_prices(actor, site.site_id)
    assert len(records) == len(site.meters)

    def all_settled() -> bool:
        return all(r.status in {"delivered", "failed"} for r in services.tariffs.commands(actor, site.site_id))

    wait_for(all_settled, "every price push to be judged by its read-back")
    assert {r.status for r in services.tariffs.commands(actor, site.site_id)} == {"delivered"}
    for meter in simulated(site).values():
        assert {k: str(v) for k, v in meter["prices"].items()} == TARIFF["prices"]
