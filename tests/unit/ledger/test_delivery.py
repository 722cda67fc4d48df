"""Delivery to a prepaid meter: counts bound at the first send, strict order, and the read-back rule."""

from __future__ import annotations

import pytest

from chalicelib.domain import accounts
from chalicelib.domain.delivery import (
    MAX_PURCHASE_COUNT,
    CommandKind,
    DeliveryState,
    DiscrepancyKind,
    MeterQueue,
    MeterRegisters,
    Verdict,
    acknowledge,
    apply_read_back,
    balance_seen,
    command_for,
    effective_balance,
    enqueue,
    mark_sent,
    next_to_send,
    resolve,
    unsend,
)
from chalicelib.domain.errors import Conflict, ValidationError
from chalicelib.domain.ledger import Entry

from .builders import POLICY, cloud_billed, open_shop, prepaid, request

SHOP = open_shop(prepaid("m-1"), cloud_billed("c-1"))


def sale(amount: int, name: str, meter_id: str = "m-1") -> Entry:
    return accounts.sell(SHOP, meter_id, accounts.SaleQuantity(amount), balance_minor=0, policy=POLICY,
                         request=request(f"cashier:{name}"))


FIRST, SECOND = sale(10_000, "first"), sale(5_000, "second")
REFUND = accounts.refund(SHOP, "m-1", 2_000, remaining_minor=15_000, request=request("cashier:refund"))


def queue(*entries: Entry, confirmed: int = 41) -> MeterQueue:
    built = MeterQueue("m-1", confirmed)
    for entry in entries:
        built = enqueue(built, entry)
    return built


def sent_first(confirmed: int = 41) -> MeterQueue:
    q, sent = mark_sent(queue(FIRST, SECOND, confirmed=confirmed), FIRST.entry_id)
    assert (sent.state, sent.count, sent.attempts) == (DeliveryState.SENT, confirmed + 1, 1)
    return q


def test_commands_follow_the_meters_credit_change() -> None:
    assert command_for(FIRST) == (CommandKind.PURCHASE, 10_000)
    assert command_for(REFUND) == (CommandKind.REFUND, 2_000)
    assert command_for(sale(10_000, "cloud", "c-1")) is None  # the cloud holds that balance


def test_enqueuing_is_ordered_and_idempotent() -> None:
    q = queue(FIRST, SECOND, REFUND)
    assert enqueue(q, SECOND) is q
    assert [d.delivery_id for d in q.deliveries] == [FIRST.entry_id, SECOND.entry_id, REFUND.entry_id]
    with pytest.raises(ValidationError, match="nothing to deliver to meter m-1"):
        enqueue(q, sale(10_000, "cloud", "c-1"))


def test_an_acknowledged_delivery_confirms_its_count_and_the_next_one_takes_the_following() -> None:
    q = acknowledge(sent_first(), FIRST.entry_id)
    assert q.confirmed_count == 42 and q.get(FIRST.entry_id).state is DeliveryState.DELIVERED
    q = enqueue(q, REFUND)
    q, second = mark_sent(q, SECOND.entry_id)
    q, refund = mark_sent(acknowledge(q, SECOND.entry_id), REFUND.entry_id)
    assert (second.count, refund.count, refund.command) == (43, 44, CommandKind.REFUND)


def test_a_lost_acknowledgement_is_settled_by_the_count_read_back_and_never_resent() -> None:
    outcome = apply_read_back(sent_first(), 42)
    assert outcome.verdict is Verdict.DELIVERED and outcome.queue.confirmed_count == 42
    with pytest.raises(Conflict, match="delivered at count 42: it is never sent again"):
        mark_sent(outcome.queue, FIRST.entry_id)
    assert next_to_send(outcome.queue).delivery_id == SECOND.entry_id  # type: ignore[union-attr]


def test_a_command_that_did_not_land_is_resent_with_the_same_count() -> None:
    outcome = apply_read_back(sent_first(), 41)
    assert outcome.verdict is Verdict.RESEND
    again = next_to_send(outcome.queue)
    assert again is not None and again.delivery_id == FIRST.entry_id
    q, resent = mark_sent(outcome.queue, FIRST.entry_id)
    assert (resent.count, resent.attempts) == (42, 2)
    assert apply_read_back(q, 42).verdict is Verdict.DELIVERED


def test_a_late_landing_after_a_resend_verdict_still_counts_once() -> None:
    waiting = apply_read_back(sent_first(), 41).queue  # read before the delayed command reached the meter
    outcome = apply_read_back(waiting, 42)  # the next cycle's read sees it landed
    assert outcome.verdict is Verdict.DELIVERED and next_to_send(outcome.queue).delivery_id == SECOND.entry_id  # type: ignore[union-attr]


