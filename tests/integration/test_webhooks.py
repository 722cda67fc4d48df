"""The payment webhook over HTTP against the live app and DynamoDB Local, with the local stand-in's events: only
verified events are taken, each once, in any order; a payment becomes exactly one card sale, or a refund when the
rules refuse it; events of another operator's meter or account are ignored."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from chalicelib.adapters.local_gateway import local_account, signature_header, stripe_event
from chalicelib.bootstrap import get_services
from chalicelib.config import get_settings
from chalicelib.domain.errors import NotFound, ValidationError
from chalicelib.domain.ledger import stripe_request_id
from chalicelib.domain.payments import INTENT_FAILED, PaymentRecord, PaymentStatus, TopUp
from chalicelib.ports import CheckoutRequest
from chalicelib.services.sales import new_request_token
from infra.local.host import LocalHost
from tests.conftest import OperatorFixture
from tests.support.payments import (  # noqa: F401  (fixtures: registered by being imported)
    Shop,
    card_sales,
    caught_fixture,
    deliver,
    event_type,
    make_shop,
    public_app_fixture,
    session_of,
    shop_fixture,
    tenant_of,
)

Caught = list[tuple[bytes, dict[str, str]]]


def _paid(shop: Shop, caught: Caught, amount: str = "50.00", card: str = "4242 4242 4242 4242") -> str:
    """A top-up checked out and paid on the local card page; its events are caught. Returns the payment intent."""
    url = get_services().payments.start_top_up(shop.tenant, shop.meter_id, amount, request_id=new_request_token())
    session_id = session_of(url)
    get_services().payments.local_pay(session_id, card)
    return session_id.replace("cs_local_", "pi_local_", 1)


def _events(caught: Caught) -> dict[str, tuple[bytes, str]]:
    return {event_type(body): (body, headers["Stripe-Signature"]) for body, headers in caught}


def _record(shop: Shop, intent_id: str) -> PaymentRecord | None:
    return get_services().payments._payments.payment(shop.operator_id, intent_id)


def test_a_paid_top_up_is_one_card_sale_whatever_the_order_and_however_often_events_come(
        shop: Shop, caught: Caught, public_app: LocalHost) -> None:
    intent_id = _paid(shop, caught)
    assert [event_type(body) for body, _ in caught] == ["payment_intent.succeeded", "checkout.session.completed"]
    events = _events(caught)

    # The session's event first (Stripe does not order them), then the intent's, then the intent's again.
    assert deliver(public_app, *events["checkout.session.completed"]) == (
        200, {"received": True, "outcome": "succeeded"})
    assert deliver(public_app, *events["payment_intent.succeeded"])[1]["outcome"] == "already succeeded"
    assert deliver(public_app, *events["payment_intent.succeeded"])[1]["outcome"] == "duplicate"

    sales = card_sales(shop.operator_id, shop.meter_id)
    assert [(s.request_id, s.amount_minor, s.actor) for s in sales] == [
        (stripe_request_id(intent_id), 5_000, f"tenant:{shop.tenant.tenant_id}")]
    record = _record(shop, intent_id)
    assert record is not None and record.status is PaymentStatus.SUCCEEDED and record.entry_id == sales[0].entry_id
    money = get_services().money.money(shop.operator_id, shop.meter_id)
    assert money is not None and money.delivery(sales[0].entry_id) is not None  # queued for the meter, like a sale
    status = get_services().payments.top_up_status(shop.tenant, shop.meter_id)
    assert status.payment == record and status.delivery_state == "pending" and not status.settled
    later = get_services().payments.top_up_status(shop.tenant, shop.meter_id, after=int(time.time()) + 60)
    assert later.payment is None  # a checkout opened later is not answered with this earlier payment


def test_an_event_that_does_not_verify_is_refused_and_changes_nothing(
        shop: Shop, caught: Caught, public_app: LocalHost) -> None:
    intent_id = _paid(shop, caught)
    body, good = _events(caught)["payment_intent.succeeded"]
    secret = get_settings().webhook_secret
    stale = signature_header(body, secret, int(time.time()) - 600)
    forged = signature_header(body, "whsec_someone_else")
    tampered = body.replace(b'"amount":5000', b'"amount":500000')
    for payload, signature in ((body, forged), (body, stale), (body, None), (tampered, good),
                               (b"not json", signature_header(b"not json", secret))):
        status, answer = deliver(public_app, payload, signature)
        assert status == 400 and answer == {"error": "the event did not verify"}
    assert card_sales(shop.operator_id, shop.meter_id) == [] and _record(shop, intent_id) is None
    assert deliver(public_app, body, good)[1]["outcome"] == "succeeded"  # the genuine one is still taken


def test_a_failure_reported_after_the_success_changes_nothing_and_a_decline_then_a_payment_posts_once(
        shop: Shop, caught: Caught, public_app: LocalHost) -> None:
    services = get_services()
    url = services.payments.start_top_up(shop.tenant, shop.meter_id, "30.00", request_id=new_request_token())
    session_id = session_of(url)
    declined = services.payments.local_pay(session_id, "4000 0000 0000 0002")
    assert not declined.paid and declined.message == "Your card was declined."
    failed = _events(caught)[INTENT_FAILED]
    assert deliver(public_app, *failed)[1]["outcome"] == "failed"  # re-fetched: declined, nothing taken
    intent_id = session_id.replace("cs_local_", "pi_local_", 1)
    record = _record(shop, intent_id)
    assert record is not None and (record.status, record.failure_reason) == (PaymentStatus.FAILED,
                                                                             "Your card was declined.")

    caught.clear()
    assert services.payments.local_pay(session_id, "4242424242424242").paid  # tries again with a good card
    assert deliver(public_app, *_events(caught)["payment_intent.succeeded"])[1]["outcome"] == "succeeded"
    # The old failure arrives late (a retry of Stripe's): the intent now says succeeded, so nothing moves back.
    late = json.loads(failed[0])
    late["id"] += "_retry"
    body = json.dumps(late).encode()
    assert deliver(public_app, body, signature_header(body, get_settings().webhook_secret))[1]["outcome"] == \
        "already succeeded"
    record = _record(shop, intent_id)
    assert record is not None and record.status is PaymentStatus.SUCCEEDED and record.failure_reason == ""
    assert len(card_sales(shop.operator_id, shop.meter_id)) == 1


def _checkout_on(account_owner: str, metadata: TopUp, amount_minor: int = 2_000) -> str:
    """A checkout on ``account_owner``'s connected account whose metadata says ``metadata`` (a forged top-up)."""
    session = get_services().payments.gateway.create_checkout(CheckoutRequest(
        local_account(account_owner), amount_minor, "cny", "forged", metadata.metadata(), "http://x/ok",
        "http://x/no", new_request_token()))
    return session.session_id


