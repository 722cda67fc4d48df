"""In a real browser, on a live simulated site with the real bridge: the status board's row colours match what the
simulated meters say (balances set through the simulator's control API, one meter dead, one on no account), the
legend's colours are the rows' colours, the board refreshes itself without a reload, the legend and the filters
narrow the rows, and the Excel download holds what the screen shows."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.domain.tenancy import Building, Unit
from chalicelib.services.audit import operation
from chalicelib.services.sales import new_request_token
from infra.local.host import LocalHost
from tests.browser.test_cashier_sale import log_in
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor
from tests.support.live_site import live_site, post, read_meter_now, simulated, wait_for  # noqa: F401  (a fixture)

pytestmark = pytest.mark.browser
REFRESH_WAIT_MS = 16_000  # the board refreshes every 10 s
ALL_STATES = {"opened", "alarm-1", "alarm-2", "arrears", "not-opened", "lost-contact"}


def read_site(site: SiteFixture, operator: OperatorFixture) -> None:
    """One whole-site reading cycle through the bridge, waited for on a meter that answers."""
    services, witness = get_services(), site.meters[0].meter_id
    before = services.readings.get_states(site.operator_id, site.site_id, [witness])
    previous = before[0].read_at if before else None
    services.site_control.read_now(admin_actor(operator), site.site_id)

    def fresh() -> bool:
        now = services.readings.get_states(site.operator_id, site.site_id, [witness])
        return bool(now) and now[0].read_at != previous

    wait_for(fresh, "a whole-site reading", timeout_s=30)


def expected_state(truth: dict[str, Any], opened: bool, dead: bool) -> str:
    """What the board must show for a simulated meter, from the simulator's own registers."""
    bits = int(truth["status_bits"])
    if dead:
        return "lost-contact"
    if not opened:
        return "not-opened"
    for bit, state in ((4, "arrears"), (2, "alarm-2"), (1, "alarm-1")):
        if bits & bit:
            return state
    return "opened"


@pytest.fixture()
def board_site(live_site: tuple[SiteFixture, Any],  # noqa: F811  (the fixture, imported)
               new_operator: OperatorFixture) -> Iterator[tuple[SiteFixture, set[str], str]]:
    """Meters 1-4 and 6 on an account, 5 on none; balances 45.00 (alarm 1), 15.00 (alarm 2) and -0.50 (arrears) on
    meters 2-4; meter 6 dead for three cycles. Meters 1-3 in Block A, floor 1; 4-6 in Block B, floor 2."""
    site, _ = live_site
    services, op, now = get_services(), site.operator_id, get_services().clock.now()
    for building_id, name, floor in (("b1", "Block A", "1"), ("b2", "Block B", "2")):
        services.tenancy.add_building(Building(op, site.site_id, building_id, name, (floor,)),
                                      operation(op, "test", "building.create", building_id, now))
    services.tenancy.add_units([Unit(op, site.site_id, m.unit_id, "b1" if n < 3 else "b2", "1" if n < 3 else "2",
                                     f"{'A' if n < 3 else 'B'}{n + 1:02d}") for n, m in enumerate(site.meters)])
    read_site(site, new_operator)  # a prepaid meter is read before it can join an account
    opened = {m.meter_id for m in site.meters if m.address != 5}
    services.sales.open_account(admin_actor(new_operator), site.site_id, "Noodle bar", sorted(opened),
                                request_id=new_request_token())
    control = f"{site.simulator.control_url}/meters/{site.collector_id}"
    for address, balance in ((2, "45.00"), (3, "15.00"), (4, "-0.50")):
        post(f"{control}/{address}/remaining", {"remaining_amount": balance})
    dead = site.meters[5].meter_id
    post(f"{control}/6/fault", {"dead": True})
    for _ in range(3):  # lost contact after three missed cycles
        read_site(site, new_operator)
    stored = services.readings.get_states(op, site.site_id, [dead])[0]
    assert stored.missed_cycles >= 3
    yield site, opened, dead
    post(f"{control}/6/fault", {"dead": False})


def row_colour(page: Any, selector: str) -> str:
    return str(page.eval_on_selector(selector, "el => getComputedStyle(el).backgroundColor"))


