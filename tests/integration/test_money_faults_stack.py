"""The money_faults suite through the real services against DynamoDB Local: SalesDesk, CreditDelivery and the
DynamoDB money repository, with a model meter behind a test double of the bridge link (tests/support/money_stack.py
and model_bridge.py). Seeded random scenarios, then one named scenario per injected fault; each ends with nothing
lost, nothing delivered twice, the ledger equal to the meter's registers and nothing blocked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from chalicelib.domain.delivery import Delivery, MeterQueue, ReadBack
from chalicelib.domain.errors import DomainError
from chalicelib.domain.ledger import Entry, EntryKind
from chalicelib.domain.money_faults_model import ModelMeter
from chalicelib.services import credit_delivery
from tests.conftest import OperatorFixture
from tests.support.model_bridge import CrashPoint, LinkFault
from tests.support.money_stack import (
    Asked,
    CrashAt,
    Deliver,
    Hit,
    Late,
    Online,
    Op,
    Refund,
    Retry,
    Reverse,
    Sale,
    StackResult,
    StackWorld,
    Sweep,
    Together,
    Twice,
    play,
    seeded_stack_scenario,
)

SEEDS = range(7_000, 7_036)


@pytest.fixture(autouse=True)
def probes_at_once(ddb: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credit_delivery, "PROBE_AFTER", timedelta(0))  # an unanswered send is probed at once


def _clean(result: StackResult) -> None:
    assert result.problems == ()
    assert (result.lost, result.doubled) == (0, 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_random_scenario_loses_nothing_and_doubles_nothing(seed: int) -> None:
    ops, start_count, start_remaining = seeded_stack_scenario(seed)
    _, result = play(ops, start_count=start_count, start_remaining=start_remaining)
    assert result.problems == (), f"replay: seeded_stack_scenario({seed})"
    assert (result.lost, result.doubled) == (0, 0)


# -- one named scenario per crash point --------------------------------------------------------------------


def test_a_crash_inside_the_ledger_commit_posts_nothing_and_the_retry_posts_once(
        new_operator: OperatorFixture) -> None:
    world, result = play([CrashAt(CrashPoint.BEFORE_POSTING), Sale(5_000), Deliver(), Retry(0), Deliver()],
                         operator_id=new_operator.operator_id, start_count=41)
    _clean(result)
    assert world.money.fired["before-posting"] == 1
    assert world.stats["answer-crashed"] == 1 and world.asked[0].answer == "posted"
    assert (result.deliveries, world.model.purchase_count, world.model.remaining_minor) == (1, 42, 5_000)


def test_a_crash_after_the_commit_before_the_delivery_kick_is_delivered_by_the_sweep(
        new_operator: OperatorFixture) -> None:
    world, result = play([CrashAt(CrashPoint.AFTER_POSTING), Sale(5_000), Deliver()],
                         operator_id=new_operator.operator_id, start_count=7)
    _clean(result)
    assert world.asked[0].answer == "crashed" and world.link.stats["commands"] == 1  # sent by the sweep, once
    assert world.model.applied == [e.entry_id for e in world.money.meter_entries(
        world.operator_id, world.meter.meter_id) if e.delivers_to_meter]


def test_the_retry_of_a_sale_whose_answer_crashed_answers_the_stored_entry(new_operator: OperatorFixture) -> None:
    world, result = play([CrashAt(CrashPoint.AFTER_POSTING), Sale(5_000), Retry(0), Retry(0)],
                         operator_id=new_operator.operator_id)
    _clean(result)
    assert world.asked[0].answer == "posted" and result.entries == 1 and result.deliveries == 1  # no opening entry at 0


def test_a_crash_after_mark_sent_before_the_command_leaves_is_probed_and_resent_with_the_same_count(
        new_operator: OperatorFixture) -> None:
    world, result = play([CrashAt(CrashPoint.BEFORE_SEND), Sale(5_000), Sweep(), Deliver(), Sweep(), Deliver()],
                         operator_id=new_operator.operator_id, start_count=9)
    _clean(result)
    assert world.link.stats["crash-before-send"] == 1 and world.asked[0].answer == "crashed"  # the kick died
    sale = next(e for e in world.money.meter_entries(world.operator_id, world.meter.meter_id) if e.delivers_to_meter)
    assert (world.model.purchase_count, world.model.applied) == (10, [sale.entry_id])


@pytest.mark.parametrize("point", [CrashPoint.BEFORE_WORKER_WRITE, CrashPoint.AFTER_WORKER_WRITE])
def test_a_crash_in_the_delivery_workers_writes_is_finished_by_the_sweep(
        point: CrashPoint, new_operator: OperatorFixture) -> None:
    ops: list[Op] = [Sale(1_000), Sale(2_000), CrashAt(point), Deliver(), Deliver(), Sale(3_000), Deliver()]
    world, result = play(ops, operator_id=new_operator.operator_id)
    _clean(result)
    assert world.money.fired[point.value] == 1 and result.deliveries == 3 and world.model.remaining_minor == 6_000


# -- one named scenario per link fault ---------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(LinkFault))
def test_each_link_fault_on_a_sale_ends_delivered_once(fault: LinkFault, new_operator: OperatorFixture) -> None:
    ops: list[Op] = [Hit(fault), Sale(5_000), Deliver(), Sweep(), Deliver(), Sale(1_000), Deliver(), Late()]
    world, result = play(ops, operator_id=new_operator.operator_id, start_count=100)
    _clean(result)
    assert world.link.stats[f"fault-{fault.value}"] == 1
    assert (world.model.purchase_count, world.model.remaining_minor) == (102, 6_000)


def test_an_applied_command_whose_answer_is_lost_is_settled_by_the_read_back_never_resent(
        new_operator: OperatorFixture) -> None:
    world, result = play([Hit(LinkFault.ANSWER_LOST), Sale(5_000), Sweep(), Deliver(), Sweep(3), Deliver()],
                         operator_id=new_operator.operator_id)
    _clean(result)
    assert world.link.stats["meter-applied"] == 1 and world.link.stats["meter-refused"] == 0  # no second write


def test_a_command_overtaken_by_the_probe_lands_late_and_the_resend_is_refused_by_the_count(
        new_operator: OperatorFixture) -> None:
    world, result = play([Hit(LinkFault.HELD), Sale(5_000), Sweep(), Deliver(), Sweep(), Deliver()],
                         operator_id=new_operator.operator_id, start_count=3)
    _clean(result)
    assert world.link.stats["meter-applied"] == 1 and world.link.stats["meter-refused"] == 1
    assert world.model.purchase_count == 4


def test_a_bridge_offline_for_hours_delivers_everything_in_order_when_it_returns(
        new_operator: OperatorFixture) -> None:
    ops: list[Op] = [Sale(2_000), Online(False), *(Sale(5_000) for _ in range(5)), Refund(1_000), Reverse(1),
                     Sweep(3), Deliver(), Online(True), Deliver(), Deliver()]
    world, result = play(ops, operator_id=new_operator.operator_id, start_count=500)
    _clean(result)
    delivering = [e.entry_id for e in world.money.meter_entries(world.operator_id, world.meter.meter_id)
                  if e.delivers_to_meter]
    assert world.model.applied == delivering and len(delivering) == 8  # in posting order, each once
    assert world.model.remaining_minor == 2_000 + 4 * 5_000 - 1_000


def test_answers_out_of_order_and_twice_change_nothing(new_operator: OperatorFixture) -> None:
    ops: list[Op] = [Online(False), Sale(1_000), Online(True), Hit(LinkFault.ANSWER_TWICE), Sale(2_000),
                     Hit(LinkFault.ANSWER_TWICE), Sweep(), Sweep(), Deliver(shuffle_seed=5), Deliver(shuffle_seed=9)]
    _, result = play(ops, operator_id=new_operator.operator_id)
    _clean(result)


# -- duplicates and races ------------------------------------------------------------------------------------


def test_a_request_sent_again_posts_once_and_answers_the_same_entry(new_operator: OperatorFixture) -> None:
    _, result = play([Sale(5_000), Retry(0), Deliver(), Refund(1_000), Retry(1), Retry(0), Deliver()],
                      operator_id=new_operator.operator_id)
    _clean(result)
    assert result.entries == 2 and result.duplicates == 3 and result.refused == 0


def test_two_cashiers_at_once_near_the_hoarding_limit_post_one_sale(new_operator: OperatorFixture) -> None:
    world, result = play([Together(Sale(50_000), Sale(50_000)), Deliver()], operator_id=new_operator.operator_id,
                         start_remaining=2_500)
    _clean(result)
    assert (result.deliveries, world.model.remaining_minor, result.refused) == (1, 52_500, 1)
    world, result = play([Together(Sale(1_000), Sale(2_000)), Together(Deliver(), Sale(500)), Deliver()],
                         operator_id=new_operator.operator_id)
    _clean(result)
    assert (result.deliveries, world.model.remaining_minor) == (3, 3_500)


def test_a_double_click_posts_one_sale(new_operator: OperatorFixture) -> None:
    world, result = play([Twice(5_000), Twice(20_000), Deliver()], operator_id=new_operator.operator_id)
    _clean(result)
    assert result.deliveries == 2 and world.model.remaining_minor == 25_000


def _twin_racing(world: StackWorld, monkeypatch: pytest.MonkeyPatch, submit: Callable[[], Entry]) -> list[object]:
    """``submit`` twice, the second landing exactly between the first's "seen before?" look-up and its judgement
    (what two threads do when the timing is unlucky); returns both answers, the twin's first."""
    answers: list[object] = []
    look_up = world.money.entry
    raced = []

    def entry_then_twin(operator_id: str, entry_id: str) -> Entry | None:
        found = look_up(operator_id, entry_id)
        if not raced:
            raced.append(True)
            answers.append(submit())
        return found

    monkeypatch.setattr(world.money, "entry", entry_then_twin)
    try:
        answers.append(submit())
    except DomainError as refused:
        answers.append(refused)
    return answers


