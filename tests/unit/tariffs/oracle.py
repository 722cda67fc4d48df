"""An independent, slow re-statement of the pricing model, to check the engine against.

It shares nothing with the engine's algorithms: it walks the interval minute by minute, asks the
zone for each minute's wall-clock time, finds the version, season and band by linear scans, splits
with Fractions and prices with Decimal. It needs every change to fall on a whole minute (true when
readings, switch times and tariff changes are whole minutes and the zone's offsets are).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction

from chalicelib.domain.tariffs import Rate, Tariff, TariffHistory

PartKey = tuple[datetime, Rate, int, tuple[int, int]]  # version's effective_from, rate, tier, (year, month)
RunKey = tuple[Tariff, Rate, tuple[int, int]]


def oracle_price(
    history: TariffHistory, tz: tzinfo, start_s: int, end_s: int, energy: int, month_energy_before: int
) -> tuple[dict[PartKey, int], Decimal]:
    """Energy per (version, rate, tier, month) and the exact cost in the currency."""
    runs = _runs(history, tz, start_s, end_s)
    shares = _largest_remainder(energy, [seconds for _, seconds in runs])
    parts: dict[PartKey, int] = {}
    cost = Decimal(0)
    month, used = runs[0][0][2], month_energy_before
    for ((tariff, rate, run_month), _), share in zip(runs, shares, strict=True):
        if run_month != month:
            month, used = run_month, 0
        for tier, tier_energy in _tiers(share, used, tariff.ladder.upper_bounds):
            key = (tariff.effective_from, rate, tier, run_month)
            parts[key] = parts.get(key, 0) + tier_energy
            price = getattr(tariff.prices, rate.name.lower()) + tariff.ladder.increments[tier - 1]
            cost += Decimal(tier_energy) / 100 * (Decimal(price) / 10000)
        used += share
    return {key: value for key, value in parts.items() if value}, cost


def _runs(history: TariffHistory, tz: tzinfo, start_s: int, end_s: int) -> list[tuple[RunKey, int]]:
    runs: list[tuple[RunKey, int]] = []
    moment = start_s
    while moment < end_s:
        step_end = min(end_s, (moment // 60 + 1) * 60)
        key = _key(history, tz, moment)
        if runs and runs[-1][0] == key:
            runs[-1] = (key, runs[-1][1] + step_end - moment)
        else:
            runs.append((key, step_end - moment))
        moment = step_end
    return runs


def _key(history: TariffHistory, tz: tzinfo, epoch_s: int) -> RunKey:
    utc = datetime.fromtimestamp(epoch_s, UTC)
    tariff = [version for version in history.versions if version.effective_from <= utc][-1]
    local = datetime.fromtimestamp(epoch_s, tz)
    return tariff, _rate(tariff, local), (local.year, local.month)


def _rate(tariff: Tariff, local: datetime) -> Rate:
    if tariff.schedule is None:
        return Rate.FLAT
    seasons = tariff.schedule.seasons
    started = [season for season in seasons if season.starts_on <= (local.month, local.day)]
    plan = (started or seasons)[-1].plan
    minute = local.hour * 60 + local.minute
    begun = [switch for switch in plan.switches if switch.at.hour * 60 + switch.at.minute <= minute]
    return (begun or plan.switches)[-1].rate


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    quotas = [Fraction(total * weight, sum(weights)) for weight in weights]
    shares = [int(quota) for quota in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for index in by_remainder[: total - sum(shares)]:
        shares[index] += 1
    return shares


def _tiers(energy: int, used: int, bounds: tuple[int, ...]) -> list[tuple[int, int]]:
    tiers = []
    for tier, bound in enumerate((*bounds, None), start=1):
        room = energy if bound is None else max(0, min(energy, bound - used))
        if room:
            tiers.append((tier, room))
            energy -= room
            used += room
    return tiers
