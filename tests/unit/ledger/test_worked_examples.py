"""Worked examples, in the manner of django-hordak's test_worked_examples: a story, then the trial balance.

Signs: debit positive, credit negative; ``credit(...)`` is the customer's view of one meter (positive = credit).
"""

from __future__ import annotations

from chalicelib.domain import accounts
from chalicelib.domain.ledger import Channel, EntryKind, balances

from .builders import POLICY, account_balances, cloud_billed, credit, open_shop, prepaid, request

SHOP = open_shop(prepaid("m-1"), prepaid("m-2"), cloud_billed("c-1"))


def test_a_cash_sale_moves_cash_into_the_meters_credit() -> None:
    sale = accounts.sell(SHOP, "m-1", accounts.SaleQuantity(50_000), balance_minor=0, policy=POLICY,
                         request=request("cashier:1"))
    assert account_balances([sale]) == {"cash": 50_000, "meter-credit:m-1": -50_000}
    assert credit([sale], "m-1") == 50_000
    assert sale.delivers_to_meter and sale.kind is EntryKind.SALE and sale.actor == "cashier-li"


def test_a_card_sale_then_a_refund_owed_back_to_the_customer() -> None:
    sale = accounts.sell(SHOP, "m-1", accounts.SaleQuantity(50_000), balance_minor=0, policy=POLICY,
                         request=request("stripe:pi_1", Channel.CARD))
    refund = accounts.refund(SHOP, "m-1", 20_000, remaining_minor=50_000, request=request("cashier:2", Channel.SYSTEM))
    assert account_balances([sale, refund]) == {
        "card-clearing": 50_000, "meter-credit:m-1": -30_000, "refunds-payable:acct-7": -20_000}
    totals = balances([sale, refund]).meter("m-1")
    assert (totals.credit, totals.sold, totals.refunded) == (30_000, 50_000, 20_000)


def test_reversing_a_sale_puts_every_account_back_and_costs_the_meter_two_counts() -> None:
    sale = accounts.sell(SHOP, "m-1", accounts.SaleQuantity(30_000), balance_minor=0, policy=POLICY,
                         request=request("cashier:3"))
    reversal = accounts.reverse(SHOP, sale, [sale], "keyed 300 instead of 30", balance_minor=30_000, policy=POLICY,
                                request=request("cashier:4"))
    assert account_balances([sale, reversal]) == {}
    assert reversal.channel is Channel.CASH and reversal.reverses == sale.entry_id
    totals = balances([sale, reversal]).meter("m-1")
    assert (totals.sold, totals.meter_commands, totals.purchased_on_meter, totals.refunded_on_meter) == (
        0, 2, 30_000, 30_000)


def test_reversing_a_refund_gives_the_credit_back() -> None:
    sale = accounts.sell(SHOP, "m-2", accounts.SaleQuantity(40_000), balance_minor=0, policy=POLICY,
                         request=request("cashier:5"))
    refund = accounts.refund(SHOP, "m-2", 15_000, remaining_minor=40_000, request=request("cashier:6"))
    reversal = accounts.reverse(SHOP, refund, [sale, refund], "refunded the wrong shop", balance_minor=25_000,
                                policy=POLICY, request=request("cashier:7"))
    assert account_balances([sale, refund, reversal]) == {"cash": 40_000, "meter-credit:m-2": -40_000}
    assert balances([sale, refund, reversal]).meter("m-2").refunded == 0


def test_retrofit_transfers_the_old_meters_remaining_credit_and_recognises_what_it_used() -> None:
    shop = open_shop(prepaid("old"), prepaid("new"), account_id="acct-9")
    sale = accounts.sell(shop, "old", accounts.SaleQuantity(30_000), balance_minor=0, policy=POLICY,
                         request=request("cashier:8"))
    moved = accounts.transfer_balance(shop, "old", "new", old_remaining_minor=12_000, old_ledger_credit_minor=30_000,
                                      new_balance_minor=0, policy=POLICY, request=request("cashier:9"))
    entries = [sale, *moved.entries]
    assert [e.kind for e in moved.entries] == [EntryKind.CHARGE, EntryKind.TRANSFER]
    assert account_balances(entries) == {"cash": 30_000, "consumption-revenue": -18_000, "meter-credit:new": -12_000}
    assert (credit(entries, "old"), credit(entries, "new")) == (0, 12_000)
    assert balances(entries).meter("new").transferred == 12_000
    assert not moved.account.meter("old").is_open and moved.account.meter("new").is_open
    assert [e.delivers_to_meter for e in moved.entries] == [False, True]