def test_a_payment_for_another_operators_meter_or_account_is_ignored(
        shop: Shop, caught: Caught, public_app: LocalHost, other_operator: OperatorFixture) -> None:
    services = get_services()
    theirs = make_shop(other_operator)
    for each in (shop, theirs):  # the first top-up connects each operator's (local) account
        services.payments.start_top_up(each.tenant, each.meter_id, "10.00")
    # 1. Paid on our account, naming their meter: the meter is not ours.
    ours_naming_theirs = TopUp(shop.operator_id, theirs.site_id, theirs.meter_id, theirs.account_id, "tn-x")
    services.payments.local_pay(_checkout_on(shop.operator_id, ours_naming_theirs), "4242424242424242")
    # 2. Paid on our account, claiming to be their top-up: the account is not theirs.
    claims_theirs = TopUp(theirs.operator_id, theirs.site_id, theirs.meter_id, theirs.account_id, "tn-x")
    services.payments.local_pay(_checkout_on(shop.operator_id, claims_theirs), "4242424242424242")

    outcomes = [deliver(public_app, body, headers["Stripe-Signature"]) for body, headers in caught]
    assert [status for status, _ in outcomes] == [200] * 4
    assert sorted(answer["outcome"] for _, answer in outcomes) == [
        "ignored", "ignored", "ignored: not this operator's meter", "ignored: not this operator's meter"]
    for operator_id, meter_id in ((shop.operator_id, shop.meter_id), (theirs.operator_id, theirs.meter_id)):
        assert card_sales(operator_id, meter_id) == []
        assert services.payments._payments.payments(operator_id) == []


def test_a_top_up_the_hoarding_limit_refuses_by_the_time_it_is_paid_is_refunded(
        shop: Shop, caught: Caught, public_app: LocalHost) -> None:
    services = get_services()
    url = services.payments.start_top_up(shop.tenant, shop.meter_id, "500.00")  # 12.00 + 500.00 ≤ 1,000.00 now
    services.sales.sell(shop.admin, shop.site_id, shop.meter_id, request_id=new_request_token(), amount="600.00")
    session_id = session_of(url)
    services.payments.local_pay(session_id, "4242424242424242")
    events = _events(caught)

    answer = deliver(public_app, *events["payment_intent.succeeded"])[1]
    assert answer["outcome"] == "refunded"
    intent_id = session_id.replace("cs_local_", "pi_local_", 1)
    record = _record(shop, intent_id)
    assert record is not None and record.status is PaymentStatus.REFUNDED and record.entry_id is None
    assert "hoarding limit" in record.failure_reason and record.refunded_minor == 50_000
    assert deliver(public_app, *events["checkout.session.completed"])[1]["outcome"] == "already refunded"
    assert card_sales(shop.operator_id, shop.meter_id) == []
    again = services.payments.gateway.refund(intent_id, local_account(shop.operator_id), amount_minor=None,
                                             idempotency_key=f"voltvend-refused:{intent_id}", reason="again")
    assert (again.refund_id, again.amount_minor) == (record.refund_id, 50_000)  # one refund, however often asked


