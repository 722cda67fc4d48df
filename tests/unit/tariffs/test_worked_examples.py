"""Worked examples, computed by hand in the comments. Prices are 1/10000 per kWh and energy is
centi-kWh, so energy × price is in micro-units (1/1,000,000 of the currency): 2_775_000 = 2.775000."""

from __future__ import annotations

from decimal import Decimal

from chalicelib.domain.tariffs import BillingMonth, Rate
from tests.unit.tariffs.sample_tariffs import (
    CHANGED_HISTORY,
    SEASONAL_HISTORY,
    TARIFF_A,
    TARIFF_B,
    price_in_shanghai,
    shanghai,
)

MARCH = BillingMonth(2024, 3)
APRIL = BillingMonth(2024, 4)


def test_within_one_band() -> None:
    # 12:00-12:30 is peak; 2.50 kWh × 1.0000 = 2.500000
    priced = price_in_shanghai(shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 250, 0)
    assert [(p.rate, p.tier, p.energy_centi_kwh) for p in priced.parts] == [(Rate.PEAK, 1, 250)]
    assert priced.cost == Decimal("2.500000")
    assert priced.cost_minor == 250
    assert priced.month_energy_after == 250


def test_time_of_use_switch_inside_the_interval_splits_by_time() -> None:
    # 09:45-10:15: 15 min flat, 15 min sharp → 300 centi-kWh splits 150 / 150
    # 150 × 6500 + 150 × 12000 = 975_000 + 1_800_000 = 2_775_000 → 2.775; 277.5 minor rounds to even: 278
    priced = price_in_shanghai(shanghai(2024, 3, 5, 9, 45), shanghai(2024, 3, 5, 10, 15), 300, 0)
    assert [(p.rate, p.energy_centi_kwh, p.price) for p in priced.parts] == [
        (Rate.FLAT, 150, 6500),
        (Rate.SHARP, 150, 12000),
    ]
    assert priced.cost_micro == 2_775_000
    assert priced.cost_minor == 278


def test_uneven_split_gives_the_left_over_unit_to_the_largest_remainder() -> None:
    # 09:57-10:04: 3 min flat, 4 min sharp; 100 × 3/7 = 42.857…, 100 × 4/7 = 57.142…
    # floors 42 + 57 = 99, the one left over goes to flat (remainder 6/7 > 1/7): flat 43, sharp 57
    # 43 × 6500 + 57 × 12000 = 279_500 + 684_000 = 963_500 → 0.9635 → 96 minor
    priced = price_in_shanghai(shanghai(2024, 3, 5, 9, 57), shanghai(2024, 3, 5, 10, 4), 100, 0)
    assert [(p.rate, p.energy_centi_kwh) for p in priced.parts] == [(Rate.FLAT, 43), (Rate.SHARP, 57)]
    assert priced.cost_micro == 963_500
    assert priced.cost_minor == 96


def test_band_wrapping_round_midnight() -> None:
    # 22:30-08:30 next day: flat 22:30-23:00 (30 min), valley 23:00-08:00 (540 min), flat 08:00-08:30 (30 min)
    # 600 centi-kWh over 600 min: flat 30 + 30 = 60, valley 540
    # 60 × 6500 + 540 × 3000 = 390_000 + 1_620_000 = 2_010_000
    priced = price_in_shanghai(shanghai(2024, 3, 5, 22, 30), shanghai(2024, 3, 6, 8, 30), 600, 0)
    assert priced.energy_by_rate() == {Rate.SHARP: 0, Rate.PEAK: 0, Rate.FLAT: 60, Rate.VALLEY: 540}
    assert priced.cost_micro == 2_010_000


def test_tier_bound_inside_the_interval_splits_by_energy() -> None:
    # month at 199 kWh (19_900); 12:00-12:30 peak, 5 kWh: 1 kWh fills tier 1 to 200 kWh, 4 kWh in tier 2
    # 100 × 10000 + 400 × (10000 + 500) = 1_000_000 + 4_200_000 = 5_200_000 → 5.20
    priced = price_in_shanghai(shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 500, 19_900)
    assert [(p.rate, p.tier, p.energy_centi_kwh, p.price) for p in priced.parts] == [
        (Rate.PEAK, 1, 100, 10000),
        (Rate.PEAK, 2, 400, 10500),
    ]
    assert priced.cost_micro == 5_200_000
    assert priced.month_energy_after == 20_400


