"""The tariff engine: time of use, seasons, ladder, tariff versions; interval pricing (general and
compiled fast path), drift-free charge posting, and ladder price pushes for prepaid meters. Pure."""

from __future__ import annotations

from chalicelib.domain.tariffs.accumulator import ChargeAccumulator
from chalicelib.domain.tariffs.allocation import allocate_largest_remainder, split_by_tier
from chalicelib.domain.tariffs.model import (
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
)
from chalicelib.domain.tariffs.prepaid import LadderPush, meter_prices_at, plan_ladder_push
from chalicelib.domain.tariffs.pricing import (
    MICRO_PER_MINOR,
    PricedInterval,
    PricedPart,
    micro_to_decimal,
    micro_to_minor,
    price_interval,
)
from chalicelib.domain.tariffs.table import ReadingsCost, TariffPricer, TariffTable
from chalicelib.domain.tariffs.timeline import BillingMonth, Segment, segments_between

__all__ = [
    "MICRO_PER_MINOR",
    "NO_LADDER",
    "BillingMonth",
    "ChargeAccumulator",
    "DailyPlan",
    "Ladder",
    "LadderPush",
    "PricedInterval",
    "PricedPart",
    "Rate",
    "RatePrices",
    "ReadingsCost",
    "Season",
    "Segment",
    "Switch",
    "Tariff",
    "TariffHistory",
    "TariffPricer",
    "TariffTable",
    "TouSchedule",
    "allocate_largest_remainder",
    "epoch_seconds",
    "meter_prices_at",
    "micro_to_decimal",
    "micro_to_minor",
    "plan_ladder_push",
    "price_interval",
    "segments_between",
    "split_by_tier",
]
