"""The general interval pricer: one interval's energy split by tariff version, rate, tier and month.

The model, in order:
1. Energy is assumed to flow at constant power over the interval, so it is apportioned to the
   segments of constant (version, rate, month) in proportion to their duration, in integer
   centi-kWh by largest remainder (the parts sum exactly to the interval's energy).
2. Walking the segments in time order, each segment's energy is added to the month-to-date energy
   and cut at the ladder bounds of its version (exact: a bound is a whole number of centi-kWh). A new
   billing month starts the month-to-date energy at zero again.
3. Each part costs energy × price exactly: centi-kWh × (1/10000 per kWh) is an integer number of
   micro-units (1/1,000,000 of the currency), so the exact cost is an integer before it is a Decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.money import round_to_minor, to_decimal
from chalicelib.domain.tariffs.allocation import allocate_largest_remainder, split_by_tier
from chalicelib.domain.tariffs.model import Rate, TariffHistory, epoch_seconds
from chalicelib.domain.tariffs.timeline import BillingMonth, Segment, segments_between

MICRO_DIGITS = 6  # centi-kWh (10^-2) × price (10^-4 per kWh) = 10^-6 of the currency
MICRO_PER_MINOR = 10_000


def micro_to_decimal(cost_micro: int) -> Decimal:
    """An exact cost in micro-units as a Decimal amount of the currency."""
    return to_decimal(cost_micro).scaleb(-MICRO_DIGITS)


def micro_to_minor(cost_micro: int) -> int:
    """Round micro-units to minor units with the money module's rule (banker's rounding)."""
    return round_to_minor(micro_to_decimal(cost_micro))


@dataclass(frozen=True)
class PricedPart:
    tariff_from: datetime  # effective_from of the version that priced this part
    rate: Rate
    tier: int  # 1 = first tier
    month: BillingMonth
    energy_centi_kwh: int
    price: int  # 1/10000 of the currency per kWh, rate price plus tier increment

    @property
    def cost_micro(self) -> int:
        return self.energy_centi_kwh * self.price

    @property
    def cost(self) -> Decimal:
        return micro_to_decimal(self.cost_micro)


@dataclass(frozen=True)
class PricedInterval:
    parts: tuple[PricedPart, ...]  # non-empty parts, merged by (version, rate, tier, month), time order
    month_energy_after: int  # month-to-date energy at the interval's end, in the month holding the end

    @property
    def energy_centi_kwh(self) -> int:
        return sum(part.energy_centi_kwh for part in self.parts)

    @property
    def cost_micro(self) -> int:
        return sum(part.cost_micro for part in self.parts)

    @property
    def cost(self) -> Decimal:
        """The exact cost in the currency."""
        return micro_to_decimal(self.cost_micro)

    @property
    def cost_minor(self) -> int:
        """This interval alone, rounded; to post charges without drift use a ChargeAccumulator."""
        return micro_to_minor(self.cost_micro)

    def cost_micro_by_month(self) -> tuple[tuple[BillingMonth, int], ...]:
        totals: dict[BillingMonth, int] = {}
        for part in self.parts:
            totals[part.month] = totals.get(part.month, 0) + part.cost_micro
        return tuple(totals.items())

    def energy_by_rate(self) -> dict[Rate, int]:
        totals = dict.fromkeys(Rate, 0)
        for part in self.parts:
            totals[part.rate] += part.energy_centi_kwh
        return totals


def check_energy(energy_centi_kwh: int, month_energy_before: int) -> None:
    for name, value in (("energy", energy_centi_kwh), ("month_energy_before", month_energy_before)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{name} must be an integer number of centi-kWh, got {value!r}", field=name)
        if value < 0:
            raise ValidationError(f"{name} cannot be negative ({value} centi-kWh)", field=name)


def price_interval(
    history: TariffHistory,
    tz: tzinfo,
    start: datetime,
    end: datetime,
    energy_centi_kwh: int,
    month_energy_before: int,
) -> PricedInterval:
    """Price [start, end) carrying ``energy_centi_kwh``, after ``month_energy_before`` in the month of
    ``start``. Any interval works, across time-of-use switches, tariff changes and month ends."""
    check_energy(energy_centi_kwh, month_energy_before)
    start_s, end_s = epoch_seconds(start), epoch_seconds(end)
    segments = segments_between(history, tz, start_s, end_s)
    parts, month_energy = price_segments(history, segments, energy_centi_kwh, month_energy_before)
    ends_in_new_month = BillingMonth.of(end_s, tz) != segments[-1].month  # the interval ends at a month start
    return PricedInterval(parts, 0 if ends_in_new_month else month_energy)


def price_segments(
    history: TariffHistory, segments: Sequence[Segment], energy: int, month_energy_before: int
) -> tuple[tuple[PricedPart, ...], int]:
    """Steps 1-2 of the model over contiguous segments; also the month-to-date energy at their end."""
    spans = [segment.seconds for segment in segments]
    shares = allocate_largest_remainder(energy, spans) if sum(spans) else [energy]  # a repeated read
    merged: dict[tuple[int, Rate, int, BillingMonth], int] = {}
    month, month_energy = segments[0].month, month_energy_before
    for segment, share in zip(segments, shares, strict=True):
        if segment.month != month:
            month, month_energy = segment.month, 0
        ladder = history.versions[segment.version_index].ladder
        for tier, tier_energy in split_by_tier(share, month_energy, ladder.upper_bounds):
            key = (segment.version_index, segment.rate, tier, segment.month)
            merged[key] = merged.get(key, 0) + tier_energy
        month_energy += share
    parts = tuple(
        PricedPart(history.versions[v].effective_from, rate, tier, m, e, history.versions[v].price_of(rate, tier))
        for (v, rate, tier, m), e in merged.items()
    )
    return parts, month_energy
