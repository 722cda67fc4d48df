"""Building tariffs: lookups, and clear refusals of what cannot be a tariff."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs import (
    NO_LADDER,
    DailyPlan,
    Ladder,
    Rate,
    RatePrices,
    Season,
    Switch,
    Tariff,
    TariffHistory,
    TouSchedule,
    epoch_seconds,
    price_interval,
)
from tests.unit.tariffs.sample_tariffs import (
    COMMERCIAL_DAY,
    LADDER,
    PRICES_A,
    SEASONAL_HISTORY,
    SHANGHAI,
    SHANGHAI_HISTORY,
    SUMMER_DAY,
    shanghai,
)


@pytest.mark.parametrize(
    ("text", "rate"), [("sharp", Rate.SHARP), ("PEAK", Rate.PEAK), (" flat ", Rate.FLAT), ("谷", Rate.VALLEY)]
)
def test_rate_names(text: str, rate: Rate) -> None:
    assert Rate.parse(text) is rate


def test_rates_are_numbered_like_the_meter_registers() -> None:
    assert [rate.name for rate in sorted(Rate)] == ["SHARP", "PEAK", "FLAT", "VALLEY"]


@pytest.mark.parametrize(
    ("minute", "rate"),
    [
        (0, Rate.VALLEY),
        (7 * 60 + 59, Rate.VALLEY),
        (8 * 60, Rate.FLAT),
        (10 * 60 + 30, Rate.SHARP),
        (23 * 60, Rate.VALLEY),
    ],
)
def test_daily_plan_wraps_the_last_band_round_midnight(minute: int, rate: Rate) -> None:
    assert COMMERCIAL_DAY.rate_at(minute) is rate


def test_seasons_pick_the_plan_and_wrap_round_new_year() -> None:
    schedule = TouSchedule((Season((3, 1), COMMERCIAL_DAY), Season((7, 1), SUMMER_DAY)))
    assert schedule.plan_on(date(2024, 2, 28)) is SUMMER_DAY  # before the first start: last year's last season
    assert schedule.plan_on(date(2024, 3, 1)) is COMMERCIAL_DAY
    assert schedule.plan_on(date(2024, 7, 1)) is SUMMER_DAY
    assert SEASONAL_HISTORY.versions[0].rate_at(shanghai(2024, 8, 1, 7)) is Rate.VALLEY


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DailyPlan(()), "at least one switch"),
        (lambda: DailyPlan.of(("10:00", "flat"), ("08:00", "peak")), "must increase"),
        (lambda: DailyPlan.of(("08:00", "flat"), ("08:00", "peak")), "must increase"),
        (lambda: DailyPlan.of(("8h", "flat")), "not a time of day"),
        (lambda: DailyPlan.of(("08:00", "cheap")), "unknown rate"),
        (lambda: DailyPlan((Switch(time(8, 0, 30), Rate.FLAT),)), "whole minutes"),
        (lambda: Season((2, 29), COMMERCIAL_DAY), "29 February"),
        (lambda: Season((4, 31), COMMERCIAL_DAY), "not a month and day"),
        (lambda: TouSchedule(()), "at least one season"),
        (lambda: TouSchedule((Season((7, 1), SUMMER_DAY), Season((1, 1), COMMERCIAL_DAY))), "calendar order"),
        (lambda: TouSchedule((Season((1, 1), SUMMER_DAY), Season((1, 1), COMMERCIAL_DAY))), "calendar order"),
        (lambda: RatePrices(1, 2, 3, -4), "outside"),
        (lambda: RatePrices(1, 2, 3, 2**32), "outside"),
        (lambda: RatePrices(1, 2, 3, 4.5), "must be an integer"),  # type: ignore[arg-type]
        (lambda: Ladder((20000,), (0,)), "one increment per tier"),
        (lambda: Ladder((40000, 20000), (0, 1, 2)), "increasing"),
        (lambda: Ladder((0,), (0, 1)), "positive"),
        (lambda: Ladder((20000,), (500, 0)), "must not fall"),
        (lambda: Tariff(datetime(2024, 1, 1), PRICES_A, TouSchedule.year_round(COMMERCIAL_DAY)), "timezone"),
        (lambda: Tariff(shanghai(2024, 1, 1), PRICES_A), "single-price"),
        (lambda: Tariff.single_price(shanghai(2024, 1, 1), 2**32 - 10, LADDER), "top-tier"),
        (lambda: TariffHistory(()), "at least one version"),
        (
            lambda: TariffHistory(
                (Tariff.single_price(shanghai(2024, 2, 1), 1), Tariff.single_price(shanghai(2024, 1, 1), 2))
            ),
            "in order",
        ),
    ],
)
def test_refusals_say_what_is_wrong(build: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()  # type: ignore[operator]


def test_single_price_tariff_counts_every_hour_as_flat() -> None:
    tariff = Tariff.single_price(shanghai(2024, 1, 1), 8000)
    assert tariff.rate_at(shanghai(2024, 1, 1, 19)) is Rate.FLAT
    assert tariff.meter_prices(1) == RatePrices.uniform(8000)
    assert tariff.ladder is NO_LADDER


def test_ladder_tiers_and_meter_prices() -> None:
    assert [LADDER.tier_of(energy) for energy in (0, 19_999, 20_000, 39_999, 40_000, 10**9)] == [1, 1, 2, 2, 3, 3]
    tariff = SHANGHAI_HISTORY.versions[0]
    assert tariff.meter_prices(2) == RatePrices(12500, 10500, 7000, 3500)
    assert tariff.price_of(Rate.VALLEY, 3) == 6000


def test_no_tariff_before_the_first_version() -> None:
    with pytest.raises(ValidationError, match="no tariff in force"):
        price_interval(SHANGHAI_HISTORY, SHANGHAI, shanghai(2023, 12, 31, 23), shanghai(2024, 1, 1, 1), 100, 0)


@pytest.mark.parametrize(
    ("energy", "month_energy", "message"),
    [(-1, 0, "energy cannot be negative"), (1, -1, "month_energy_before cannot be negative"), (1.5, 0, "integer")],
)
def test_interval_inputs_are_checked(energy: int, month_energy: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        price_interval(SHANGHAI_HISTORY, SHANGHAI, shanghai(2024, 3, 5), shanghai(2024, 3, 5, 1), energy, month_energy)


def test_an_interval_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="cannot end before it starts"):
        price_interval(SHANGHAI_HISTORY, SHANGHAI, shanghai(2024, 3, 5, 1, 1), shanghai(2024, 3, 5, 1), 0, 0)


def test_a_repeated_read_is_priced_at_its_instant() -> None:
    # no duration: 10:00 is the start of the sharp band, 50 × 12000
    priced = price_interval(SHANGHAI_HISTORY, SHANGHAI, shanghai(2024, 3, 5, 10), shanghai(2024, 3, 5, 10), 50, 0)
    assert [(part.rate, part.energy_centi_kwh) for part in priced.parts] == [(Rate.SHARP, 50)]
    assert priced.cost_micro == 600_000


def test_epoch_seconds_is_integer_and_refuses_naive_times() -> None:
    assert epoch_seconds(shanghai(1970, 1, 1, 8)) == 0
    assert isinstance(epoch_seconds(shanghai(2024, 3, 5, 1, 2, 3)), int)
    with pytest.raises(ValidationError, match="no timezone"):
        epoch_seconds(datetime(2024, 1, 1))
