"""On a phone-sized browser, on a live simulated site with the real bridge: a shop tenant signs in, sees their meter
in arrears and tripped, pays by the local card page, and within seconds sees the credit delivered and the power
back on — while the simulated meter's relay closes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.services.sales import new_request_token
from infra.local.host import LocalHost
from infra.local.stack import use_public_url
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor
from tests.support.live_site import live_site, post, read_meter_now, simulated  # noqa: F401  (a fixture)

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}
WITHIN_SECONDS_MS = 15_000
TENANT_LOGIN, TENANT_PASSWORD = "+8613700001234", "shop-phone-2468"


@pytest.fixture()
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture()
def app_knows_its_address(cloud: LocalHost) -> Iterator[None]:
    """The local card page posts its signed events to the app's own webhook, at its public address."""
    before = os.environ.get("VOLTVEND_PUBLIC_URL")
    use_public_url(cloud.http_url)
    yield
    if before is None:
        os.environ.pop("VOLTVEND_PUBLIC_URL", None)
    else:
        os.environ["VOLTVEND_PUBLIC_URL"] = before


def tenant_of_a_tripped_meter(site: SiteFixture, operator: OperatorFixture) -> str:
    """The first meter in arrears (relay open), on an account whose tenant signed up: the meter id."""
    meter = site.meters[0]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{meter.address}/remaining",
         {"remaining_amount": "-6.00"})
    assert read_meter_now(site, operator, meter.meter_id)["relay_state"] == 1
    services, admin = get_services(), admin_actor(operator)
    stored = services.sales.open_account(admin, site.site_id, "Phone shop", [meter.meter_id],
                                         request_id=new_request_token())
    invitation = services.tenant_auth.invite(admin, site.site_id, stored.account.account_id)
    services.tenant_auth.accept(operator.operator_id, invitation.invitation_id, login=TENANT_LOGIN,
                                display_name="Ah Fai", password=TENANT_PASSWORD)
    return meter.meter_id


def test_a_tenant_pays_for_a_tripped_meter_on_a_phone_and_the_power_comes_back(
        phone: Any, cloud: LocalHost, app_knows_its_address: None,
        live_site: tuple[SiteFixture, Any], new_operator: OperatorFixture) -> None:  # noqa: F811
    from playwright.sync_api import expect

    site, _ = live_site
    meter_id = tenant_of_a_tripped_meter(site, new_operator)
    meter = next(m for m in site.meters if m.meter_id == meter_id)
    op = new_operator.operator_id

    phone.goto(f"{cloud.http_url}/t/{op}/login")
    phone.fill("input[name=login]", "+86 137 0000 1234")
    phone.fill("input[name=password]", TENANT_PASSWORD)
    phone.click("#tenant-login button[type=submit]")
    card = phone.locator(f"a.tenant-meter[data-meter='{meter_id}']")
    expect(card).to_have_class("tenant-meter state-tripped")
    expect(card.locator(".balance")).to_have_text("-6.00")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing wider than the phone

    card.click()  # the tenant's pages are in their language (Simplified Chinese by default): judge by state classes
    expect(phone.locator("#summary")).to_have_class(re.compile(r"\bstate-tripped\b"))
    phone.click("#top-up")
    phone.fill("#amount", "50.00")
    phone.click("#pay-by-card")
    phone.wait_for_url("**/pay/local/**")
    expect(phone.locator("#pay-amount")).to_contain_text("50.00")
    phone.fill("#card-number", "4242 4242 4242 4242")
    phone.click("#pay")

    expect(phone.locator("#delivery-state")).to_have_attribute("data-state", "delivered", timeout=WITHIN_SECONDS_MS)
    expect(phone.locator("#power")).to_have_attribute("data-closed", "yes", timeout=WITHIN_SECONDS_MS)
    truth = simulated(site)[meter.address]
    assert truth["relay"] == "closed"
    phone.goto(f"{cloud.http_url}/t/{op}/meters/{meter_id}")
    expect(phone.locator("#summary")).not_to_have_class(re.compile(r"\bstate-tripped\b"))
    expect(phone.locator("#purchases")).to_contain_text("50.00")
