"""Remote supply control against the simulated site through the real bridge: batch trip, keep power, prepaid
control, and the cloud tripping a cloud-billed meter in arrears and restoring it when a sale lifts the balance."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from chalicelib.bootstrap import get_services
from chalicelib.domain.readings import Usage
from chalicelib.domain.tenancy import BillingMode
from chalicelib.services.meter_control import SupplyMode
from chalicelib.services.sales import new_request_token
from infra.local.bridge_process import BridgeProcess
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor
from tests.support.live_site import post, simulated, wait_for


def _batch_done(site: SiteFixture, operator: OperatorFixture, batch_id: str) -> bool:
    records = get_services().meter_control.batch(admin_actor(operator), site.site_id, batch_id)
    return all(r.status == "delivered" for r in records)


def test_a_batch_trip_of_three_meters_then_keep_power_and_back_to_prepaid_control(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture) -> None:
    site, _ = live_site
    control, admin = get_services().meter_control, admin_actor(new_operator)
    three = [m.meter_id for m in site.meters[:3]]
    tripped = control.set_mode(admin, site.site_id, three, SupplyMode.TRIP)
    assert len(tripped.records) == 3 and not tripped.skipped
    wait_for(lambda: _batch_done(site, new_operator, tripped.batch_id), "the batch trip to be confirmed")
    truth = simulated(site)
    assert [truth[m.address]["relay"] for m in site.meters[:4]] == ["open", "open", "open", "closed"]

    arrears = site.meters[0]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{arrears.address}/remaining",
         {"remaining_amount": "-2.00"})
    kept = control.set_mode(admin, site.site_id, [arrears.meter_id], SupplyMode.KEEP_POWER)
    wait_for(lambda: _batch_done(site, new_operator, kept.batch_id), "keep power to be confirmed")
    assert simulated(site)[arrears.address]["relay"] == "closed"  # on, although in arrears
    restored = control.set_mode(admin, site.site_id, [arrears.meter_id], SupplyMode.PREPAID_CONTROL)
    wait_for(lambda: _batch_done(site, new_operator, restored.batch_id), "prepaid control to be confirmed")
    assert simulated(site)[arrears.address]["relay"] == "open"  # the meter judges its own balance again
    log = get_services().oplog.page(admin, None, None)[1]
    assert {"meter.trip", "meter.keep-power", "meter.prepaid-control"} <= {r.action for r in log}


def test_the_cloud_trips_a_cloud_billed_meter_in_arrears_and_restores_it_after_a_sale(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture) -> None:
    site, _ = live_site
    services, admin = get_services(), admin_actor(new_operator)
    meter = replace(site.meters[4], billing_mode=BillingMode.CLOUD_BILLED)
    services.tenancy.add_meters([meter])
    services.sales.open_account(admin, site.site_id, "Car wash", [meter.meter_id], request_id=new_request_token())
    services.sales.sell(admin, site.site_id, meter.meter_id, request_id=new_request_token(), amount="1.00",
                        channel="transfer")
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    bridge_link = services.bridge_link
    assert bridge_link.charge_poster is not None
    bridge_link.charge_poster(site.operator_id, [Usage(meter.meter_id, now_ms - 60_000, now_ms, 300, 2_500_000, 250,
                                                       datetime.now(UTC).strftime("%Y-%m"))])

    def relay(state: str) -> bool:
        return bool(simulated(site)[meter.address]["relay"] == state)

    wait_for(lambda: relay("open"), "the cloud to trip the meter in arrears (1.00 − 2.50)")
    services.sales.sell(admin, site.site_id, meter.meter_id, request_id=new_request_token(), amount="5.00",
                        channel="cash")
    wait_for(lambda: relay("closed"), "the supply back once a sale lifts the balance above zero")
    kinds = [r.kind for r in services.tariffs.commands(admin, site.site_id) if r.meter_id == meter.meter_id]
    assert kinds[:2] == ["mode:keep-power", "mode:trip"]  # newest first
