"""Account rules: opening, sale limits (hoarding, top-up), sale by energy, refunds of unused credit only, charges,
transfers and closings that refuse what cannot be settled."""

from __future__ import annotations

import pytest

from chalicelib.domain import accounts
from chalicelib.domain.errors import Conflict, NotFound, ValidationError
from chalicelib.domain.ledger import Channel, EntryKind

from .builders import POLICY, account_balances, cloud_billed, open_shop, prepaid, request

SHOP = open_shop(prepaid("m-1"), prepaid("m-2"), cloud_billed("c-1"))


def sell(amount: int, balance: int, meter_id: str = "m-1", shop: accounts.CustomerAccount = SHOP) -> int:
    return accounts.sell(shop, meter_id, accounts.SaleQuantity(amount), balance_minor=balance, policy=POLICY,
                         request=request("cashier:s")).amount_minor


def test_the_hoarding_limit_caps_what_a_meter_may_hold() -> None:
    assert sell(10_000, 190_000) == 10_000  # exactly at the limit
    with pytest.raises(ValidationError, match=r"above its hoarding limit of 2000.00; at most 100.00 can be added"):
        sell(10_100, 190_000)


def test_top_ups_stay_between_the_minimum_and_the_maximum() -> None:
    for amount in (999, 100_001):
        with pytest.raises(ValidationError, match=r"between 10.00 and 1000.00"):
            sell(amount, 0)


@pytest.mark.parametrize(("energy", "price", "minor"), [
    (100, 12_345, 123),  # 1 kWh at 1.2345 = 1.2345 → 1.23
    (1, 5_000, 0),  # exactly 0.005: half-even goes to the even cent, 0.00
    (3, 5_000, 2),  # 0.015 → 0.02
    (5, 5_000, 2),  # 0.025 → 0.02
    (10_000, 6_800, 6_800),  # 100 kWh at 0.68 = 68.00
])
def test_energy_is_priced_exactly_and_rounded_half_even(energy: int, price: int, minor: int) -> None:
    assert accounts.amount_for_energy(energy, price) == minor


def test_a_sale_by_energy_records_the_energy() -> None:
    quantity = accounts.SaleQuantity.of_energy(20_000, 6_800)  # 200 kWh at 0.68
    sale = accounts.sell(SHOP, "m-1", quantity, balance_minor=0, policy=POLICY, request=request("cashier:e"))
    assert (sale.amount_minor, sale.energy_centi_kwh) == (13_600, 20_000)
    with pytest.raises(ValidationError, match="positive"):
        accounts.SaleQuantity.of_energy(0, 6_800)


def test_only_unused_credit_is_refunded() -> None:
    with pytest.raises(ValidationError, match=r"holds only 50.00 unused: cannot refund 50.01"):
        accounts.refund(SHOP, "m-1", 5_001, remaining_minor=5_000, request=request("cashier:r"))
    with pytest.raises(ValidationError, match=r"holds only 0.00"):
        accounts.refund(SHOP, "c-1", 100, remaining_minor=-2_000, request=request("cashier:r"))
    with pytest.raises(ValidationError, match="positive"):
        accounts.refund(SHOP, "m-1", 0, remaining_minor=5_000, request=request("cashier:r"))


def test_a_refund_paid_at_the_desk_leaves_the_cash_drawer() -> None:
    refund = accounts.refund(SHOP, "m-1", 5_000, remaining_minor=5_000, request=request("cashier:r"))
    assert account_balances([refund]) == {"meter-credit:m-1": 5_000, "cash": -5_000}


def test_the_cloud_never_charges_a_prepaid_meter() -> None:
    with pytest.raises(ValidationError, match="deducts its own consumption"):
        accounts.charge(SHOP, "m-1", 100, energy_centi_kwh=10, interval_start=request("a").created_at,
                        created_at=request("b").created_at)


def test_a_charge_is_idempotent_per_meter_and_interval() -> None:
    start = request("a").created_at
    first = accounts.charge(SHOP, "c-1", 100, energy_centi_kwh=10, interval_start=start, created_at=start)
    again = accounts.charge(SHOP, "c-1", 100, energy_centi_kwh=10, interval_start=start,
                            created_at=request("b").created_at)
    assert first.entry_id == again.entry_id and first.channel is Channel.SYSTEM