def test_the_same_sale_submitted_twice_at_once_answers_both_with_the_one_entry(
        new_operator: OperatorFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    world = StackWorld(new_operator.operator_id, start_count=0, start_remaining=0)
    click = world.ask(Asked(EntryKind.SALE, "double-click-1", 60_000))
    twin, second = _twin_racing(world, monkeypatch, lambda: world.call(click))
    monkeypatch.undo()
    world.settle()
    _clean(world.check())
    assert isinstance(twin, Entry) and world.model.remaining_minor == 60_000  # posted and delivered once
    assert second == twin, (
        "BUG (services/sales.py SalesDesk._post): a request seen before must answer with what was stored "
        "(money_posting's contract), but the twin submission, which passed posted_before() just before the first "
        f"committed, is judged again on the balance that now includes its own sale and is refused: {second}")


def test_a_reversal_sent_again_answers_the_stored_reversal(new_operator: OperatorFixture) -> None:
    world, result = play([Sale(5_000), Deliver()], operator_id=new_operator.operator_id)
    _clean(result)
    undo = world.ask(Asked(EntryKind.REVERSAL, "undo-sale-1", original=world.asked[0].entry_id))
    first = world.call(undo)
    try:
        again: object = world.call(undo)
    except DomainError as refused:
        again = refused
    world.settle()
    _clean(world.check())
    assert first.kind is EntryKind.REVERSAL and world.model.remaining_minor == 0
    assert again == first, (
        "BUG (services/sales.py SalesDesk.reverse/_post): a retried reversal (same request id) must answer the "
        "stored reversal, but posted_before() looks for entry_id_for(request id) while a reversal's id is "
        f"reversal_entry_id(original), so the retry is judged again and refused: {again}")


def test_a_late_answer_with_old_registers_does_not_make_the_desk_oversell(new_operator: OperatorFixture) -> None:
    """A read-back that arrives after nine newer deliveries (kept back by the bridge) must not replace the newer
    state: the desk would judge the hoarding limit on an old balance."""
    ops: list[Op] = [Hit(LinkFault.ANSWER_LATE), Sale(100), Sweep(), Deliver()]
    ops += [op for _ in range(9) for op in (Sale(1_000), Deliver())]
    ops += [Late(), Sale(91_000), Deliver()]  # true balance 91.00 + 910.00 > 1,000.00: must be refused
    world, result = play(ops, operator_id=new_operator.operator_id)
    assert result.problems == (), (
        "BUG (services/credit_delivery.py take_result): a late answer's read-back is merged as the meter's newest "
        "state (merge_values at the time it arrives), so the desk judges the next sale on registers nine deliveries "
        "old; the deliveries since are no longer all in the queue (KEEP_DELIVERED = 8) and the balance seen is too "
        f"low: the sale is accepted, the meter refuses it and the queue stops. {result.problems}")
    assert world.asked[-1].answer == "refused"


# -- the checker can fail: break the read-back rule, or the meter's count check, and it says so ------------------


def test_the_checker_catches_credit_lost_by_a_careless_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    honest = credit_delivery.apply_read_back

    def believes_every_send(queue: MeterQueue, meter_count: int, *, refused: bool = False) -> ReadBack:
        head = queue.head()
        return honest(queue, head.count if head and head.count else meter_count, refused=False)

    monkeypatch.setattr(credit_delivery, "apply_read_back", believes_every_send)
    _, result = play([Hit(LinkFault.COMMAND_LOST), Sale(5_000), Sweep(), Deliver()])
    assert result.lost == 1 and not result.ok


def test_the_checker_catches_a_meter_that_applies_a_frame_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_count_check(meter: ModelMeter, sent: Delivery) -> bool:
        meter.remaining_minor += sent.signed_minor
        meter.total_purchased_minor += max(sent.signed_minor, 0)
        meter.purchase_count = sent.count or 0
        meter.applied.append(sent.delivery_id)
        return True

    monkeypatch.setattr(ModelMeter, "execute", no_count_check)
    _, result = play([Hit(LinkFault.EXECUTED_TWICE), Sale(5_000), Deliver()])
    assert result.doubled == 1 and not result.ok