def test_a_refusal_with_the_count_already_there_means_an_earlier_send_landed() -> None:
    outcome = apply_read_back(sent_first(), 42, refused=True)
    assert outcome.verdict is Verdict.DELIVERED


def test_a_refusal_is_final_and_stops_the_queue() -> None:
    outcome = apply_read_back(sent_first(), 41, refused=True)
    assert outcome.verdict is Verdict.FAILED and outcome.discrepancy is not None
    assert outcome.discrepancy.message == "meter refused the purchase of 100.00"
    assert next_to_send(outcome.queue) is None
    with pytest.raises(Conflict, match="stopped: meter refused"):
        mark_sent(outcome.queue, FIRST.entry_id)


@pytest.mark.parametrize("meter_count", [40, 43, 0])
def test_any_other_count_is_a_discrepancy_for_reconciliation(meter_count: int) -> None:
    outcome = apply_read_back(sent_first(), meter_count)
    assert outcome.verdict is Verdict.FAILED and outcome.discrepancy is not None
    assert outcome.discrepancy.kind is DiscrepancyKind.DELIVERY_FAILED
    assert outcome.discrepancy.evidence == {"delivery": FIRST.entry_id, "count_sent": 42, "meter_count": meter_count,
                                            "amount": 10_000}
    assert outcome.queue.get(FIRST.entry_id).state is DeliveryState.FAILED
    assert apply_read_back(outcome.queue, 42).verdict is Verdict.BLOCKED  # only a person moves it on


def test_a_later_delivery_never_overtakes_an_earlier_one() -> None:
    with pytest.raises(Conflict, match="waits behind"):
        mark_sent(queue(FIRST, SECOND), SECOND.entry_id)
    in_flight = sent_first()
    assert next_to_send(in_flight) is None
    with pytest.raises(Conflict, match="waits behind"):
        mark_sent(in_flight, SECOND.entry_id)
    with pytest.raises(Conflict, match="only a read-back"):
        mark_sent(in_flight, FIRST.entry_id)


def test_a_count_that_moves_with_nothing_in_flight_stops_the_queue() -> None:
    q = queue(FIRST)
    assert apply_read_back(q, 41).verdict is Verdict.CONSISTENT
    moved = apply_read_back(q, 42)  # a foreign purchase: ours would otherwise look delivered at 42
    assert moved.verdict is Verdict.COUNT_MOVED and moved.discrepancy is not None
    assert moved.discrepancy.kind is DiscrepancyKind.COUNT_MOVED and next_to_send(moved.queue) is None


def test_a_person_resolves_a_stuck_delivery() -> None:
    failed = apply_read_back(sent_first(), 45).queue
    landed = resolve(failed, meter_count=45, head_applied=True)
    assert landed.get(FIRST.entry_id).state is DeliveryState.DELIVERED and not landed.blocked
    retried = resolve(failed, meter_count=45, head_applied=False)
    _, sent = mark_sent(retried, FIRST.entry_id)
    assert sent.count == 46
    moved = apply_read_back(queue(FIRST), 50).queue
    assert next_to_send(resolve(moved, meter_count=50, head_applied=False)) is not None


def test_the_purchase_count_register_has_a_ceiling() -> None:
    with pytest.raises(Conflict, match="largest purchase count 65535"):
        mark_sent(queue(FIRST, confirmed=MAX_PURCHASE_COUNT), FIRST.entry_id)


def test_the_effective_balance_counts_what_is_still_on_its_way() -> None:
    q = enqueue(sent_first(), REFUND)
    assert effective_balance(MeterRegisters(41, 0, 3_000), q) == 3_000 + 10_000 + 5_000 - 2_000
    with pytest.raises(Conflict, match="settle the read-back first"):
        effective_balance(MeterRegisters(42, 0, 13_000), q)


def test_a_send_that_never_left_waits_again_with_its_count() -> None:
    q = unsend(sent_first(), FIRST.entry_id)
    again = next_to_send(q)
    assert again is not None and (again.delivery_id, again.state, again.count) == (FIRST.entry_id,
                                                                                  DeliveryState.PENDING, 42)
    with pytest.raises(Conflict, match="not the one in flight"):
        unsend(q, FIRST.entry_id)


def test_the_balance_seen_adds_what_the_last_reading_had_not_applied() -> None:
    delivered_first = acknowledge(sent_first(), FIRST.entry_id)  # applied at count 42
    # Read before the first delivery landed (count 41): both sales are still to come.
    assert balance_seen(3_000, 41, delivered_first) == 3_000 + 10_000 + 5_000
    # Read after it landed (count 42): only the second sale is still to come.
    assert balance_seen(13_000, 42, delivered_first) == 13_000 + 5_000
    assert balance_seen(-500, 41, queue()) == -500