def test_tier_bound_and_switch_in_one_interval_follow_time_order() -> None:
    # 10:30-11:30: sharp 30 min, peak 30 min → 1000 splits 500 / 500; month at 19_600
    # sharp comes first: 400 fill tier 1, 100 go to tier 2; all 500 peak are tier 2
    # 400 × 12000 + 100 × 12500 + 500 × 10500 = 4_800_000 + 1_250_000 + 5_250_000 = 11_300_000
    priced = price_in_shanghai(shanghai(2024, 3, 5, 10, 30), shanghai(2024, 3, 5, 11, 30), 1000, 19_600)
    assert [(p.rate, p.tier, p.energy_centi_kwh) for p in priced.parts] == [
        (Rate.SHARP, 1, 400),
        (Rate.SHARP, 2, 100),
        (Rate.PEAK, 2, 500),
    ]
    assert priced.cost_micro == 11_300_000


def test_energy_bringing_the_month_exactly_to_a_bound_stays_in_the_lower_tier() -> None:
    # 19_900 + 100 = 20_000 exactly: all tier 1, 100 × 10000 = 1_000_000
    priced = price_in_shanghai(shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 100, 19_900)
    assert [(p.tier, p.energy_centi_kwh) for p in priced.parts] == [(1, 100)]
    assert priced.cost_micro == 1_000_000


def test_tariff_change_mid_month() -> None:
    # version B from 15 March 12:00; 11:40-12:20 is peak throughout, 20 min under A and 20 under B
    # month at 300 kWh (tier 2): 600 splits 300 / 300
    # 300 × (10000 + 500) + 300 × (11000 + 500) = 3_150_000 + 3_450_000 = 6_600_000
    priced = price_in_shanghai(
        shanghai(2024, 3, 15, 11, 40), shanghai(2024, 3, 15, 12, 20), 600, 30_000, CHANGED_HISTORY
    )
    assert [(p.tariff_from, p.tier, p.energy_centi_kwh, p.price) for p in priced.parts] == [
        (TARIFF_A.effective_from, 2, 300, 10500),
        (TARIFF_B.effective_from, 2, 300, 11500),
    ]
    assert priced.cost_micro == 6_600_000
    # the ladder keeps counting across the change: 30_000 + 600
    assert priced.month_energy_after == 30_600


def test_periods_before_and_after_a_change_use_the_version_then_in_force() -> None:
    # 14 March 12:00-12:30 peak under A: 100 × 10000; 16 March under B: 100 × 11000
    before = price_in_shanghai(shanghai(2024, 3, 14, 12), shanghai(2024, 3, 14, 12, 30), 100, 0, CHANGED_HISTORY)
    after = price_in_shanghai(shanghai(2024, 3, 16, 12), shanghai(2024, 3, 16, 12, 30), 100, 0, CHANGED_HISTORY)
    assert (before.cost_micro, after.cost_micro) == (1_000_000, 1_100_000)


def test_month_rollover_resets_the_ladder() -> None:
    # 31 March 23:30 - 1 April 00:30, valley throughout; 400 splits 200 March / 200 April by time
    # March is at 450 kWh (tier 3): 200 × (3000 + 3000) = 1_200_000
    # April starts from zero (tier 1): 200 × 3000 = 600_000; total 1_800_000
    priced = price_in_shanghai(shanghai(2024, 3, 31, 23, 30), shanghai(2024, 4, 1, 0, 30), 400, 45_000)
    assert [(p.month, p.tier, p.energy_centi_kwh, p.price) for p in priced.parts] == [
        (MARCH, 3, 200, 6000),
        (APRIL, 1, 200, 3000),
    ]
    assert priced.cost_micro_by_month() == ((MARCH, 1_200_000), (APRIL, 600_000))
    assert priced.cost_micro == 1_800_000
    assert priced.month_energy_after == 200


def test_interval_ending_exactly_at_month_start_leaves_the_new_month_at_zero() -> None:
    priced = price_in_shanghai(shanghai(2024, 3, 31, 23, 30), shanghai(2024, 4, 1), 400, 45_000)
    assert [p.month for p in priced.parts] == [MARCH]
    assert priced.month_energy_after == 0


def test_season_change_at_midnight() -> None:
    # 30 June 23:00-24:00 is valley (spring plan); from 1 July the summer plan has flat until 06:00
    # 200 splits 100 valley / 100 flat: 100 × 3000 + 100 × 6500 = 300_000 + 650_000 = 950_000
    priced = price_in_shanghai(shanghai(2024, 6, 30, 23), shanghai(2024, 7, 1, 1), 200, 0, SEASONAL_HISTORY)
    assert [(p.rate, p.energy_centi_kwh) for p in priced.parts] == [(Rate.VALLEY, 100), (Rate.FLAT, 100)]
    assert priced.cost_micro == 950_000


def test_zero_energy_has_no_parts_and_costs_nothing() -> None:
    priced = price_in_shanghai(shanghai(2024, 3, 5, 9), shanghai(2024, 3, 5, 11), 0, 500)
    assert priced.parts == ()
    assert (priced.cost_micro, priced.month_energy_after) == (0, 500)
