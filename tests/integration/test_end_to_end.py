"""End to end: cloud ⇄ real bridge process ⇄ simulated meters, over real sockets and DynamoDB Local."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from chalicelib.bootstrap import get_services
from infra.local.bridge_process import BridgeProcess
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor
from tests.support.live_site import post, read_meter_now, simulated, wait_for


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
