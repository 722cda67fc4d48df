"""In a real browser, on a live simulated site with the real bridge: a cashier sells to a tripped meter, gets the
receipt (page and PDF), and sees the sale delivered while the simulated meter's relay closes; a receipt and an
account page left open while the bridge is away catch up by themselves when it returns."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.services.sales import new_request_token
from infra.local.bridge_process import BridgeProcess, start_bridge
from infra.local.host import LocalHost
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor
from tests.support.live_site import (  # noqa: F401  (live_site: a fixture, found by being imported here)
    live_site,
    post,
    read_meter_now,
    simulated,
    wait_for,
)

pytestmark = pytest.mark.browser
WITHIN_SECONDS_MS = 10_000


def add_cashier(operator: OperatorFixture) -> tuple[str, str]:
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.domain.access import Grant, Role
    from chalicelib.domain.staff import StaffUser
    from chalicelib.services.audit import operation

    username, password, now = "till", f"till-{secrets.token_hex(6)}", SystemClock().now()
    user = StaffUser(operator.operator_id, username, "Till One", Argon2PasswordHasher().hash(password),
                     Grant(Role.CASHIER), created_at=now)
    get_services().staff_repo.create(user, operation(operator.operator_id, "test", "staff.create",
                                                     f"staff:{username}", now, after=user.public_view()))
    return username, password


def log_in(page: Any, portal_url: str, company: str, username: str, password: str) -> None:
    page.goto(f"{portal_url}/login")
    page.fill("input[name=company]", company)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal_url}/dashboard")


def tripped_account(site: SiteFixture, operator: OperatorFixture) -> tuple[str, int]:
    """The first meter put in arrears (relay open, as the cloud has read it) on a new account: (account id, the
    meter's purchase count before the sale)."""
    meter = site.meters[0]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{meter.address}/remaining",
         {"remaining_amount": "-3.00"})
    before = read_meter_now(site, operator, meter.meter_id)
    assert before["relay_state"] == 1  # tripped
    stored = get_services().sales.open_account(admin_actor(operator), site.site_id, "Noodle bar", [meter.meter_id],
                                               unit="A101", request_id=new_request_token())
    return stored.account.account_id, int(before["purchase_count"])


def test_a_cashier_sells_to_a_tripped_meter_and_its_relay_closes(
        page: Any, cloud: LocalHost, live_site: tuple[SiteFixture, BridgeProcess],  # noqa: F811  (the fixture)
        new_operator: OperatorFixture) -> None:
    from playwright.sync_api import expect

    site, _ = live_site
    meter = site.meters[0]
    account_id, count_before = tripped_account(site, new_operator)
    username, password = add_cashier(new_operator)
    log_in(page, cloud.http_url, new_operator.operator_id, username, password)

    page.goto(f"{cloud.http_url}/sites/{site.site_id}/accounts/{account_id}")
    assert page.locator(".meter-money .balance").inner_text() == "-3.00"
    page.fill("form.sell input[name=amount]", "50.00")
    page.click("form.sell button[type=submit]")

    page.wait_for_url(re.compile(r"/receipts/e-[0-9a-f]+$"))
    entry_id = page.url.rsplit("/", 1)[1]
    assert "50.00" in page.locator(".receipt-amount").inner_text()
    # The receipt brings itself up to date while the meter confirms: no reload needed to print the count.
    expect(page.locator("#receipt-delivery")).to_have_text("Written into the meter", timeout=WITHIN_SECONDS_MS)
    expect(page.locator("#receipt-count")).to_have_text(str(count_before + 1))
    pdf = page.request.get(urljoin(page.url, page.locator("a", has_text="Download PDF").get_attribute("href")))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF-")

    page.click("text=Back")
    expect(page.locator(f"#ledger tr[data-entry='{entry_id}'] td.delivery")).to_contain_text(
        f"delivered · #{count_before + 1}", timeout=WITHIN_SECONDS_MS)
    truth = simulated(site)[meter.address]
    assert truth["relay"] == "closed"
    assert truth["purchase_count"] == count_before + 1
    assert Decimal("46.00") < Decimal(page.locator(".meter-money .balance").inner_text()) <= Decimal("47.00")


def test_a_sale_made_while_the_bridge_is_away_shows_itself_delivered_once_it_is_back(
        page: Any, cloud: LocalHost, live_site: tuple[SiteFixture, BridgeProcess],  # noqa: F811  (the fixture)
        new_operator: OperatorFixture) -> None:
    """The receipt and the account page are left open while the delivery waits; both catch up on their own."""
    from playwright.sync_api import expect

    site, bridge = live_site
    account_id, count_before = tripped_account(site, new_operator)
    username, password = add_cashier(new_operator)
    log_in(page, cloud.http_url, new_operator.operator_id, username, password)
    account_url = f"{cloud.http_url}/sites/{site.site_id}/accounts/{account_id}"
    page.goto(account_url)
    bridge.stop()
    wait_for(lambda: not bridge_connected(site), "the cloud to see the bridge gone")

    page.fill("form.sell input[name=amount]", "20.00")
    page.click("form.sell button[type=submit]")
    page.wait_for_url(re.compile(r"/receipts/e-[0-9a-f]+$"))
    entry_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#receipt-delivery")).to_have_text("Waiting to be sent to the meter")
    ledger = page.context.new_page()
    ledger.goto(account_url)
    delivery = ledger.locator(f"#ledger tr[data-entry='{entry_id}'] td.delivery")
    expect(delivery).to_contain_text("pending")

    revived = start_bridge(next(Path(bridge.log_path).parent.glob("*.toml")))
    try:
        expect(page.locator("#receipt-delivery")).to_have_text("Written into the meter", timeout=WITHIN_SECONDS_MS)
        expect(page.locator("#receipt-count")).to_have_text(str(count_before + 1))
        expect(delivery).to_contain_text(f"delivered · #{count_before + 1}", timeout=WITHIN_SECONDS_MS)
    finally:
        revived.stop()
    assert simulated(site)[site.meters[0].address]["relay"] == "closed"


def bridge_connected(site: SiteFixture) -> bool:
    bridge = get_services().bridge_link.bridge(site.operator_id, site.bundle.bridge_id)
    return bridge is not None and bridge.connection_id is not None
