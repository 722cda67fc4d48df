"""Ladder prices for prepaid meters. The meter charges one price per rate from its own time-of-use
plan, so the cloud moves the ladder: when the month's energy passes a tier bound it pushes the four
rate prices raised by the new tier's increment, and at month rollover it pushes the first tier's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs.model import RatePrices, TariffHistory, epoch_seconds
from chalicelib.domain.tariffs.pricing import check_energy, price_interval
from chalicelib.domain.tariffs.timeline import BillingMonth


def meter_prices_at(history: TariffHistory, tz: tzinfo, at: datetime, month_energy: int) -> RatePrices:
    """The prices a prepaid meter must hold from ``at`` on, with ``month_energy`` used so far in the
    month holding ``at`` (pass 0 at a month start, e.g. for the push scheduled at local midnight)."""
    check_energy(0, month_energy)
    tariff = history.in_force_at(at)
    return tariff.meter_prices(tariff.ladder.tier_of(month_energy))


@dataclass(frozen=True)
class LadderPush:
    month: BillingMonth  # the billing month holding the interval's end
    month_energy_after: int  # month-to-date energy at the end, in that month (store it for the next call)
    tier_before: int  # the tier the meter was charging at the interval's start (1 = first)
    tier_now: int  # the tier from the end on
    month_rolled_over: bool
    prices_before: RatePrices  # what the meter should have held during the interval
    prices_now: RatePrices  # what it must hold from the end on

    @property
    def crossed_tier(self) -> bool:
        """The month's energy passed a tier bound during the interval."""
        return not self.month_rolled_over and self.tier_now != self.tier_before

    @property
    def push_needed(self) -> bool:
        """Push ``prices_now``: a tier bound was passed, the month rolled over, or the tariff changed."""
        return self.prices_now != self.prices_before


def plan_ladder_push(
    history: TariffHistory, tz: tzinfo, start: datetime, end: datetime, energy_centi_kwh: int, month_energy_before: int
) -> LadderPush:
    """After a reading of a prepaid meter over [start, end): which tier it is in now and what to push.
    ``month_energy_before`` is the month-to-date energy at ``start``; when the interval crosses a month
    end, the new month's share of the energy is apportioned by time, as for cloud-billed meters."""
    start_month, end_month = BillingMonth.of(epoch_seconds(start), tz), BillingMonth.of(epoch_seconds(end), tz)
    if start_month == end_month:
        check_energy(energy_centi_kwh, month_energy_before)
        if end < start:
            raise ValidationError("an interval cannot end before it starts", field="end")
        month_energy_after = month_energy_before + energy_centi_kwh
    else:  # the new month's share by time, exactly as the cloud-billed pricing apportions it
        priced = price_interval(history, tz, start, end, energy_centi_kwh, month_energy_before)
        month_energy_after = priced.month_energy_after
    tariff_before, tariff_now = history.in_force_at(start), history.in_force_at(end)
    tier_before = tariff_before.ladder.tier_of(month_energy_before)
    tier_now = tariff_now.ladder.tier_of(month_energy_after)
    return LadderPush(
        month=end_month,
        month_energy_after=month_energy_after,
        tier_before=tier_before,
        tier_now=tier_now,
        month_rolled_over=end_month != start_month,
        prices_before=tariff_before.meter_prices(tier_before),
        prices_now=tariff_now.meter_prices(tier_now),
    )