def test_cloud_billed_charges_can_drive_the_balance_into_arrears() -> None:
    sale = accounts.sell(SHOP, "c-1", accounts.SaleQuantity(10_000), balance_minor=0, policy=POLICY,
                         request=request("cashier:10"))
    charges = [accounts.charge(SHOP, "c-1", amount, energy_centi_kwh=energy, interval_start=request("x").created_at,
                               created_at=request("y").created_at)
               for amount, energy in ((8_000, 6_400), (5_000, 4_000))]
    entries = [sale, *charges]
    assert credit(entries, "c-1") == -3_000
    assert account_balances(entries) == {"cash": 10_000, "meter-credit:c-1": 3_000, "consumption-revenue": -13_000}
    assert not any(e.delivers_to_meter for e in entries)  # the cloud holds a cloud-billed meter's balance


def test_closing_with_a_refund_settles_each_meter_to_zero() -> None:
    shop = open_shop(prepaid("p-1"), prepaid("p-2"), account_id="acct-11")
    sales = [accounts.sell(shop, m, accounts.SaleQuantity(a), balance_minor=0, policy=POLICY, request=request(f"s-{m}"))
             for m, a in (("p-1", 20_000), ("p-2", 5_000))]
    finals = [accounts.FinalReading("p-1", 123_456, 15_000), accounts.FinalReading("p-2", 9_000, 5_000)]
    closed = accounts.close_account(shop, finals, {"p-1": 20_000, "p-2": 5_000}, request("close-11"))
    entries = [*sales, *closed.entries]
    assert account_balances(entries) == {"cash": 25_000, "consumption-revenue": -5_000,
                                         "refunds-payable:acct-11": -20_000}
    assert (closed.record.refund_minor, closed.record.amount_due_minor) == (20_000, 0)
    assert [(m.meter_id, m.consumption_minor, m.remaining_minor) for m in closed.record.meters] == [
        ("p-1", 5_000, 15_000), ("p-2", 0, 5_000)]
    assert not closed.account.is_open and all(not m.is_open for m in closed.account.meters)
    refunds = [e for e in closed.entries if e.kind is EntryKind.REFUND]
    assert [(e.meter_id, e.amount_minor, e.delivers_to_meter) for e in refunds] == [
        ("p-1", 15_000, True), ("p-2", 5_000, True)]  # the meters are emptied for the next tenant


def test_closing_in_arrears_leaves_an_amount_due() -> None:
    shop = open_shop(cloud_billed("c-9"), account_id="acct-12")
    sale = accounts.sell(shop, "c-9", accounts.SaleQuantity(10_000), balance_minor=0, policy=POLICY,
                         request=request("s-12"))
    used = accounts.charge(shop, "c-9", 13_000, energy_centi_kwh=10_000, interval_start=request("i").created_at,
                           created_at=request("i2").created_at)
    closed = accounts.close_account(shop, [accounts.FinalReading("c-9", 10_000, -3_000)], {"c-9": -3_000},
                                    request("close-12"))
    entries = [sale, used, *closed.entries]
    assert account_balances(entries) == {"cash": 10_000, "consumption-revenue": -13_000, "amount-due:acct-12": 3_000}
    assert (closed.record.refund_minor, closed.record.amount_due_minor) == (0, 3_000)
    assert credit(entries, "c-9") == 0


def test_closing_sets_one_meters_credit_against_anothers_arrears() -> None:
    shop = open_shop(prepaid("p-5"), cloud_billed("c-5"), account_id="acct-13")
    sale = accounts.sell(shop, "p-5", accounts.SaleQuantity(5_000), balance_minor=0, policy=POLICY,
                         request=request("s-13"))
    used = accounts.charge(shop, "c-5", 3_000, energy_centi_kwh=2_000, interval_start=request("i").created_at,
                           created_at=request("i2").created_at)
    finals = [accounts.FinalReading("p-5", 100, 5_000), accounts.FinalReading("c-5", 2_000, -3_000)]
    closed = accounts.close_account(shop, finals, {"p-5": 5_000, "c-5": -3_000}, request("close-13"))
    entries = [sale, used, *closed.entries]
    assert account_balances(entries) == {"cash": 5_000, "consumption-revenue": -3_000,
                                         "refunds-payable:acct-13": -2_000}
    assert (closed.record.refund_minor, closed.record.amount_due_minor) == (2_000, 0)


def test_every_worked_example_balances() -> None:
    sale = accounts.sell(SHOP, "m-1", accounts.SaleQuantity(1_000), balance_minor=0, policy=POLICY,
                         request=request("cashier:t"))
    assert sum(balances([sale]).by_account.values()) == 0
