"""Card payments end to end: a tenant pays a tripped meter on the local card page and the live site's meter gets the
credit and closes its relay; the real Stripe adapter against a local fake Stripe (keys set, nothing else changes);
the operator's payments page, JSON and settings; the tenant routes' tenancy."""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.bootstrap import get_services, reset_services
from chalicelib.domain.errors import Conflict
from chalicelib.domain.ledger import Channel, Entry, EntryKind
from chalicelib.domain.payments import PaymentStatus
from chalicelib.services.sales import new_request_token
from chalicelib.web.guards import signer
from infra.local.bridge_process import BridgeProcess
from infra.local.host import LocalHost
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor
from tests.support.fake_stripe import WEBHOOK_SECRET, FakeStripe
from tests.support.live_site import post, read_meter_now, simulated, wait_for
from tests.support.payments import (  # noqa: F401  (fixtures: registered by being imported)
    Shop,
    card_sales,
    deliver,
    make_shop,
    public_app_fixture,
    read_meter,
    session_of,
    shop_fixture,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REQUEST_ID = re.compile(r'name="request_id" value="([^"]+)"')


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 303 comes back as it is: the test looks at where it points


@dataclass
class Browser:
    """Plain HTTP with one cookie, against the live app (the card page's events go to it over HTTP too)."""

    base: str
    cookie: str = ""

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        url = path if path.startswith("http") else f"{self.base}{path}"
        data = urlencode(form).encode() if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        opener = urllib.request.build_opener(NoRedirects)
        try:
            with opener.open(urllib.request.Request(url, data=data, headers=headers), timeout=30) as response:
                return int(response.status), dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), dict(error.headers), error.read().decode()


def signed_in_tenant(operator: OperatorFixture, site_id: str, account_id: str, base: str) -> Browser:
    """A tenant invited to ``account_id`` signs up; the browser carries their session cookie."""
    services = get_services()
    invitation = services.tenant_auth.invite(admin_actor(operator), site_id, account_id)
    session = services.tenant_auth.accept(operator.operator_id, invitation.invitation_id,
                                          login=f"+86138{secrets.randbelow(10**8):08d}", display_name="Noodle bar",
                                          password="tenant-pass-2026")
    return Browser(base, f"vv_tenant={signer().session_token(operator.operator_id, session.session_id)}")


def test_a_tenant_pays_a_tripped_meter_on_the_local_card_page_and_the_power_comes_back(
        live_site: tuple[SiteFixture, BridgeProcess], new_operator: OperatorFixture,
        public_app: LocalHost) -> None:
    site, _ = live_site
    meter = site.meters[0]
    post(f"{site.simulator.control_url}/meters/{site.collector_id}/{meter.address}/remaining",
         {"remaining_amount": "-3.00"})
    before = read_meter_now(site, new_operator, meter.meter_id)
    assert before["relay_state"] == 1  # tripped: in arrears
    stored = get_services().sales.open_account(admin_actor(new_operator), site.site_id, "Noodle bar",
                                               [meter.meter_id], request_id=new_request_token())
    browser = signed_in_tenant(new_operator, site.site_id, stored.account.account_id, public_app.http_url)
    top_up = f"/t/{site.operator_id}/meters/{meter.meter_id}/top-up"

    status, _, page = browser.request(top_up)
    assert status == 200 and 'name="viewport"' in page and "-3.00" in page
    status, headers, _ = browser.request(top_up, {"csrf_token": CSRF.findall(page)[0], "amount": "50.00",
                                                  "request_id": REQUEST_ID.findall(page)[0]})
    assert status == 303 and f"{public_app.http_url}/pay/local/cs_local_" in headers["Location"]
    card_page = headers["Location"]
    status, _, page = browser.request(card_page)
    assert status == 200 and "50.00" in page and 'name="card_number"' in page
    status, _, page = browser.request(card_page, {"card_number": "4000 0000 0000 0002"})
    assert status == 402 and "Your card was declined." in page  # declined: the page stays, nothing taken
    status, headers, _ = browser.request(card_page, {"card_number": "4242 4242 4242 4242"})
    assert status == 303 and f"{top_up}/done?after=" in headers["Location"]

    def power_back() -> bool:
        done = browser.request(headers["Location"])[2]
        return 'data-state="delivered"' in done and 'data-closed="yes"' in done

    wait_for(power_back, "the tenant's page to show the credit delivered and the power on")
    truth = simulated(site)[meter.address]
    assert truth["relay"] == "closed" and truth["purchase_count"] == before["purchase_count"] + 1
    assert Decimal(truth["total_purchased"]) - Decimal(str(before["total_purchased"])) == Decimal("50.00")
    assert len(card_sales(site.operator_id, meter.meter_id)) == 1
    record = get_services().payments._payments.payments(site.operator_id)[0]
    assert record.status is PaymentStatus.SUCCEEDED and record.amount_minor == 5_000


