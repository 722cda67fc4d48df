"""tariff: cost 1,000,000 interval readings under 4-rate time of use + a 3-tier ladder.

The readings are a month (March 2024, Asia/Shanghai) of half-hourly reads of ~670 meters: each read
lands a few seconds after the half hour (the meter's place on its bus plus jitter), so the reading
that spans each of the plan's seven daily switches crosses it by seconds; 0.5 % of reads are missed
(hour-long intervals) and a few bridge outages leave multi-hour gaps; the tariff changes on 15 March
at 12:00; meters of every size cross one or both ladder bounds at different times.

value: compiling the month's table and costing every reading through ``TariffTable.cost_readings``
(meter by meter, month-to-date energy from zero). baseline, the floor: the same readings in the same
lists, a plain integer loop ``total += energy * price``. Best of several alternating runs each.
exact: the fast total of sample meters equals the general interval pricer reading by reading, equals
the independent minute-by-minute Decimal oracle, and posting each reading's cost through a
``ChargeAccumulator`` never drifts from the rounded exact total. Target: exact, ratio <= 3.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bench.timing import ratio_result
from chalicelib.domain.tariffs import (
    BillingMonth,
    ChargeAccumulator,
    DailyPlan,
    Ladder,
    RatePrices,
    Tariff,
    TariffHistory,
    TariffTable,
    TouSchedule,
    micro_to_decimal,
    micro_to_minor,
    price_interval,
)
from tests.unit.tariffs.oracle import oracle_price

NAME = "tariff"
TZ = ZoneInfo("Asia/Shanghai")
MONTH = BillingMonth(2024, 3)
HALF_HOUR = 1800
READINGS, QUICK_READINGS = 1_000_000, 100_000
SAMPLE_METERS, QUICK_SAMPLE_METERS = 4, 2
RUNS, QUICK_RUNS = 5, 7
BASELINE_PRICE = 6500  # the flat price: what a reading costs with no time of use and no ladder

PLAN = DailyPlan.of(
    ("08:00", "flat"), ("10:00", "sharp"), ("11:00", "peak"), ("15:00", "flat"),
    ("18:00", "peak"), ("21:00", "flat"), ("23:00", "valley"),
)  # fmt: skip
LADDER = Ladder(upper_bounds=(200_000, 500_000), increments=(0, 500, 3000))  # 2,000 and 5,000 kWh
HISTORY = TariffHistory((
    Tariff(datetime(2024, 1, 1, tzinfo=TZ), RatePrices(12000, 10000, 6500, 3000), TouSchedule.year_round(PLAN), LADDER),
    Tariff(datetime(2024, 3, 15, 12, tzinfo=TZ), RatePrices(13000, 11000, 7000, 3200), TouSchedule.year_round(PLAN), LADDER),
))  # fmt: skip


@dataclass(frozen=True)
class MeterReadings:
    starts: list[int]  # epoch seconds
    ends: list[int]
    energies: list[int]  # centi-kWh


def make_meter(rng: random.Random, bus_position: int, month_start_s: int, count: int) -> MeterReadings:
    """``count`` consecutive reads of one meter, each a few seconds after a half hour."""
    half_hour_energy = rng.choice((rng.randint(20, 150), rng.randint(150, 600), rng.randint(600, 1500)))
    instants, slot = [month_start_s + bus_position // 8], 0
    while len(instants) <= count:
        slot += 1
        if rng.random() < 0.005:  # a missed read
            slot += 1
        if rng.random() < 0.0005:  # the bridge was offline for hours
            slot += rng.randint(4, 12)
        instants.append(month_start_s + slot * HALF_HOUR + bus_position // 8 + rng.randint(0, 2))
    starts, ends = instants[:-1], instants[1:]
    energies = [rng.randint(0, 2 * half_hour_energy) * (end - start) // HALF_HOUR for start, end in zip(starts, ends, strict=True)]
    return MeterReadings(starts, ends, energies)


def make_site(total: int) -> list[MeterReadings]:
    rng = random.Random(20240301)
    month_start_s = MONTH.start_s(TZ)
    per_meter = 31 * 48 - 40  # leaves room for missed reads and outages before the month ends
    meters, left = [], total
    while left > 0:
        meters.append(make_meter(rng, len(meters) % 32, month_start_s, min(per_meter, left)))
        left -= per_meter
    return meters


def cost_fast(meters: list[MeterReadings]) -> int:
    table = TariffTable.compile(HISTORY, TZ, MONTH)
    return sum(table.cost_readings(m.starts, m.ends, m.energies, 0).cost_micro for m in meters)


def cost_floor(meters: list[MeterReadings]) -> int:
    total = 0
    for meter in meters:
        for _start, _end, energy in zip(meter.starts, meter.ends, meter.energies, strict=True):
            total += energy * BASELINE_PRICE
    return total


def best_times(meters: list[MeterReadings], runs: int) -> tuple[float, float, int]:
    """Best-of-``runs`` seconds for the fast path and the floor, run alternately; and the fast total."""
    fast_best = floor_best = float("inf")
    total = 0
    for _ in range(runs):
        started = time.perf_counter()
        total = cost_fast(meters)
        fast_best = min(fast_best, time.perf_counter() - started)
        started = time.perf_counter()
        cost_floor(meters)
        floor_best = min(floor_best, time.perf_counter() - started)
    return fast_best, floor_best, total


def check_meter(table: TariffTable, meter: MeterReadings) -> dict[str, bool]:
    """One meter's fast total against the general pricer, the oracle and the accumulator."""
    fast = table.cost_readings(meter.starts, meter.ends, meter.energies, 0).cost_micro
    general, oracle, month_energy = 0, Decimal(0), 0
    state, posted = ChargeAccumulator(MONTH), 0
    for start, end, energy in zip(meter.starts, meter.ends, meter.energies, strict=True):
        general += price_interval(
            HISTORY, TZ, datetime.fromtimestamp(start, TZ), datetime.fromtimestamp(end, TZ), energy, month_energy
        ).cost_micro
        oracle += oracle_price(HISTORY, TZ, start, end, energy, month_energy)[1]
        state, charge = state.post(MONTH, table.cost_interval(start, end, energy, month_energy))
        posted += charge
        month_energy += energy
    return {
        "general": fast == general,
        "oracle": micro_to_decimal(fast) == oracle,
        "accumulator": posted == micro_to_minor(fast),
    }


