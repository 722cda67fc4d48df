"""The money path under faults, as a model: random sales, refunds, reversals, duplicates, lost commands and answers,
delayed and doubled frames, and an offline bridge; at quiescence nothing is lost, nothing is delivered twice, and
the ledger, the stored balances and the meter's registers agree."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import delivery, money_faults_model
from chalicelib.domain.ledger import Channel
from chalicelib.domain.money_faults_model import (
    Bridge,
    Fault,
    Inject,
    ModelMeter,
    Op,
    Pump,
    Refund,
    Repeat,
    Reverse,
    Sell,
    random_scenario,
    run_scenario,
)

AMOUNTS = st.sampled_from([50, 100, 1_000, 5_000, 20_000, 50_000, 60_000])  # some outside the top-up limits
OPS = st.one_of(
    st.builds(Sell, AMOUNTS, st.sampled_from([Channel.CASH, Channel.CARD, Channel.TRANSFER])),
    st.builds(Refund, AMOUNTS),
    st.builds(Reverse, st.integers(0, 60)),
    st.builds(Repeat, st.integers(0, 60)),
    st.builds(Inject, st.sampled_from(list(Fault))),
    st.builds(Bridge, st.booleans()),
    st.builds(Pump, st.integers(1, 3)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(OPS, max_size=40), st.integers(0, 65_400), st.sampled_from([0, 0, 2_500]))
def test_nothing_is_lost_or_doubled_and_everything_agrees_at_quiescence(ops: list[Op], start_count: int,
                                                                        start_remaining: int) -> None:
    result = run_scenario(ops, start_count=start_count, start_remaining=start_remaining)
    assert result.problems == ()
    assert (result.lost, result.doubled) == (0, 0)


def test_seeded_scenarios_as_the_benchmark_draws_them() -> None:
    rng = random.Random(20240301)
    results = [run_scenario(random_scenario(rng, 40), start_count=rng.randrange(60_000)) for _ in range(200)]
    assert [r.problems for r in results if not r.ok] == []
    assert sum(r.lost + r.doubled for r in results) == 0
    assert sum(r.deliveries for r in results) > 1_000 and sum(r.duplicates for r in results) > 100


def test_a_long_outage_delivers_everything_in_order_once_the_bridge_returns() -> None:
    ops: list[Op] = [Bridge(online=False), *(Sell(5_000) for _ in range(6)), Refund(1_000), Reverse(0), Pump(20)]
    result = run_scenario(ops, start_count=7)
    assert result.ok and (result.entries, result.deliveries) == (8, 8)


def test_retried_requests_are_absorbed() -> None:
    result = run_scenario([Sell(5_000), Repeat(0), Refund(1_000), Repeat(1), Reverse(1), Repeat(2), Pump(3)])
    assert result.ok and (result.entries, result.duplicates) == (3, 3)


def test_the_refusals_the_rules_make_are_counted_not_posted() -> None:
    ops: list[Op] = [Sell(50_000), Sell(50_000), Sell(1_000), Refund(200_000), Reverse(0), Reverse(0), Reverse(2)]
    result = run_scenario(ops)
    assert result.ok and (result.entries, result.refused) == (3, 4)  # hoarding, refund, twice, reversal of reversal


# The checker can fail: break the read-back rule, or the meter's count check, and it says so.


def test_the_checker_catches_credit_lost_by_a_careless_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    honest = delivery.apply_read_back

    def believes_every_send(queue: delivery.MeterQueue, meter_count: int, *, refused: bool = False
                            ) -> delivery.ReadBack:
        head = queue.head()
        return honest(queue, head.count if head and head.count else meter_count, refused=False)

    monkeypatch.setattr(money_faults_model.delivery, "apply_read_back", believes_every_send)
    result = run_scenario([Sell(5_000), Inject(Fault.COMMAND_LOST), Pump(2)])
    assert result.lost == 1 and not result.ok


def test_the_checker_catches_a_meter_that_applies_a_frame_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_count_check(meter: ModelMeter, sent: delivery.Delivery) -> bool:
        meter.remaining_minor += sent.signed_minor
        meter.total_purchased_minor += max(sent.signed_minor, 0)
        meter.purchase_count = sent.count or 0
        meter.applied.append(sent.delivery_id)
        return True

    monkeypatch.setattr(ModelMeter, "execute", no_count_check)
    result = run_scenario([Sell(5_000), Inject(Fault.EXECUTED_TWICE), Pump(2)])
    assert result.doubled == 1 and not result.ok
