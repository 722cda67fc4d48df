"""The ledger's own rules: balanced and well-formed entries, ids from requests, duplicates, reversals, the fold."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from chalicelib.domain import accounts
from chalicelib.domain.errors import Conflict, ValidationError
from chalicelib.domain.ledger import (
    AccountKind,
    BalanceMismatch,
    Channel,
    Entry,
    EntryKind,
    LedgerAccount,
    Posting,
    balances,
    charge_request_id,
    check_balances,
    entry_id_for,
    is_duplicate,
    make_entry,
    meter_credit,
    reverse_entry,
    stripe_request_id,
    validate_entry,
)

from .builders import OPERATOR, POLICY, T0, open_shop, prepaid, request

SHOP = open_shop(prepaid("m-1"))
CASH = LedgerAccount(AccountKind.CASH)


def sale(amount: int = 10_000, request_id: str = "cashier:s", channel: Channel = Channel.CASH) -> Entry:
    return accounts.sell(SHOP, "m-1", accounts.SaleQuantity(amount), balance_minor=0, policy=POLICY,
                         request=request(request_id, channel))


def entry(postings: list[Posting], kind: EntryKind = EntryKind.SALE, *, amount: int = 100, reason: str = "",
          channel: Channel = Channel.CASH, meter_id: str | None = "m-1") -> Entry:
    return make_entry(request("r-1", channel), kind, account_id="acct-7", meter_id=meter_id, amount_minor=amount,
                      postings=postings, reason=reason)


# -- malformed entries --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("postings", "message"), [
    ([Posting(CASH, 100), Posting(meter_credit("m-1"), -99)], "off balance by 0.01"),
    ([Posting(CASH, 0), Posting(meter_credit("m-1"), 0)], "non-zero"),
    ([Posting(CASH, 100)], "at least two postings"),
    ([Posting(CASH, 50), Posting(CASH, 50), Posting(meter_credit("m-1"), -100)], "once"),
    ([Posting(CASH, True), Posting(meter_credit("m-1"), -1)], "whole number"),
    ([Posting(CASH, 100), Posting(LedgerAccount(AccountKind.METER_CREDIT), -100)], "need a key"),
    ([Posting(LedgerAccount(AccountKind.CASH, "x"), 100), Posting(meter_credit("m-1"), -100)], "others none"),
])
def test_unbalanced_or_malformed_postings_are_refused(postings: list[Posting], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        entry(postings)


def test_the_headline_amount_must_match_the_meters_credit_change() -> None:
    with pytest.raises(ValidationError, match=r"must change the meter's credit by 2.00"):
        entry([Posting(CASH, 100), Posting(meter_credit("m-1"), -100)], amount=200)
    with pytest.raises(ValidationError, match=r"by -1.00"):  # a refund takes credit out, not in
        entry([Posting(CASH, 100), Posting(meter_credit("m-1"), -100)], EntryKind.REFUND)


@pytest.mark.parametrize(("kind", "channel", "reason", "meter_id", "message"), [
    (EntryKind.ADJUSTMENT, Channel.SYSTEM, "  ", "m-1", "needs a reason"),
    (EntryKind.CHARGE, Channel.CASH, "", "m-1", "posted by the system"),
    (EntryKind.SALE, Channel.SYSTEM, "", "m-1", "paid in cash"),
    (EntryKind.SALE, Channel.CASH, "", None, "belongs to a meter"),
    (EntryKind.TRANSFER, Channel.SYSTEM, "", "m-1", "only a transfer"),
])
def test_kind_rules(kind: EntryKind, channel: Channel, reason: str, meter_id: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        entry([Posting(CASH, 100), Posting(meter_credit("m-1"), -100)], kind, reason=reason, channel=channel,
              meter_id=meter_id)


def test_a_tampered_entry_fails_validation() -> None:
    good = sale()
    for bad, message in [(replace(good, entry_id="e-0"), "derived"), (replace(good, amount_minor=-1), "positive"),
                         (replace(good, created_at=datetime(2024, 1, 1)), "time zone"),
                         (replace(good, actor=" "), "actor"), (replace(good, energy_centi_kwh=-5), "energy")]:
        with pytest.raises(ValidationError, match=message):
            validate_entry(bad)


# -- idempotency --------------------------------------------------------------------------------------------------


def test_the_same_request_gives_the_same_entry_id_and_is_recognised_as_a_retry() -> None:
    first = sale(request_id=stripe_request_id("pi_42"), channel=Channel.CARD)
    retry = sale(request_id=stripe_request_id("pi_42"), channel=Channel.CARD)
    assert retry.entry_id == first.entry_id and retry.created_at > first.created_at
    assert is_duplicate(retry, first)
    assert not is_duplicate(first, None)


def test_ids_depend_on_the_operator_and_the_request_only() -> None:
    assert entry_id_for(OPERATOR, "cashier:1") == entry_id_for(OPERATOR, "cashier:1")
    assert entry_id_for(OPERATOR, "cashier:1") != entry_id_for("op-2", "cashier:1")
    assert charge_request_id("m-1", T0) == "charge:m-1:2024-03-01T01:00:00+00:00"


def test_a_request_id_reused_for_something_else_is_a_conflict() -> None:
    first = sale(10_000, "cashier:reused")
    with pytest.raises(Conflict, match="already used for a different sale"):
        is_duplicate(sale(20_000, "cashier:reused"), first)


# -- reversals ----------------------------------------------------------------------------------------------------


def reverse(original: Entry, history: list[Entry], *, credit: int = 10_000, request_id: str = "cashier:rev",
            limit: int = POLICY.hoarding_limit_minor) -> Entry:
    return reverse_entry(original, history, request(request_id), "mistake", meter_credit_minor=credit,
                         hoarding_limit_minor=limit)


def test_reversing_twice_is_refused_clearly() -> None:
    original = sale()
    first = reverse(original, [original])
    with pytest.raises(Conflict, match=r"already reversed on 2024-03-01 .* by cashier-li"):
        reverse(original, [original, first])


def test_two_reversals_of_one_entry_collide_on_the_id_even_from_different_requests() -> None:
    original = sale()
    first, second = reverse(original, [original]), reverse(original, [original], request_id="cashier:other")
    assert first.entry_id == second.entry_id
    with pytest.raises(Conflict, match="was already reversed"):
        is_duplicate(second, first)


def test_a_reversal_cannot_be_reversed() -> None:
    original = sale()
    reversal = reverse(original, [original])
    with pytest.raises(Conflict, match="cannot itself be reversed"):
        reverse(reversal, [original, reversal])


def test_only_sales_and_refunds_are_reversed() -> None:
    used = make_entry(request("charge:x", Channel.SYSTEM), EntryKind.CHARGE, account_id="acct-7", meter_id="m-1",
                      amount_minor=500, postings=[Posting(meter_credit("m-1"), 500),
                                                  Posting(LedgerAccount(AccountKind.CONSUMPTION_REVENUE), -500)])
    with pytest.raises(ValidationError, match="correct it with an adjustment"):
        reverse(used, [used])


def test_reversing_a_sale_whose_credit_is_partly_used_is_refused() -> None:
    original = sale(10_000)
    with pytest.raises(ValidationError, match=r"only 60.00 unused; the rest is already used"):
        reverse(original, [original], credit=6_000)


def test_reversing_a_refund_may_not_break_the_hoarding_limit() -> None:
    refund = accounts.refund(SHOP, "m-1", 5_000, remaining_minor=5_000, request=request("cashier:rf"))
    with pytest.raises(ValidationError, match=r"hoarding limit of 100.00"):
        reverse(refund, [refund], credit=6_000, limit=10_000)


def test_another_operator_cannot_reverse() -> None:
    original = sale()
    with pytest.raises(ValidationError, match="its own operator"):
        reverse_entry(original, [original], request("x", operator="op-2"), "no", meter_credit_minor=10_000,
                      hoarding_limit_minor=10**9)


def test_a_reversal_needs_a_reason() -> None:
    original = sale()
    with pytest.raises(ValidationError, match="needs a reason"):
        reverse_entry(original, [original], request("x"), " ", meter_credit_minor=10_000, hoarding_limit_minor=10**9)


# -- the fold -----------------------------------------------------------------------------------------------------


def test_stored_balances_are_proved_against_the_fold() -> None:
    entries = [sale(10_000, "a"), sale(2_500, "b")]
    stored = {CASH: 12_500, meter_credit("m-1"): -12_500, LedgerAccount(AccountKind.ADJUSTMENTS): 0}
    assert check_balances(stored, entries) == []
    assert check_balances({CASH: 12_000, meter_credit("m-1"): -12_500}, entries) == [
        BalanceMismatch(CASH, 12_000, 12_500)]


def test_the_fold_is_one_operator_at_a_time() -> None:
    other = accounts.sell(replace(SHOP, operator_id="op-2"), "m-1", accounts.SaleQuantity(1_000), balance_minor=0,
                          policy=POLICY, request=request("z", operator="op-2"))
    with pytest.raises(ValidationError, match="one operator at a time"):
        balances([sale(), other])
