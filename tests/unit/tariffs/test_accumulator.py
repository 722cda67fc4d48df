"""Posting charges interval by interval, the remainder below a minor unit carried."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs import BillingMonth, ChargeAccumulator, epoch_seconds
from tests.unit.tariffs.sample_tariffs import SHANGHAI, price_in_shanghai, shanghai

MARCH, APRIL = BillingMonth(2024, 3), BillingMonth(2024, 4)


def test_sub_minor_costs_are_carried_not_lost() -> None:
    # three intervals of 0.004 currency each (4_000 micro): rounding each alone would post 0 + 0 + 0
    # running exact total 4_000 → 0 minor; 8_000 → 0.008 → 1 minor (0.8 rounds up); 12_000 → 1.2 → 1 minor
    state = ChargeAccumulator(MARCH)
    charges = []
    for _ in range(3):
        state, charge = state.post(MARCH, 4_000)
        charges.append(charge)
    assert charges == [0, 1, 0]
    assert (state.exact_micro, state.posted_minor, state.carried_micro) == (12_000, 1, 2_000)


def test_halves_round_to_even() -> None:
    # 2_775_000 micro = 277.5 minor → 278 (even); another 2_775_000 → 555.0 → 555: post 277
    state, first = ChargeAccumulator(MARCH).post(MARCH, 2_775_000)
    state, second = state.post(MARCH, 2_775_000)
    assert (first, second) == (278, 277)


def test_a_new_month_starts_afresh_and_a_closed_month_is_refused() -> None:
    state, _ = ChargeAccumulator(MARCH).post(MARCH, 4_000)
    state, charge = state.post(APRIL, 6_000)  # March's 0.4 minor were within rounding of March's total
    assert (state.month, state.exact_micro, charge) == (APRIL, 6_000, 1)
    with pytest.raises(ValidationError, match="2024-03 is closed"):
        state.post(MARCH, 1)


def test_posting_an_interval_across_the_month_end() -> None:
    # 1_200_000 micro in March (120 minor) and 600_000 in April (60 minor), see the worked examples
    priced = price_in_shanghai(shanghai(2024, 3, 31, 23, 30), shanghai(2024, 4, 1, 0, 30), 400, 45_000)
    state, charges = ChargeAccumulator(MARCH, exact_micro=5_000, posted_minor=0).post_all(priced.cost_micro_by_month())
    assert charges == (120, 60)  # March: 1_205_000 → 120.5 → 120 (even), then April starts afresh
    assert (state.month, state.posted_minor) == (APRIL, 60)
    assert epoch_seconds(shanghai(2024, 4, 1)) == APRIL.start_s(SHANGHAI)
