"""tariff: cost 1,000,000 interval readings under 4-rate time of use + a 3-tier ladder.

The readings are a month (March 2024, Asia/Shanghai) of half-hourly reads of ~670 meters: each read
lands a few seconds after the half hour (the meter's place on its bus plus jitter), so the reading
that spans each of the plan's seven daily switches crosses it by seconds; 0.5 % of reads are missed
(hour-long intervals) and a few bridge outages leave multi-hour gaps; the tariff changes on 15 March
at 12:00; meters of every size cross one or both ladder bounds at different times.

value: costing every reading through the month's compiled ``TariffTable.cost_series``, meter by meter
(month-to-date energy from zero); the table is compiled once per site and month, like an index, and
its compile time is printed apart (``compile_ms``, and ``ratio_with_compile``). baseline, the floor:
the same readings in the same lists, a plain integer loop ``total += energy * price``. CPU time of
this process (other work on the machine does not count), best of several alternating runs each.
``interval_us``: one reading at a time through ``cost_interval``, as live ingestion calls it.
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
from itertools import islice, pairwise
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
SCHEDULE = TouSchedule.year_round(PLAN)
HISTORY = TariffHistory((
    Tariff(datetime(2024, 1, 1, tzinfo=TZ), RatePrices(12000, 10000, 6500, 3000), SCHEDULE, LADDER),
    Tariff(datetime(2024, 3, 15, 12, tzinfo=TZ), RatePrices(13000, 11000, 7000, 3200), SCHEDULE, LADDER),  # a rise
))  # fmt: skip


@dataclass(frozen=True)
class MeterReadings:
    read_at: list[int]  # epoch seconds; reading i is [read_at[i], read_at[i + 1])
    energies: list[int]  # centi-kWh

    def intervals(self) -> Iterator[tuple[int, int, int]]:
        return zip(self.read_at, islice(self.read_at, 1, None), self.energies, strict=False)


def make_meter(rng: random.Random, bus_position: int, month: tuple[int, int], most: int) -> MeterReadings:
    """Up to ``most`` consecutive reads of one meter inside the month, each a few seconds after a half hour."""
    month_start_s, month_end_s = month
    half_hour_energy = rng.choice((rng.randint(20, 150), rng.randint(150, 600), rng.randint(600, 1500)))
    instants, slot = [month_start_s + bus_position // 8], 0
    while len(instants) <= most:
        slot += 1
        if rng.random() < 0.005:  # a missed read
            slot += 1
        if rng.random() < 0.0005:  # the bridge was offline for hours
            slot += rng.randint(4, 12)
        instant = month_start_s + slot * HALF_HOUR + bus_position // 8 + rng.randint(0, 2)
        if instant > month_end_s:
            break
        instants.append(instant)
    energies = [rng.randint(0, 2 * half_hour_energy) * (end - start) // HALF_HOUR for start, end in pairwise(instants)]
    return MeterReadings(instants, energies)


def make_site(total: int) -> list[MeterReadings]:
    """Meters of a month until ``total`` readings: about 1,480 a meter."""
    rng = random.Random(20240301)
    month = (MONTH.start_s(TZ), MONTH.following().start_s(TZ))
    meters: list[MeterReadings] = []
    left = total
    while left > 0:
        meters.append(make_meter(rng, len(meters) % 32, month, left))
        left -= len(meters[-1].energies)
    return meters


def cost_fast(table: TariffTable, meters: list[MeterReadings]) -> int:
    return sum(table.cost_series(meter.read_at, meter.energies, 0).cost_micro for meter in meters)


def cost_floor(meters: list[MeterReadings]) -> int:
    total = 0
    for meter in meters:
        for _start, _end, energy in meter.intervals():
            total += energy * BASELINE_PRICE
    return total


def best_times(table: TariffTable, meters: list[MeterReadings], runs: int) -> tuple[float, float, float, int]:
    """Best-of-``runs`` CPU seconds for compiling, the fast path and the floor, run in turn; the total."""
    compile_best = fast_best = floor_best = float("inf")
    total = 0
    for _ in range(runs):
        started = time.process_time()
        TariffTable.compile(HISTORY, TZ, MONTH)
        compile_best = min(compile_best, time.process_time() - started)
        started = time.process_time()
        total = cost_fast(table, meters)
        fast_best = min(fast_best, time.process_time() - started)
        started = time.process_time()
        cost_floor(meters)
        floor_best = min(floor_best, time.process_time() - started)
    return compile_best, fast_best, floor_best, total


def interval_seconds(table: TariffTable, meters: list[MeterReadings], count: int) -> float:
    """CPU seconds per reading priced alone through ``cost_interval`` (month energy carried by the caller)."""
    started, priced = time.process_time(), 0
    for meter in meters:
        month_energy = 0
        for start, end, energy in meter.intervals():
            table.cost_interval(start, end, energy, month_energy)
            month_energy += energy
            priced += 1
        if priced >= count:
            break
    return (time.process_time() - started) / priced


def check_meter(table: TariffTable, meter: MeterReadings) -> dict[str, bool]:
    """One meter's fast total against the general pricer, the oracle and the accumulator."""
    fast = table.cost_series(meter.read_at, meter.energies, 0).cost_micro
    general, oracle, month_energy = 0, Decimal(0), 0
    state, posted = ChargeAccumulator(MONTH), 0
    for start, end, energy in meter.intervals():
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
        for start, end, _energy in meter.intervals()
    )


def run(quick: bool) -> Iterator[dict[str, Any]]:
    total_readings = QUICK_READINGS if quick else READINGS
    meters = make_site(total_readings)
    table = TariffTable.compile(HISTORY, TZ, MONTH)
    compile_s, fast_s, floor_s, total_micro = best_times(table, meters, QUICK_RUNS if quick else RUNS)
    sample = meters[:: max(1, len(meters) // (QUICK_SAMPLE_METERS if quick else SAMPLE_METERS))]
    checks = [check_meter(table, meter) for meter in sample]
    agreed = {name: all(check[name] for check in checks) for name in checks[0]}
    multi_switch = sum(table.cost_series(meter.read_at, meter.energies, 0).multi_switch_readings for meter in meters)
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
        multi_switch_readings=multi_switch,
        ns_per_reading=round(fast_s / total_readings * 1e9, 1),
        floor_ns_per_reading=round(floor_s / total_readings * 1e9, 1),
        compile_ms=round(compile_s * 1e3, 2),
        ratio_with_compile=round((fast_s + compile_s) / floor_s, 4),
        interval_us=round(interval_seconds(table, meters, 20_000) * 1e6, 2),
    )
