"""In a real browser, on a live simulated site with the real bridge: a batch trip of three meters with live
progress to "delivered" and the simulated relays open; keep power on an arrears meter closes its relay."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.host import LocalHost
from tests.browser.test_cashier_sale import log_in
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture
from tests.support.live_site import live_site, post, read_meter_now, simulated  # noqa: F401  (a fixture)

pytestmark = pytest.mark.browser
SETTLE_MS = 15_000


def test_a_batch_trip_shows_each_meter_delivered_and_keep_power_closes_an_arrears_meter(
        page: Any, cloud: LocalHost, live_site: tuple[SiteFixture, Any],  # noqa: F811  (the fixtures, imported)
        new_operator: OperatorFixture) -> None:
    from playwright.sync_api import expect

    site, _ = live_site
    log_in(page, cloud.http_url, new_operator.operator_id, new_operator.admin_username, new_operator.admin_password)
    page.goto(f"{cloud.http_url}/sites/{site.site_id}/control")
    three = site.meters[:3]
    for meter in three:
        page.check(f"#control-meters input[value='{meter.meter_id}']")
    page.select_option("select[name=operation]", "trip")
    page.click("#batch-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Confirm")
    for meter in three:
        expect(page.locator("section.card")).to_contain_text(meter.serial)
    page.click("#confirm-form button[type=submit]")
    page.wait_for_url("**/control/batch-*")
    statuses = page.locator("#batch-commands td.status")
    expect(statuses).to_have_count(3)
    for n in range(3):  # updated in place by the page's poller, no reload
        expect(statuses.nth(n)).to_have_text("delivered", timeout=SETTLE_MS)
    truth = simulated(site)
    assert [truth[m.address]["relay"] for m in site.meters[:4]] == ["open", "open", "open", "closed"]

    arrears = site.meters[3]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{arrears.address}/remaining",
         {"remaining_amount": "-4.00"})
    assert read_meter_now(site, new_operator, arrears.meter_id)["relay_state"] == 1
    page.goto(f"{cloud.http_url}/sites/{site.site_id}/meters/{arrears.meter_id}")
    expect(page.locator("#meter-state")).to_contain_text("-4.00")
    page.click("#meter-control button[value='keep-power']")
    page.click("#confirm-form button[type=submit]")
    expect(page.locator("#batch-commands td.status")).to_have_text("delivered", timeout=SETTLE_MS)
    assert simulated(site)[arrears.address]["relay"] == "closed"