def test_the_tenant_top_up_routes_check_the_meter_the_form_and_the_limits(
        shop: Shop, new_operator: OperatorFixture, other_operator: OperatorFixture, public_app: LocalHost) -> None:
    browser = signed_in_tenant(new_operator, shop.site_id, shop.account_id, public_app.http_url)
    other_meter = make_shop(new_operator).meter_id  # same operator, another tenant's account
    theirs = make_shop(other_operator)
    for path in (f"/t/{shop.operator_id}/meters/{other_meter}/top-up",
                 f"/t/{shop.operator_id}/meters/{theirs.meter_id}/top-up",
                 f"/t/{shop.operator_id}/meters/{other_meter}/top-up/done"):
        assert browser.request(path)[0] == 404, path
    page = browser.request(f"/t/{shop.operator_id}/meters/{shop.meter_id}/top-up")[2]
    status, _, _ = browser.request(f"/t/{shop.operator_id}/meters/{other_meter}/top-up",
                                   {"csrf_token": CSRF.findall(page)[0], "amount": "10.00"})
    assert status == 404
    status, _, _ = browser.request(f"/t/{shop.operator_id}/meters/{shop.meter_id}/top-up",
                                   {"csrf_token": "forged", "amount": "10.00"})
    assert status == 403
    status, _, answer = browser.request(f"/t/{shop.operator_id}/meters/{shop.meter_id}/top-up",
                                        {"csrf_token": CSRF.findall(page)[0], "amount": "995.00"})
    assert status == 400 and "hoarding limit" in answer  # said on the form, before any payment
    status, headers, _ = browser.request(f"/t/{shop.operator_id}/meters/{shop.meter_id}/top-up",
                                         {"csrf_token": CSRF.findall(page)[0], "quick": "100.00", "amount": ""})
    assert status == 303 and "100.00" in browser.request(headers["Location"])[2]  # the one-tap amount
    assert browser.request(f"/t/{theirs.operator_id}/meters/{theirs.meter_id}/top-up")[0] == 303  # not signed in


def test_the_operator_sees_card_payments_with_their_status_and_sets_up_the_account(
        shop: Shop, new_operator: OperatorFixture, public_app: LocalHost) -> None:
    services = get_services()
    url = services.payments.start_top_up(shop.tenant, shop.meter_id, "25.00")
    services.payments.local_pay(session_of(url), "4000000000000002")  # declined: visible as such
    services.payments.local_pay(session_of(url), "4242424242424242")
    services.sales.sell(shop.admin, shop.site_id, shop.meter_id, request_id=new_request_token(), amount="5.00")
    admin = Browser(public_app.http_url)
    session = services.auth.login(new_operator.operator_id, "boss", new_operator.admin_password)
    admin.cookie = f"vv_session={signer().session_token(new_operator.operator_id, session.session_id)}"

    status, _, page = admin.request(f"/sites/{shop.site_id}/payments")
    assert status == 200 and 'class="payment-succeeded"' in page and "25.00 CNY" in page and "5.00 CNY" in page
    status, _, body = admin.request(f"/api/v1/sites/{shop.site_id}/payments")
    lines = json.loads(body)["payments"]
    assert status == 200 and sorted((p["channel"], p["status"], p["amount"]) for p in lines) == [
        ("card", "succeeded", "25.00"), ("cash", "paid", "5.00")]

    status, _, page = admin.request("/settings/payments")
    assert status == 200 and f"acct_local_{shop.operator_id}" in page  # connected by the first top-up (local)
    status, headers, _ = admin.request("/settings/payments/onboarding", {"csrf_token": CSRF.findall(page)[0]})
    assert status == 303 and headers["Location"].endswith("/settings/payments?onboarding=done")
    status, _, body = admin.request("/api/v1/settings/payments")
    settings = json.loads(body)
    assert (settings["processor"], settings["connected_account"]) == ("local", f"acct_local_{shop.operator_id}")