def test_reversing_a_card_sale_refunds_the_payment(shop: Shop, caught: Caught, public_app: LocalHost) -> None:
    services = get_services()
    intent_id = _paid(shop, caught, "40.00")
    deliver(public_app, *_events(caught)["payment_intent.succeeded"])
    sale = card_sales(shop.operator_id, shop.meter_id)[0]

    reversal = services.sales.reverse(shop.admin, shop.site_id, sale.entry_id, request_id=new_request_token(),
                                      reason="paid twice by mistake")
    record = _record(shop, intent_id)
    assert record is not None and record.status is PaymentStatus.REFUNDED and record.refunded_minor == 4_000
    assert record.entry_id == sale.entry_id and "paid twice by mistake" in record.failure_reason
    again = services.payments.gateway.refund(intent_id, local_account(shop.operator_id), amount_minor=4_000,
                                             idempotency_key=f"voltvend-reversal:{reversal.entry_id}", reason="x")
    assert again.refund_id == record.refund_id


def test_a_dispute_marks_the_payment(shop: Shop, caught: Caught, public_app: LocalHost) -> None:
    intent_id = _paid(shop, caught)
    deliver(public_app, *_events(caught)["payment_intent.succeeded"])
    dispute = {"id": "dp_local_1", "object": "dispute", "payment_intent": intent_id, "reason": "fraudulent",
               "amount": 5_000, "status": "needs_response"}
    body = json.dumps(stripe_event("charge.dispute.created", dispute, local_account(shop.operator_id))).encode()
    assert deliver(public_app, body, signature_header(body, get_settings().webhook_secret))[1]["outcome"] == \
        "disputed"
    record = _record(shop, intent_id)
    assert record is not None and (record.status, record.dispute_reason) == (PaymentStatus.DISPUTED, "fraudulent")
    assert len(card_sales(shop.operator_id, shop.meter_id)) == 1  # the sale stands: a person decides


def test_the_same_event_delivered_at_once_posts_once(shop: Shop, caught: Caught, public_app: LocalHost) -> None:
    _paid(shop, caught)
    events = _events(caught)
    bodies = [events["payment_intent.succeeded"], events["checkout.session.completed"]] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda event: deliver(public_app, *event), bodies))
    assert {status for status, _ in answers} <= {200, 409}  # 409: busy, the processor retries later
    assert len(card_sales(shop.operator_id, shop.meter_id)) == 1
    for body, signature in bodies:  # Stripe's retries of the busy ones, later: all taken, nothing more posted
        assert deliver(public_app, body, signature)[0] == 200
    assert len(card_sales(shop.operator_id, shop.meter_id)) == 1


def test_a_top_up_is_checked_before_any_payment_is_taken(shop: Shop, public_app: LocalHost,
                                                        other_operator: OperatorFixture) -> None:
    payments = get_services().payments
    stranger = tenant_of(shop.operator_id, "acct-somebody-else")
    with pytest.raises(NotFound):
        payments.start_top_up(stranger, shop.meter_id, "10.00")
    theirs = make_shop(other_operator)
    with pytest.raises(NotFound):  # the same meter id of another operator is no meter of ours
        payments.start_top_up(shop.tenant, theirs.meter_id, "10.00")
    with pytest.raises(ValidationError, match="hoarding limit"):
        payments.start_top_up(shop.tenant, shop.meter_id, "990.00")
    with pytest.raises(ValidationError):
        payments.start_top_up(shop.tenant, shop.meter_id, "12.345")
    token = new_request_token()
    first = payments.start_top_up(shop.tenant, shop.meter_id, "20.00", request_id=token)
    assert payments.start_top_up(shop.tenant, shop.meter_id, "20.00", request_id=token) == first  # double submit


def test_reconciliation_compares_card_sales_with_payments(shop: Shop, caught: Caught,
                                                          public_app: LocalHost) -> None:
    services = get_services()
    intent_id = _paid(shop, caught)
    deliver(public_app, *_events(caught)["payment_intent.succeeded"])
    assert [f for f in services.reconciliation.run(shop.operator_id) if f.discrepancy.subject.startswith("stripe:")] \
        == []
    record = _record(shop, intent_id)
    assert record is not None
    kept = PaymentRecord(shop.operator_id, "pi_local_kept_1", record.top_up, 7_000, "cny", record.connected_account,
                         PaymentStatus.REFUND_FAILED, datetime.now(UTC), datetime.now(UTC), "refund failed")
    services.payments._payments.save_payment(kept)  # money kept, no sale: must be found
    found = [f.discrepancy for f in services.reconciliation.run(shop.operator_id)
             if f.discrepancy.subject.startswith("stripe:")]
    assert [(d.kind.value, d.subject) for d in found] == [("payment-not-credited", "stripe:pi_local_kept_1")]