def crossing_readings(table: TariffTable, meters: list[MeterReadings]) -> int:
    """Readings whose interval holds a segment boundary (a switch or the tariff change)."""
    starts = table.segment_starts
    return sum(
        bisect_right(starts, start) != bisect_left(starts, end)
        for meter in meters
        for start, end in zip(meter.starts, meter.ends, strict=True)
    )


def run(quick: bool) -> Iterator[dict[str, Any]]:
    total_readings = QUICK_READINGS if quick else READINGS
    meters = make_site(total_readings)
    fast_s, floor_s, total_micro = best_times(meters, QUICK_RUNS if quick else RUNS)
    table = TariffTable.compile(HISTORY, TZ, MONTH)
    sample = meters[:: max(1, len(meters) // (QUICK_SAMPLE_METERS if quick else SAMPLE_METERS))]
    checks = [check_meter(table, meter) for meter in sample]
    agreed = {name: all(check[name] for check in checks) for name in checks[0]}
    split = sum(table.cost_readings(m.starts, m.ends, m.energies, 0).split_readings for m in meters)
    yield ratio_result(
        fast_s,
        floor_s,
        "s",
        readings=total_readings,
        meters=len(meters),
        total_minor=micro_to_minor(total_micro),
        total_exact=str(micro_to_decimal(total_micro)),
        exact=all(agreed.values()),
        agreed_with=agreed,
        sample_readings=sum(len(meter.energies) for meter in sample),
        crossing_readings=crossing_readings(table, meters),
        split_readings=split,
        ns_per_reading=round(fast_s / total_readings * 1e9, 1),
        floor_ns_per_reading=round(floor_s / total_readings * 1e9, 1),
    )
