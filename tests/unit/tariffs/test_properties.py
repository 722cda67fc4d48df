"""Properties over random intervals: parts sum exactly, the engine agrees with the independent
minute-by-minute oracle, and posting charges never drifts."""

from __future__ import annotations

import random
from datetime import datetime, tzinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.money import round_to_minor
from chalicelib.domain.tariffs import (
    MICRO_PER_MINOR,
    BillingMonth,
    ChargeAccumulator,
    TariffHistory,
    TariffTable,
    allocate_largest_remainder,
    micro_to_decimal,
    price_interval,
)
from tests.unit.tariffs.oracle import oracle_price
from tests.unit.tariffs.sample_tariffs import CHANGED_HISTORY, LONDON, LONDON_HISTORY, SEASONAL_HISTORY, SHANGHAI

YEAR_2024_S = 1_704_067_200  # 2024-01-01T00:00Z; every sample history is in force from a few hours later
MARCH = BillingMonth(2024, 3)
SITES = [(CHANGED_HISTORY, SHANGHAI), (SEASONAL_HISTORY, SHANGHAI), (LONDON_HISTORY, LONDON)]


def aware(epoch_s: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz)


@pytest.mark.parametrize(("history", "tz"), SITES)
@settings(max_examples=150, deadline=None)
@given(
    offset=st.integers(86400, 360 * 86400),
    seconds=st.integers(1, 3 * 86400),
    energy=st.integers(0, 10**7),
    before=st.integers(0, 10**6),
)
def test_parts_sum_exactly_to_the_interval_energy(
    history: TariffHistory, tz: tzinfo, offset: int, seconds: int, energy: int, before: int
) -> None:
    start = YEAR_2024_S + offset
    priced = price_interval(history, tz, aware(start, tz), aware(start + seconds, tz), energy, before)
    assert sum(part.energy_centi_kwh for part in priced.parts) == energy
    assert all(part.energy_centi_kwh > 0 for part in priced.parts)
    assert priced.cost_micro == sum(part.energy_centi_kwh * part.price for part in priced.parts)


@pytest.mark.parametrize(("history", "tz"), SITES)
@settings(max_examples=60, deadline=None)
@given(
    minute=st.integers(24 * 60, 360 * 24 * 60),
    minutes=st.integers(1, 2 * 24 * 60),
    energy=st.integers(0, 10**6),
    before=st.integers(0, 50_000),
)
def test_engine_agrees_with_the_minute_by_minute_oracle(
    history: TariffHistory, tz: tzinfo, minute: int, minutes: int, energy: int, before: int
) -> None:
    start_s = YEAR_2024_S + 60 * minute
    end_s = start_s + 60 * minutes
    priced = price_interval(history, tz, aware(start_s, tz), aware(end_s, tz), energy, before)
    parts, cost = oracle_price(history, tz, start_s, end_s, energy, before)
    engine_parts = {
        (p.tariff_from, p.rate, p.tier, (p.month.year, p.month.month)): p.energy_centi_kwh for p in priced.parts
    }
    assert engine_parts == parts
    assert priced.cost == cost


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 10**9), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=12))
def test_largest_remainder_shares_sum_to_the_total(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        weights = [*weights, 1]
    shares = allocate_largest_remainder(total, weights)
    assert sum(shares) == total
    assert all(
        abs(share * sum(weights) - total * weight) < sum(weights) for share, weight in zip(shares, weights, strict=True)
    )


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1000, 4000), small=st.booleans())
def test_accumulator_never_drifts_over_thousands_of_intervals(seed: int, count: int, small: bool) -> None:
    """Random consecutive readings through March, each priced and posted alone; ``small`` readings cost
    fractions of a minor unit each, where rounding every charge on its own would drift the most."""
    rng = random.Random(seed)
    table = TariffTable.compile(CHANGED_HISTORY, SHANGHAI, MARCH)
    state, posted, exact, month_energy, at = ChargeAccumulator(MARCH), 0, 0, 0, table.covers_from_s
    for _ in range(count):
        start = at + rng.choice((0, 0, 0, rng.randrange(1, 3600)))
        end = min(start + rng.randrange(1, 1200), table.covers_until_s)
        if start >= end:
            break
        energy = rng.randrange(0, 3) if small else rng.randrange(0, 5_000)
        cost = table.cost_interval(start, end, energy, month_energy)
        state, charge = state.post(MARCH, cost)
        assert charge >= 0
        assert abs(state.carried_micro) <= MICRO_PER_MINOR // 2  # never more than half a minor unit adrift
        posted, exact, month_energy, at = posted + charge, exact + cost, month_energy + energy, end
    assert posted == state.posted_minor == round_to_minor(micro_to_decimal(exact))
