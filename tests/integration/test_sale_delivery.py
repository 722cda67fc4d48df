"""End to end: a cashier's sale reaches the simulated meter through the real bridge, exactly once, even when the
bridge dies in the middle of it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.services import credit_delivery
from chalicelib.services.sales import new_request_token
from infra.local.bridge_process import BridgeProcess, start_bridge
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor
from tests.support.live_site import post, read_meter_now, simulated, wait_for, wait_for_connection


def _delivery_state(site: SiteFixture, operator: OperatorFixture, meter_id: str, entry_id: str) -> str:
    _, lines = get_services().sales.meter_sales(admin_actor(operator), site.site_id, meter_id)
    return next(line.delivery_state for line in lines if line.entry.entry_id == entry_id)


def test_a_sale_to_a_tripped_meter_lifts_its_balance_and_closes_its_relay(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture) -> None:
    site, _ = live_site
    meter = site.meters[0]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{meter.address}/remaining",
         {"remaining_amount": "-3.00"})
    before = read_meter_now(site, new_operator, meter.meter_id)
    assert before["relay_state"] == 1  # tripped: in arrears
    admin, sales = admin_actor(new_operator), get_services().sales
    sales.open_account(admin, site.site_id, "Noodle bar", [meter.meter_id], request_id=new_request_token())

    sale = sales.sell(admin, site.site_id, meter.meter_id, request_id=new_request_token(), amount="50.00")

    wait_for(lambda: _delivery_state(site, new_operator, meter.meter_id, sale.entry_id) == "delivered",
             "the sale to be delivered")
    truth = simulated(site)[meter.address]
    assert truth["purchase_count"] == before["purchase_count"] + 1
    assert Decimal(truth["total_purchased"]) - Decimal(str(before["total_purchased"])) == Decimal("50.00")
    assert Decimal(truth["remaining_amount"]) > Decimal("46.00") and truth["relay"] == "closed"
    state = get_services().readings.get_states(site.operator_id, site.site_id, [meter.meter_id])[0]
    assert state.values["relay_state"] == 0  # the read-back is on the status at once, before the next cycle
    assert state.values["purchase_count"] == before["purchase_count"] + 1


def test_a_bridge_killed_mid_sale_delivers_exactly_once_when_it_returns(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credit_delivery, "PROBE_AFTER", timedelta(0))  # settle unanswered sends at the next sweep
    site, bridge = live_site
    meter = site.meters[1]
    before = read_meter_now(site, new_operator, meter.meter_id)
    admin, services = admin_actor(new_operator), get_services()
    services.sales.open_account(admin, site.site_id, "Key cutter", [meter.meter_id], request_id=new_request_token())

    sale = services.sales.sell(admin, site.site_id, meter.meter_id, request_id=new_request_token(), amount="25.00")
    bridge.kill()  # the command is on its way, or in the bridge, or on the bus: nobody knows which

    def offline() -> bool:
        found = services.bridge_link.bridge(site.operator_id, site.bundle.bridge_id)
        return found is not None and found.connection_id is None

    wait_for(offline, "the cloud to see the bridge gone")
    second = services.sales.sell(admin, site.site_id, meter.meter_id, request_id=new_request_token(), amount="5.00")
    assert _delivery_state(site, new_operator, meter.meter_id, second.entry_id) == "pending"  # waits in order

    config = next(Path(bridge.log_path).parent.glob("*.toml"))
    revived = start_bridge(config)
    try:
        wait_for_connection(site)

        def both_delivered() -> bool:
            services.credit_delivery.sweep(site.operator_id, site.site_id)  # what the minute job does
            return all(_delivery_state(site, new_operator, meter.meter_id, entry.entry_id) == "delivered"
                       for entry in (sale, second))

        wait_for(both_delivered, "both sales to be delivered", timeout_s=40)
    finally:
        revived.stop()
    truth = simulated(site)[meter.address]
    assert truth["purchase_count"] == before["purchase_count"] + 2  # two sales, two commands, none twice
    assert Decimal(truth["total_purchased"]) - Decimal(str(before["total_purchased"])) == Decimal("30.00")


def test_reconciliation_finds_credit_that_came_from_nowhere_once(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture) -> None:
    site, _ = live_site
    meter = site.meters[2]
    read_meter_now(site, new_operator, meter.meter_id)
    admin, services = admin_actor(new_operator), get_services()
    services.sales.open_account(admin, site.site_id, "Print shop", [meter.meter_id], request_id=new_request_token())
    sale = services.sales.sell(admin, site.site_id, meter.meter_id, request_id=new_request_token(), amount="20.00")
    wait_for(lambda: _delivery_state(site, new_operator, meter.meter_id, sale.entry_id) == "delivered",
             "the sale to be delivered")
    read_meter_now(site, new_operator, meter.meter_id)
    assert services.reconciliation.run(site.operator_id) == []  # ledger, count and total purchased agree

    truth = simulated(site)[meter.address]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{meter.address}/remaining",
         {"remaining_amount": str(Decimal(truth["remaining_amount"]) + 500)})  # credit nobody sold
    read_meter_now(site, new_operator, meter.meter_id)
    findings = services.reconciliation.run(site.operator_id)
    assert [f.discrepancy.kind.value for f in findings] == ["remaining-above-ledger"]
    services.reconciliation.run(site.operator_id)  # seen again: still the one alarm
    alarms = [a for a in services.alarms.alarms(site.operator_id, site.site_id)
              if a.kind.value == "ledger-discrepancy" and a.subject.subject_id == meter.meter_id]
    assert len(alarms) == 1 and alarms[0].cleared_at is None
    assert alarms[0].evidence["remaining"] > alarms[0].evidence["expected_remaining_ceiling_minor"]


def test_opening_an_account_writes_the_sites_alarm_amounts_and_hoarding_limit_into_the_meter(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture) -> None:
    site, _ = live_site
    meter = site.meters[3]
    read_meter_now(site, new_operator, meter.meter_id)
    admin, services = admin_actor(new_operator), get_services()
    services.sales.open_account(admin, site.site_id, "Tailor", [meter.meter_id], request_id=new_request_token())

    def settings_confirmed() -> bool:
        records = [r for r in services.tariffs.commands(admin, site.site_id)
                   if r.meter_id == meter.meter_id and r.kind == "settings"]
        return bool(records) and records[0].status == "delivered"

    wait_for(settings_confirmed, "the settings to be written and read back")
    truth = simulated(site)[meter.address]
    site_now = services.tenancy.get_site(site.operator_id, site.site_id)
    assert site_now is not None
    assert (Decimal(truth["alarm_amount_1"]), Decimal(truth["alarm_amount_2"]), Decimal(truth["hoarding_limit"])) == (
        Decimal(site_now.alarm_amount_1_minor).scaleb(-2), Decimal(site_now.alarm_amount_2_minor).scaleb(-2),
        Decimal(site_now.hoarding_limit_minor).scaleb(-2))
