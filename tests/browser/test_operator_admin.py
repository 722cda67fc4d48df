"""In a real browser: log in, create an operator, find it in the operation log; on a phone too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import OperatorFixture

pytestmark = pytest.mark.browser


def log_in(page: Any, portal_url: str, operator: OperatorFixture) -> None:
    page.goto(f"{portal_url}/login")
    page.fill("input[name=company]", operator.operator_id)
    page.fill("input[name=username]", operator.admin_username)
    page.fill("input[name=password]", operator.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal_url}/dashboard")


def test_create_operator_and_see_it_in_the_log(page: Any, portal_url: str, new_operator: OperatorFixture) -> None:
    log_in(page, portal_url, new_operator)
    page.click("nav >> text=Operators")
    page.click("text=New operator")
    page.fill("input[name=username]", "mia")
    page.fill("input[name=display_name]", "Mia Chen")
    page.select_option("select[name=role]", "cashier")
    page.fill("input[name=password]", "till-secret-4242")
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{portal_url}/staff/mia?created=1")
    page.click("nav >> text=Operation log")
    page.wait_for_url(f"{portal_url}/oplog")  # count() does not wait: on a busy machine the old page was still up
    row = page.locator("#oplog tbody tr", has_text="staff:mia")
    assert row.count() == 1
    assert "staff.create" in row.inner_text()
    assert "boss" in row.inner_text()
    page.click("nav >> text=Operators")
    page.wait_for_url(f"{portal_url}/staff")
    assert page.locator("#staff tbody tr", has_text="Mia Chen").count() == 1


def test_wrong_password_shows_the_error(page: Any, portal_url: str, new_operator: OperatorFixture) -> None:
    page.goto(f"{portal_url}/login")
    page.fill("input[name=company]", new_operator.operator_id)
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert "wrong" in page.locator("[role=alert]").inner_text()
    assert page.url.endswith("/login")


def test_chinese_on_a_phone(browser: Any, portal_url: str, new_operator: OperatorFixture) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    try:
        log_in(page, portal_url, new_operator)
        assert page.locator("h1").count() == 1
        page.click("label.nav-button")
        assert page.locator("nav >> text=操作日志").is_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360
    finally:
        context.close()