def test_the_board_matches_the_simulated_meters_refreshes_itself_and_filters(
        page: Any, cloud: LocalHost, board_site: tuple[SiteFixture, set[str], str],
        new_operator: OperatorFixture) -> None:
    from playwright.sync_api import expect

    site, opened, dead = board_site
    base = cloud.http_url
    log_in(page, base, new_operator.operator_id, new_operator.admin_username, new_operator.admin_password)
    page.goto(f"{base}/sites/{site.site_id}")
    page.click("#board-link")
    page.wait_for_url(f"{base}/sites/{site.site_id}/board")

    truth = simulated(site)
    expected = {m.meter_id: expected_state(truth[m.address], m.meter_id in opened, m.meter_id == dead)
                for m in site.meters}
    assert set(expected.values()) == ALL_STATES  # every colour of SPEC 15 is on the screen
    legend_colours = {}
    for meter_id, state in expected.items():
        row = f"#board tr[data-meter={meter_id}]"
        expect(page.locator(row)).to_have_class(f"board-{state}")
        legend_colours[state] = row_colour(page, f"#board-legend li.board-{state} .board-swatch")
        assert row_colour(page, row) == legend_colours[state]  # the legend explains the row's colour
        expect(page.locator(f"#board-legend [data-count={state}]")).to_have_text("1")
    assert len(set(legend_colours.values())) == len(ALL_STATES)  # no two states share a colour
    expect(page.locator(f"#board tr[data-meter={dead}] td.board-state")).to_have_text("Lost contact")
    arrears_row = page.locator(f"#board tr[data-meter={site.meters[3].meter_id}]")
    expect(arrears_row).to_contain_text("-0.50")
    expect(arrears_row).to_contain_text("tripped")

    # The board refreshes itself: the first meter drops below alarm 1, and its row turns without a reload.
    page.evaluate("window.notReloaded = true")
    first = site.meters[0]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{first.address}/remaining",
         {"remaining_amount": "44.00"})
    read_meter_now(site, new_operator, first.meter_id)
    expect(page.locator(f"#board tr[data-meter={first.meter_id}]")).to_have_class("board-alarm-1",
                                                                                  timeout=REFRESH_WAIT_MS)
    expect(page.locator("#board-legend [data-count=alarm-1]")).to_have_text("2")
    assert page.evaluate("window.notReloaded") is True

    # The legend filters by state; the filters by building and floor, and the search, narrow the rows.
    page.click("#board-legend a[data-state=arrears]")
    expect(page.locator("#board tbody tr")).to_have_count(1)
    expect(page.locator("#board tbody tr")).to_have_attribute("data-meter", site.meters[3].meter_id)
    page.click("text=Clear filters")
    expect(page.locator("#board tbody tr")).to_have_count(6)
    page.select_option("#board-filter select[name=building]", "b2")
    page.click("#board-filter button[type=submit]")
    expect(page.locator("#board tbody tr")).to_have_count(3)
    page.select_option("#board-filter select[name=floor]", "2")
    page.fill("#board-filter input[name=q]", "sn0005")
    page.click("#board-filter button[type=submit]")
    expect(page.locator("#board tbody tr")).to_have_count(1)
    expect(page.locator("#board tbody tr")).to_have_class("board-not-opened")
    page.click("text=Clear filters")
    page.fill("#board-filter input[name=q]", "no such shop")
    page.click("#board-filter button[type=submit]")
    expect(page.locator("#board tbody tr")).to_have_count(0)
    expect(page.locator("#board-empty")).to_be_visible()

    # The export of the whole board, opened back: each meter's state in words, as on the screen.
    page.click("text=Clear filters")
    with page.expect_download() as download:
        page.click("#board-export")
    from openpyxl import load_workbook

    assert download.value.suggested_filename.startswith(f"board-{site.site_id}-")
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][4] == "Meter ID" and rows[0][10] == "State"
    words = {"opened": "Opened", "alarm-1": "Alarm 1", "alarm-2": "Alarm 2", "arrears": "Arrears",
             "not-opened": "Not opened", "lost-contact": "Lost contact"}
    on_screen = {**expected, first.meter_id: "alarm-1"}
    assert {row[4]: row[10] for row in rows[1:]} == {m: words[s] for m, s in on_screen.items()}
