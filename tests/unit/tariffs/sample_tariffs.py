"""Tariffs the tests price by hand. Prices in 1/10000 per kWh, energy in centi-kWh (100 = 1 kWh)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from chalicelib.domain.tariffs import (
    DailyPlan,
    Ladder,
    LadderPush,
    PricedInterval,
    RatePrices,
    Season,
    Tariff,
    TariffHistory,
    TouSchedule,
    plan_ladder_push,
    price_interval,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")

# valley 23:00-08:00 (wraps round midnight), flat 08-10, sharp 10-11, peak 11-15, flat 15-18, peak 18-21, flat 21-23
COMMERCIAL_DAY = DailyPlan.of(
    ("08:00", "flat"),
    ("10:00", "sharp"),
    ("11:00", "peak"),
    ("15:00", "flat"),
    ("18:00", "peak"),
    ("21:00", "flat"),
    ("23:00", "valley"),
)
# sharp 1.2000, peak 1.0000, flat 0.6500, valley 0.3000 per kWh
PRICES_A = RatePrices(sharp=12000, peak=10000, flat=6500, valley=3000)
# tier 1 up to 200 kWh: +0; tier 2 up to 400 kWh: +0.0500; tier 3 above: +0.3000
LADDER = Ladder(upper_bounds=(20000, 40000), increments=(0, 500, 3000))

TARIFF_A = Tariff(datetime(2024, 1, 1, tzinfo=SHANGHAI), PRICES_A, TouSchedule.year_round(COMMERCIAL_DAY), LADDER)
SHANGHAI_HISTORY = TariffHistory((TARIFF_A,))

# From 15 March 2024 12:00 the prices rise (same plan, same ladder)
PRICES_B = RatePrices(sharp=13000, peak=11000, flat=7000, valley=3200)
TARIFF_B = Tariff(datetime(2024, 3, 15, 12, tzinfo=SHANGHAI), PRICES_B, TouSchedule.year_round(COMMERCIAL_DAY), LADDER)
CHANGED_HISTORY = TariffHistory((TARIFF_A, TARIFF_B))
# …or with a new ladder as well: tiers up to 150 and 300 kWh, +0.0800 and +0.2000
NEW_LADDER = Ladder(upper_bounds=(15000, 30000), increments=(0, 800, 2000))
TARIFF_B_NEW_LADDER = Tariff(TARIFF_B.effective_from, PRICES_B, TouSchedule.year_round(COMMERCIAL_DAY), NEW_LADDER)
LADDER_CHANGED_HISTORY = TariffHistory((TARIFF_A, TARIFF_B_NEW_LADDER))

# Summer (1 July - 30 September): flat all day until 06:00 valley… a plan unlike the rest of the year
SUMMER_DAY = DailyPlan.of(
    ("00:00", "flat"), ("06:00", "valley"), ("09:00", "peak"), ("12:00", "sharp"), ("14:00", "peak")
)
SEASONAL_HISTORY = TariffHistory(
    (
        Tariff(
            datetime(2024, 1, 1, tzinfo=SHANGHAI),
            PRICES_A,
            TouSchedule((Season((1, 1), COMMERCIAL_DAY), Season((7, 1), SUMMER_DAY), Season((10, 1), COMMERCIAL_DAY))),
            LADDER,
        ),
    )
)

# London: valley 00:00-07:00 at 0.1500, flat 07:00-24:00 at 0.3000 (wall-clock times, BST or GMT)
NIGHT_AND_DAY = DailyPlan.of(("00:00", "valley"), ("07:00", "flat"))
LONDON_PRICES = RatePrices(sharp=3000, peak=3000, flat=3000, valley=1500)
LONDON_TARIFF = Tariff(datetime(2024, 1, 1, tzinfo=LONDON), LONDON_PRICES, TouSchedule.year_round(NIGHT_AND_DAY))
LONDON_HISTORY = TariffHistory((LONDON_TARIFF,))


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> datetime:
    """A London wall-clock time; ``fold=1`` is the second 01:xx on the night the clocks go back."""
    return datetime(year, month, day, hour, minute, tzinfo=LONDON, fold=fold)


def price_in_shanghai(
    start: datetime, end: datetime, energy: int, month_energy_before: int, history: TariffHistory = SHANGHAI_HISTORY
) -> PricedInterval:
    return price_interval(history, SHANGHAI, start, end, energy, month_energy_before)


def push_in_shanghai(
    start: datetime, end: datetime, energy: int, month_energy_before: int, history: TariffHistory = SHANGHAI_HISTORY
) -> LadderPush:
    return plan_ladder_push(history, SHANGHAI, start, end, energy, month_energy_before)
