"""Card payments' pure rules: what an event says, which metadata is a top-up of ours, how a record moves on, and the
local stand-in's signature as Stripe's own library checks it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.local_gateway import signature_header, stripe_event
from chalicelib.adapters.stripe_gateway import verify_event
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.payments import (
    IntentState,
    PaymentStatus,
    TopUp,
    declined,
    disputed,
    event_facts,
    new_record,
    owed_a_sale,
    refund_failed,
    refunded,
    succeeded,
)
from chalicelib.ports import BadSignature

TOP_UP = TopUp("riverside", "rp", "m_1", "acct-1", "tn-1")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_event_facts_name_the_intent_and_operator_of_each_kind_of_event() -> None:
    intent = {"object": "payment_intent", "id": "pi_1", "metadata": TOP_UP.metadata()}
    session = {"object": "checkout.session", "id": "cs_1", "payment_intent": "pi_1", "metadata": TOP_UP.metadata()}
    dispute = {"object": "dispute", "id": "dp_1", "payment_intent": "pi_1", "reason": "fraudulent"}
    facts = [event_facts(stripe_event(kind, obj, "acct_x")) for kind, obj in (
        ("payment_intent.succeeded", intent), ("checkout.session.completed", session),
        ("charge.dispute.created", dispute), ("customer.created", {"object": "customer", "id": "cus_1"}))]
    assert [(f.intent_id, f.operator_id, f.account, f.handled) for f in facts] == [
        ("pi_1", "riverside", "acct_x", True), ("pi_1", "riverside", "acct_x", True),
        ("pi_1", None, "acct_x", True), (None, None, "acct_x", False)]
    assert facts[2].dispute_reason == "fraudulent"
    with pytest.raises(ValidationError):
        event_facts({"id": "evt_1", "type": "x"})


@pytest.mark.parametrize("metadata", [
    {}, {"operator_id": "riverside"}, {**TOP_UP.metadata(), "operator_id": "OP#x"},
    {**TOP_UP.metadata(), "meter_id": "m#1"}, {**TOP_UP.metadata(), "site_id": ""}])
def test_metadata_that_is_not_a_well_formed_top_up_of_ours_is_none(metadata: dict[str, str]) -> None:
    assert TopUp.from_metadata(metadata) is None


def test_a_record_never_moves_back() -> None:
    intent = IntentState("pi_1", "succeeded", 5_000, "cny", TOP_UP.metadata())
    record = new_record("riverside", intent, TOP_UP, "acct_x", NOW)
    assert record.status is PaymentStatus.PENDING and not record.settled
    failed = declined(record, "Your card was declined.", NOW)
    paid = succeeded(failed, "e-1", NOW + timedelta(seconds=5))
    assert (paid.status, paid.entry_id, paid.failure_reason) == (PaymentStatus.SUCCEEDED, "e-1", "")
    assert declined(paid, "late failure", NOW) == paid  # a failure after the success changes nothing
    back = refunded(paid, refund_id="re_1", amount_minor=5_000, reason="reversed", at=NOW)
    assert back.status is PaymentStatus.REFUNDED and succeeded(back, "e-1", NOW) == back
    assert disputed(back, "fraudulent", NOW).status is PaymentStatus.DISPUTED
    kept = refund_failed(record, "refused; the refund failed", NOW)
    assert kept.settled and kept.entry_id is None
    assert [r.intent_id for r in owed_a_sale([record, failed, paid, kept])] == ["pi_1", "pi_1"]  # paid and kept


def test_the_local_stand_in_signs_as_stripe_and_stripe_s_library_agrees() -> None:
    body = json.dumps(stripe_event("payment_intent.succeeded", {"object": "payment_intent", "id": "pi_1"},
                                   "acct_x")).encode()
    secret = "whsec_unit"
    assert verify_event(body, signature_header(body, secret), secret)["data"]["object"]["id"] == "pi_1"
    for header in (signature_header(body, "whsec_other"), signature_header(body, secret, int(time.time()) - 301), "",
                   "t=1,v1=00"):
        with pytest.raises(BadSignature):
            verify_event(body, header, secret)
    with pytest.raises(BadSignature):
        verify_event(body, signature_header(body, ""), "")  # no secret: nothing is ever taken unverified
