"""Ladder pushes for prepaid meters: the cloud moves all four rate prices at a tier bound and back
at month rollover."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs import RatePrices, meter_prices_at
from tests.unit.tariffs.sample_tariffs import CHANGED_HISTORY, SHANGHAI, SHANGHAI_HISTORY, push_in_shanghai, shanghai

TIER_1 = RatePrices(sharp=12000, peak=10000, flat=6500, valley=3000)
TIER_2 = RatePrices(sharp=12500, peak=10500, flat=7000, valley=3500)  # +0.0500
TIER_3 = RatePrices(sharp=15000, peak=13000, flat=9500, valley=6000)  # +0.3000


def test_no_push_inside_a_tier() -> None:
    push = push_in_shanghai(shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 500, 10_000)
    assert (push.tier_before, push.tier_now, push.crossed_tier, push.push_needed) == (1, 1, False, False)
    assert push.month_energy_after == 10_500


def test_crossing_into_tier_two_pushes_the_raised_prices() -> None:
    # 199 kWh + 5 kWh = 204 kWh: past the 200 kWh bound
    push = push_in_shanghai(shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 500, 19_900)
    assert (push.tier_before, push.tier_now, push.crossed_tier, push.push_needed) == (1, 2, True, True)
    assert (push.prices_before, push.prices_now) == (TIER_1, TIER_2)


def test_reaching_a_bound_exactly_pushes_for_the_next_energy() -> None:
    # 199 kWh + 1 kWh = 200 kWh: this interval is all tier 1, but the next kWh is tier 2
    push = push_in_shanghai(shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 100, 19_900)
    assert (push.tier_now, push.prices_now) == (2, TIER_2)


def test_month_rollover_pushes_tier_one_again() -> None:
    # at 450 kWh (tier 3) on 31 March 23:30; 400 over the hour: 200 fall in April (time share)
    push = push_in_shanghai(shanghai(2024, 3, 31, 23, 30), shanghai(2024, 4, 1, 0, 30), 400, 45_000)
    assert push.month_rolled_over and not push.crossed_tier
    assert (push.tier_before, push.tier_now, push.month_energy_after) == (3, 1, 200)
    assert (push.prices_before, push.prices_now, push.push_needed) == (TIER_3, TIER_1, True)
    assert str(push.month) == "2024-04"


def test_a_tariff_change_needs_a_push_even_within_a_tier() -> None:
    push = push_in_shanghai(shanghai(2024, 3, 15, 11, 30), shanghai(2024, 3, 15, 12, 30), 100, 0, CHANGED_HISTORY)
    assert not push.crossed_tier and push.push_needed
    assert push.prices_now == RatePrices(13000, 11000, 7000, 3200)


def test_prices_for_a_scheduled_push() -> None:
    # the push at local midnight of the 1st, and the one when a version takes effect
    assert meter_prices_at(SHANGHAI_HISTORY, SHANGHAI, shanghai(2024, 4, 1), 0) == TIER_1
    assert meter_prices_at(CHANGED_HISTORY, SHANGHAI, shanghai(2024, 3, 15, 12), 45_000) == RatePrices(
        16000, 14000, 10000, 6200
    )


def test_a_push_plan_refuses_an_interval_going_back() -> None:
    with pytest.raises(ValidationError, match="cannot end before it starts"):
        push_in_shanghai(shanghai(2024, 3, 5, 12, 30), shanghai(2024, 3, 5, 12), 100, 0)
