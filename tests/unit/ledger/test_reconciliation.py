"""Reconciliation: what the ledger says a meter should show against what it shows, and payments against sales."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain import accounts
from chalicelib.domain.delivery import (
    DiscrepancyKind,
    MeterQueue,
    MeterRegisters,
    Payment,
    acknowledge,
    enqueue,
    mark_sent,
    reconcile_meter,
    reconcile_payments,
)
from chalicelib.domain.ledger import Channel, Entry, stripe_request_id

from .builders import POLICY, open_shop, prepaid, request

SHOP = open_shop(prepaid("m-1"))
BASELINE = MeterRegisters(purchase_count=41, total_purchased_minor=100_000, remaining_minor=500)


def sale(amount: int, request_id: str, channel: Channel = Channel.CASH) -> Entry:
    return accounts.sell(SHOP, "m-1", accounts.SaleQuantity(amount), balance_minor=0, policy=POLICY,
                         request=request(request_id, channel))


ENTRIES = [sale(10_000, "cashier:a"), sale(5_000, stripe_request_id("pi_1"), Channel.CARD),
           accounts.refund(SHOP, "m-1", 2_000, remaining_minor=15_000, request=request("cashier:r"))]


def delivered(entries: list[Entry], *, leave: int = 0) -> MeterQueue:
    """Every entry queued; all but the last ``leave`` delivered."""
    q = MeterQueue("m-1", BASELINE.purchase_count)
    for entry in entries:
        q = enqueue(q, entry)
    for entry in entries[:len(entries) - leave]:
        q = acknowledge(mark_sent(q, entry.entry_id)[0], entry.entry_id)
    return q


def kinds(registers: MeterRegisters, queue: MeterQueue, entries: list[Entry] = ENTRIES,
          bound: int | None = None) -> list[DiscrepancyKind]:
    return [d.kind for d in reconcile_meter("m-1", BASELINE, registers, entries, queue, max_consumption_minor=bound)]


HEALTHY = MeterRegisters(44, 115_000, 12_800)  # 5.00 + 150.00 - 20.00 - 7.00 used


def test_a_healthy_meter_agrees_with_the_ledger() -> None:
    assert kinds(HEALTHY, delivered(ENTRIES), bound=1_000) == []


def test_a_delivery_in_flight_may_or_may_not_have_landed() -> None:
    q = delivered(ENTRIES, leave=1)
    in_flight, _ = mark_sent(q, ENTRIES[2].entry_id)
    assert kinds(MeterRegisters(43, 115_000, 14_800), in_flight) == []
    assert kinds(HEALTHY, in_flight) == []
    assert kinds(HEALTHY, q) == [DiscrepancyKind.PURCHASE_COUNT]  # nothing in flight: the count is wrong


def test_each_register_that_disagrees_is_reported_with_evidence() -> None:
    found = reconcile_meter("m-1", BASELINE, MeterRegisters(45, 116_000, 13_600), ENTRIES, delivered(ENTRIES))
    assert [d.kind for d in found] == [DiscrepancyKind.PURCHASE_COUNT, DiscrepancyKind.TOTAL_PURCHASED,
                                       DiscrepancyKind.REMAINING_ABOVE_LEDGER]
    assert found[0].message == "purchase count 45, the ledger says 44"
    assert found[0].evidence["expected_remaining_ceiling_minor"] == 13_500 and found[0].subject == "m-1"


def test_a_meter_that_lost_more_than_its_energy_can_explain() -> None:
    assert kinds(replace(HEALTHY, remaining_minor=10_000), delivered(ENTRIES), bound=1_000) == [
        DiscrepancyKind.REMAINING_BELOW_BOUND]


def test_credit_that_was_never_queued_or_a_delivery_without_an_entry() -> None:
    q = delivered(ENTRIES[:2])
    assert DiscrepancyKind.NOT_QUEUED in kinds(MeterRegisters(43, 115_000, 15_500), q)
    assert kinds(HEALTHY, delivered(ENTRIES), entries=ENTRIES[:2])[0] is DiscrepancyKind.NOT_IN_LEDGER


def test_payments_and_card_sales_match_one_to_one() -> None:
    assert reconcile_payments(ENTRIES, [Payment(stripe_request_id("pi_1"), 5_000)]) == []
    found = reconcile_payments(ENTRIES, [Payment(stripe_request_id("pi_1"), 4_000),
                                         Payment(stripe_request_id("pi_2"), 7_000)])
    assert [(d.kind, d.subject) for d in found] == [
        (DiscrepancyKind.PAYMENT_NOT_CREDITED, "stripe:pi_2"), (DiscrepancyKind.PAYMENT_AMOUNT, "stripe:pi_1")]
    assert [d.kind for d in reconcile_payments(ENTRIES, [])] == [DiscrepancyKind.SALE_WITHOUT_PAYMENT]