def test_meters_that_are_not_ours_or_not_open_refuse_sales() -> None:
    with pytest.raises(NotFound):
        sell(10_000, 0, meter_id="m-9")
    with pytest.raises(NotFound):
        accounts.sell(SHOP, "m-1", accounts.SaleQuantity(10_000), balance_minor=0, policy=POLICY,
                      request=request("x", operator="op-2"))
    moved = accounts.transfer_balance(SHOP, "m-1", "m-2", old_remaining_minor=1_000, old_ledger_credit_minor=1_000,
                                      new_balance_minor=0, policy=POLICY, request=request("t"))
    with pytest.raises(Conflict, match="meter m-1 was closed"):
        sell(10_000, 0, shop=moved.account)


def test_opening_needs_meters_once_each_and_records_credit_a_meter_already_held() -> None:
    for meters, message in [([], "at least one meter"),
                            ([accounts.MeterOpening("m", accounts.BillingMode.PREPAID_METER)] * 2, "twice")]:
        with pytest.raises(ValidationError, match=message):
            accounts.open_account("a-1", accounts.Customer("Tea House"), meters, request("o"))
    opened = accounts.open_account("a-1", accounts.Customer("Tea House"),
                                   [accounts.MeterOpening("m", accounts.BillingMode.PREPAID_METER, 2_500)],
                                   request("o"))
    assert account_balances(opened.entries) == {"opening-balances": 2_500, "meter-credit:m": -2_500}
    assert [(e.kind, e.delivers_to_meter) for e in opened.entries] == [(EntryKind.ADJUSTMENT, False)]


def test_meters_are_added_after_opening_but_never_twice() -> None:
    added = accounts.add_meter(SHOP, accounts.MeterOpening("m-3", accounts.BillingMode.PREPAID_METER), request("a"))
    assert [m.meter_id for m in added.account.meters] == ["m-1", "m-2", "c-1", "m-3"] and added.entries == ()
    with pytest.raises(Conflict, match="already on account"):
        accounts.add_meter(added.account, accounts.MeterOpening("m-3", accounts.BillingMode.PREPAID_METER),
                           request("a"))


@pytest.mark.parametrize(("old", "new", "remaining", "ledger", "new_balance", "message"), [
    ("m-1", "m-1", 1_000, 1_000, 0, "two different meters"),
    ("m-1", "m-2", 0, 1_000, 0, "no credit to transfer"),
    ("m-1", "m-2", 1_500, 1_000, 0, "holds 15.00 but the ledger gave it only 10.00"),
    ("m-1", "m-2", 1_000, 1_000, 199_500, "hoarding limit"),
])
def test_transfers_refuse_what_cannot_move(old: str, new: str, remaining: int, ledger: int, new_balance: int,
                                          message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        accounts.transfer_balance(SHOP, old, new, old_remaining_minor=remaining, old_ledger_credit_minor=ledger,
                                  new_balance_minor=new_balance, policy=POLICY, request=request("t"))


def test_closing_needs_every_open_meters_final_reading_and_no_delivery_in_flight() -> None:
    finals = [accounts.FinalReading(m, 0, 0) for m in ("m-1", "m-2")]
    with pytest.raises(ValidationError, match="one final reading for each open meter: c-1, m-1, m-2"):
        accounts.close_account(SHOP, finals, {}, request("c"))
    finals.append(accounts.FinalReading("c-1", 0, 0))
    with pytest.raises(Conflict, match="pending for m-2"):
        accounts.close_account(SHOP, finals, {}, request("c"), meters_with_pending_deliveries={"m-2", "elsewhere"})
    with pytest.raises(ValidationError, match="reconcile it first"):
        accounts.close_account(SHOP, [*finals[:2], accounts.FinalReading("c-1", 0, 10)], {}, request("c"))
    closed = accounts.close_account(SHOP, finals, {}, request("c"))
    assert closed.entries == () and closed.record.refund_minor == 0
    with pytest.raises(Conflict, match="already closed"):
        accounts.close_account(closed.account, finals, {}, request("c"))


def test_policies_must_make_sense() -> None:
    with pytest.raises(ValidationError):
        accounts.SalesPolicy(hoarding_limit_minor=0)
    with pytest.raises(ValidationError):
        accounts.SalesPolicy(hoarding_limit_minor=100, min_top_up_minor=50, max_top_up_minor=10)