# -- the real adapter, against a fake Stripe ---------------------------------------------------------------------


@pytest.fixture()
def fake_stripe(public_app: LocalHost) -> Iterator[FakeStripe]:
    """Stripe keys set and the library pointed at a local fake: the app switches to the Stripe gateway."""
    fake = FakeStripe().start()
    keys = {"VOLTVEND_STRIPE_SECRET_KEY": "sk_test_fake", "VOLTVEND_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "VOLTVEND_STRIPE_API_BASE": fake.url}
    os.environ.update(keys)
    reset_services()
    try:
        yield fake
    finally:
        for name in keys:
            os.environ.pop(name, None)
        reset_services()
        fake.stop()


def test_with_stripe_keys_the_real_adapter_takes_the_same_path(
        fake_stripe: FakeStripe, new_operator: OperatorFixture, public_app: LocalHost) -> None:
    shop = make_shop(new_operator)
    payments = get_services().payments
    with pytest.raises(Conflict, match="not set up"):
        payments.start_top_up(shop.tenant, shop.meter_id, "30.00")  # no connected account yet
    link = payments.start_onboarding(shop.admin)
    account = fake_stripe.state.accounts[0]
    assert link == f"https://connect.stripe.test/setup/{account}"

    url = payments.start_top_up(shop.tenant, shop.meter_id, "30.00", request_id="form-token-123")
    created = next(r for r in fake_stripe.state.requests if r.path == "/v1/checkout/sessions")
    assert created.account == account and created.idempotency_key.startswith("voltvend-topup:")
    assert created.form["payment_intent_data"]["metadata"]["meter_id"] == shop.meter_id
    assert created.form["line_items"]["0"]["price_data"]["unit_amount"] == "3000"
    assert payments.start_top_up(shop.tenant, shop.meter_id, "30.00", request_id="form-token-123") == url
    assert Browser(public_app.http_url).request(f"/pay/local/{session_of(url)}")[0] == 404  # no local page now

    intent_id = fake_stripe.pay(account, session_of(url))
    body, signature = fake_stripe.event("checkout.session.completed", fake_stripe.session(account, session_of(url)),
                                        account)
    assert deliver(public_app, body, signature)[1]["outcome"] == "succeeded"
    assert deliver(public_app, body, signature)[1]["outcome"] == "duplicate"
    forged, forged_signature = fake_stripe.event("payment_intent.succeeded", fake_stripe.intent(account, intent_id),
                                                 account, secret="whsec_not_ours")
    assert deliver(public_app, forged, forged_signature)[0] == 400
    sale = card_sales(shop.operator_id, shop.meter_id)[0]
    assert sale.request_id == f"stripe:{intent_id}" and sale.amount_minor == 3_000

    get_services().sales.reverse(shop.admin, shop.site_id, sale.entry_id, request_id=new_request_token(),
                                 reason="wrong meter")
    refund = fake_stripe.state.refunds[0]
    assert (refund["payment_intent"], refund["amount"], refund["account"]) == (intent_id, 3_000, account)
    record = get_services().payments._payments.payment(shop.operator_id, intent_id)
    assert record is not None and record.status is PaymentStatus.REFUNDED and record.refund_id == refund["id"]


def _paid_with_stripe(fake: FakeStripe, shop: Shop, amount: str) -> tuple[str, str, tuple[bytes, str]]:
    """A connected account, a top-up paid on it, and its checkout.session.completed event (not yet delivered)."""
    payments = get_services().payments
    payments.start_onboarding(shop.admin)
    account = fake.state.accounts[-1]
    url = payments.start_top_up(shop.tenant, shop.meter_id, amount)
    intent_id = fake.pay(account, session_of(url))
    return account, intent_id, fake.event("checkout.session.completed", fake.session(account, session_of(url)),
                                          account)


def _refunds(operator_id: str, meter_id: str) -> list[Entry]:
    return [e for e in get_services().money.meter_entries(operator_id, meter_id) if e.kind is EntryKind.REFUND]


def test_a_refund_made_in_stripes_dashboard_takes_the_credit_back_once(
        fake_stripe: FakeStripe, new_operator: OperatorFixture, public_app: LocalHost) -> None:
    shop = make_shop(new_operator)
    account, intent_id, completed = _paid_with_stripe(fake_stripe, shop, "30.00")
    assert deliver(public_app, *completed)[1]["outcome"] == "succeeded"

    charge = fake_stripe.refund_in_dashboard(account, intent_id, 1_000)
    refunded = fake_stripe.event("charge.refunded", charge, account)
    assert deliver(public_app, *refunded)[1]["outcome"] == "refunded"
    [refund] = _refunds(shop.operator_id, shop.meter_id)
    assert (refund.amount_minor, refund.channel, refund.request_id) == (1_000, Channel.CARD,
                                                                         f"stripe-refund:{intent_id}:1000")
    assert refund.delivers_to_meter  # a prepaid meter gets a command taking the 10.00 back out
    money = get_services().money.money(shop.operator_id, shop.meter_id)
    assert money is not None and money.credit_minor == 1_200 + 3_000 - 1_000
    record = get_services().payments._payments.payment(shop.operator_id, intent_id)
    assert record is not None and record.status is PaymentStatus.REFUNDED and record.outside_refunded_minor == 1_000
    assert record.entry_id is not None and "taken back" in record.failure_reason

    # The same event again, and another event about the same payment, take nothing more.
    assert deliver(public_app, *refunded)[1]["outcome"] == "duplicate"
    again = fake_stripe.event("payment_intent.succeeded", fake_stripe.intent(account, intent_id), account)
    deliver(public_app, *again)
    assert len(_refunds(shop.operator_id, shop.meter_id)) == 1

    # A second refund in the dashboard is a second refund here; the operator's own reversal is never counted as one.
    second = fake_stripe.event("charge.refunded", fake_stripe.refund_in_dashboard(account, intent_id, 500), account)
    assert deliver(public_app, *second)[1]["outcome"] == "refunded"
    assert [r.amount_minor for r in _refunds(shop.operator_id, shop.meter_id)] == [1_000, 500]
    ours = get_services().payments.gateway.refund(intent_id, account, amount_minor=700, idempotency_key="ours-1",
                                                  reason="test")
    deliver(public_app, *fake_stripe.event("charge.refunded", fake_stripe.intent(account, intent_id), account))
    assert ours.amount_minor == 700
    assert [r.amount_minor for r in _refunds(shop.operator_id, shop.meter_id)] == [1_000, 500]


def test_a_dashboard_refund_is_not_posted_twice_nor_when_the_credit_is_gone(
        fake_stripe: FakeStripe, new_operator: OperatorFixture, public_app: LocalHost) -> None:
    # Refunded in full before the payment's sale was posted: the sale is never posted.
    shop = make_shop(new_operator)
    account, intent_id, completed = _paid_with_stripe(fake_stripe, shop, "30.00")
    fake_stripe.refund_in_dashboard(account, intent_id, 3_000)
    assert deliver(public_app, *completed)[1]["outcome"] == "refunded"
    assert card_sales(shop.operator_id, shop.meter_id) == [] and _refunds(shop.operator_id, shop.meter_id) == []

    # Refunded after the credit was used (the meter went into arrears): nothing to take back; the record says so.
    other = make_shop(new_operator)
    account, intent_id, completed = _paid_with_stripe(fake_stripe, other, "30.00")
    assert deliver(public_app, *completed)[1]["outcome"] == "succeeded"
    read_meter(other.operator_id, other.site_id, other.meter_id, "-25.00", 7)  # 5.00 left once the 30.00 lands
    charge = fake_stripe.refund_in_dashboard(account, intent_id, 1_000)
    assert deliver(public_app, *fake_stripe.event("charge.refunded", charge, account))[1]["outcome"] == "refunded"
    assert _refunds(other.operator_id, other.meter_id) == []
    record = get_services().payments._payments.payment(other.operator_id, intent_id)
    assert record is not None and record.outside_refunded_minor == 1_000
    assert "could not be taken back" in record.failure_reason and "settle it with the account" in record.failure_reason


def test_after_a_dashboard_refund_the_sale_is_not_reversed_at_the_desk_and_old_refunds_of_ours_never_count(
        fake_stripe: FakeStripe, new_operator: OperatorFixture, public_app: LocalHost) -> None:
    shop = make_shop(new_operator)
    account, intent_id, completed = _paid_with_stripe(fake_stripe, shop, "30.00")
    assert deliver(public_app, *completed)[1]["outcome"] == "succeeded"
    # A refund Voltvend made before refunds were marked carried only its reason: it is ours, never taken in.
    with fake_stripe.state.lock:
        fake_stripe.state.refunds.append({"id": "re_old", "object": "refund", "amount": 200, "status": "succeeded",
                                          "payment_intent": intent_id, "metadata": {"why": "sale reversed"},
                                          "account": account})
    deliver(public_app, *fake_stripe.event("charge.refunded", fake_stripe.intent(account, intent_id), account))
    assert _refunds(shop.operator_id, shop.meter_id) == []

    charge = fake_stripe.refund_in_dashboard(account, intent_id, 1_000)
    assert deliver(public_app, *fake_stripe.event("charge.refunded", charge, account))[1]["outcome"] == "refunded"
    [sale] = card_sales(shop.operator_id, shop.meter_id)
    with pytest.raises(Conflict, match="refunded in the processor's dashboard"):
        get_services().sales.reverse(shop.admin, shop.site_id, sale.entry_id, request_id=new_request_token(),
                                     reason="customer asked")
    assert [r.amount_minor for r in _refunds(shop.operator_id, shop.meter_id)] == [1_000]  # taken back once


def test_a_sale_whose_record_was_lost_is_still_found_before_a_full_dashboard_refund_is_judged(
        fake_stripe: FakeStripe, new_operator: OperatorFixture, public_app: LocalHost) -> None:
    shop = make_shop(new_operator)
    account, intent_id, completed = _paid_with_stripe(fake_stripe, shop, "30.00")
    assert deliver(public_app, *completed)[1]["outcome"] == "succeeded"
    repository = get_services().payments._payments
    record = repository.payment(shop.operator_id, intent_id)
    assert record is not None and record.entry_id is not None
    # As if the run that posted the sale died before it stored the record: the record never names the sale.
    repository.save_payment(replace(record, entry_id=None, status=PaymentStatus.PENDING))

    charge = fake_stripe.refund_in_dashboard(account, intent_id, 3_000)
    assert deliver(public_app, *fake_stripe.event("charge.refunded", charge, account))[1]["outcome"] == "refunded"
    assert [r.amount_minor for r in _refunds(shop.operator_id, shop.meter_id)] == [3_000]  # the credit came out
    stored = repository.payment(shop.operator_id, intent_id)
    assert stored is not None and stored.entry_id == card_sales(shop.operator_id, shop.meter_id)[0].entry_id
