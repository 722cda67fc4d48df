"""The fast path: a tariff history compiled for one billing month, pricing a meter's series of reads.

Same micro-units as ``price_interval``, by a decomposition that keeps per-reading work in C loops:
every part's price is its rate price plus its tier's increment, so

    cost = Σ parts' energy × rate price        (depends on time only: which segment)
         + Σ parts' energy × ladder increment  (depends on month-to-date energy only: which tier)

Summed by parts, the first needs the month's energy E only at each switch: the prefix sum up to the
reading that straddles it plus that reading's share before the switch (largest remainder; for two
shares, the first rounded half up). The second is the overlap of the month-to-date energy range with
each tier, per tariff version: a few integers per meter, however many readings. Per reading, only C
loops run (order check, prefix sums); Python steps once per switch. No datetime, no Decimal.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import accumulate, compress, islice, pairwise, repeat
from operator import eq

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs.allocation import allocate_largest_remainder
from chalicelib.domain.tariffs.model import Ladder, TariffHistory
from chalicelib.domain.tariffs.pricing import check_energy, price_interval
from chalicelib.domain.tariffs.timeline import BillingMonth, Segment, segments_between

_NEVER = 1 << 62  # later than any instant, above any month's energy


@dataclass(frozen=True)
class ReadingsCost:
    cost_micro: int  # exact, in 1/1,000,000 of the currency
    month_energy_after: int
    multi_switch_readings: int  # readings spanning two switches or more (split by the general allocation)


@dataclass(frozen=True)
class TariffTable:
    history: TariffHistory
    tz: tzinfo
    month: BillingMonth
    covers_from_s: int  # the month's start, or the first version's, whichever is later
    covers_until_s: int  # the next month's start
    segments: tuple[Segment, ...]
    segment_starts: tuple[int, ...]
    rate_prices: tuple[int, ...]  # per segment: its version's price for its rate, before the ladder
    price_steps: tuple[int, ...]  # rate_prices[k + 1] - rate_prices[k]

    @classmethod
    def compile(cls, history: TariffHistory, tz: tzinfo, month: BillingMonth) -> TariffTable:
        month_end_s = month.following().start_s(tz)
        start_s = max(month.start_s(tz), history.effective_epochs[0])
        if start_s >= month_end_s:
            raise ValidationError(f"no tariff in force in {month}", field="month")
        segments = segments_between(history, tz, start_s, month_end_s)
        prices = tuple(history.versions[s.version_index].prices.for_rate(s.rate) for s in segments)
        steps = tuple(later - earlier for earlier, later in pairwise(prices))
        starts = tuple(segment.start_s for segment in segments)
        return cls(history, tz, month, start_s, month_end_s, segments, starts, prices, steps)

    def covers(self, start_s: int, end_s: int) -> bool:
        return self.covers_from_s <= start_s < end_s <= self.covers_until_s

    def cost_interval(self, start_s: int, end_s: int, energy_centi_kwh: int, month_energy_before: int) -> int:
        """Exact cost in micro-units of one interval inside this month (epoch seconds)."""
        return self.cost_series((start_s, end_s), (energy_centi_kwh,), month_energy_before).cost_micro

    def cost_series(self, read_at: Sequence[int], energies: Sequence[int], month_energy_before: int) -> ReadingsCost:
        """One meter's consecutive reads in this month: reading i is [read_at[i], read_at[i + 1]) with
        ``energies[i]``, after ``month_energy_before`` plus the energy of the readings before it."""
        read_at = read_at if isinstance(read_at, list) else list(read_at)
        self._check_series(read_at, energies, month_energy_before)
        if not energies:
            return ReadingsCost(0, month_energy_before, 0)
        month_energy = list(accumulate(energies, initial=month_energy_before))  # at the start of each reading
        rate_cost, multi_switch = self._rate_cost(read_at, energies, month_energy)
        total = rate_cost + self._ladder_cost(read_at, energies, month_energy)
        if type(total) is not int or type(month_energy[-1]) is not int:
            raise ValidationError("energy and times must be integers (centi-kWh, seconds), never float", field="energy")
        return ReadingsCost(total, month_energy[-1], multi_switch)

    def _check_series(self, read_at: list[int], energies: Sequence[int], month_energy_before: int) -> None:
        check_energy(0, month_energy_before)
        if len(read_at) != len(energies) + 1:
            raise ValidationError("a series needs one more read time than energies", field="read_at")
        if not (self.covers_from_s <= read_at[0] and read_at[-1] <= self.covers_until_s):
            raise ValidationError(
                f"reads from {read_at[0]} to {read_at[-1]} are not all inside {self.month} "
                f"[{self.covers_from_s}, {self.covers_until_s}]: price a month end with price_interval",
                field="read_at",
            )
        if sorted(read_at) != read_at:  # a repeated read (no duration) is priced at its instant, as price_interval does
            raise ValidationError("read times must not go back", field="read_at")
        if read_at[-1] == self.covers_until_s and len(read_at) > 1 and read_at[-2] == read_at[-1]:
            raise ValidationError(f"a repeated read at the end of {self.month} is in the next month", field="read_at")
        if energies and min(energies) < 0:
            raise ValidationError("energy cannot be negative", field="energy")

    def _rate_cost(self, read_at: Sequence[int], energies: Sequence[int], month_energy: list[int]) -> tuple[int, int]:
        """Σ energy × rate price, summed by parts: with E(t) the month's energy at instant t,
        Σ_k price_k × (E(end of k) - E(start of k)) = last price × E(last read) - first price × E(first read)
        - Σ over switches of E(switch) × (price after - price before). Only switches cost Python steps."""
        first = bisect_right(self.segment_starts, read_at[0]) - 1
        stop = bisect_right(self.segment_starts, _last_instant(read_at))  # segments first..stop-1 hold the series
        switches = self.segment_starts[first + 1 : stop]
        positions = list(map(bisect_left, repeat(read_at), switches))  # the first read at or after each switch
        steps = self.price_steps[first:]
        at_switches = _energy_at_switches(read_at, energies, month_energy, switches, positions, steps)
        # a reading holding two switches or more gets the same position for both: redo it by largest remainder
        multi_switch = set(compress(positions, map(eq, positions, islice(positions, 1, None))))
        at_switches += sum(self._multi_switch_fix(read_at, energies, position) for position in multi_switch)
        at_ends = self.rate_prices[stop - 1] * month_energy[-1] - self.rate_prices[first] * month_energy[0]
        return at_ends - at_switches, len(multi_switch)

    def _multi_switch_fix(self, read_at: Sequence[int], energies: Sequence[int], position: int) -> int:
        """For a reading holding several switches, the largest-remainder E(switch) less the two-share
        rounding that ``_energy_at_switches`` used, times the price step, summed over its switches."""
        reading = position - 1
        start, end, energy = read_at[reading], read_at[position], energies[reading]
        span = end - start
        fix = apportioned = 0
        for segment, share in self._shares(start, end, energy)[:-1]:
            apportioned += share
            rounded = (2 * energy * (self.segments[segment].end_s - start) + span) // (2 * span)
            fix += (apportioned - rounded) * self.price_steps[segment]
        return fix

    def _shares(self, start_s: int, end_s: int, energy: int) -> list[tuple[int, int]]:
        """(segment index, energy) of one reading, apportioned by time with largest remainder."""
        first = bisect_right(self.segment_starts, start_s) - 1
        stop = bisect_left(self.segment_starts, end_s)
        indexes = range(first, stop)
        spans = [min(end_s, self.segments[k].end_s) - max(start_s, self.segments[k].start_s) for k in indexes]
        return list(zip(indexes, allocate_largest_remainder(energy, spans), strict=True))

    def _ladder_cost(self, read_at: Sequence[int], energies: Sequence[int], month_energy: list[int]) -> int:
        """Σ energy × tier increment: the month-to-date range each tariff version saw, cut by its tiers."""
        history = self.history
        first, last = history.index_at(read_at[0]), history.index_at(_last_instant(read_at))
        marks = [month_energy[0]]
        for version in range(first + 1, last + 1):
            marks.append(self._month_energy_at(history.effective_epochs[version], read_at, energies, month_energy))
        marks.append(month_energy[-1])
        ranges = zip(range(first, last + 1), pairwise(marks), strict=True)
        return sum(_increment_cost(history.versions[version].ladder, low, high) for version, (low, high) in ranges)

    def _month_energy_at(
        self, instant: int, read_at: Sequence[int], energies: Sequence[int], month_energy: list[int]
    ) -> int:
        """E at an instant inside the series that is a switch (so never inside a segment)."""
        position = bisect_left(read_at, instant)
        if read_at[position] == instant:
            return month_energy[position]
        reading = position - 1
        shares = self._shares(read_at[reading], read_at[position], energies[reading])
        return month_energy[reading] + sum(share for k, share in shares if self.segment_starts[k] < instant)


def _last_instant(read_at: Sequence[int]) -> int:
    """The series' last priced instant: its last second, or its end when it ends with a repeated read
    (whose energy is priced at that instant, as ``price_interval`` does)."""
    return read_at[-1] if read_at[-2] == read_at[-1] else read_at[-1] - 1


def _energy_at_switches(
    read_at: Sequence[int],
    energies: Sequence[int],
    month_energy: list[int],
    switches: Sequence[int],
    positions: list[int],
    steps: Sequence[int],
) -> int:
    """Σ E(switch) × price step. The reading ending at or straddling a switch splits in two by largest
    remainder, which for two shares is the first share rounded half up (all of it when it ends there).
    The hot loop: one step per switch, integers only."""
    total = 0
    for switch, position, step in zip(switches, positions, steps, strict=False):
        reading = position - 1
        start = read_at[reading]
        span = read_at[position] - start
        total += (month_energy[reading] + (2 * energies[reading] * (switch - start) + span) // (2 * span)) * step
    return total


def _increment_cost(ladder: Ladder, low: int, high: int) -> int:
    """Σ increment over the month-to-date energy from ``low`` to ``high``: unit x (from x to x + 1)
    is in the tier whose range [floor, ceiling) holds x."""
    cost = 0
    floors = (0, *ladder.upper_bounds)
    ceilings = (*ladder.upper_bounds, _NEVER)
    for increment, floor, ceiling in zip(ladder.increments, floors, ceilings, strict=True):
        overlap = min(high, ceiling) - max(low, floor)
        if overlap > 0:
            cost += overlap * increment
    return cost


class TariffPricer:
    """One site's history and zone with its compiled months, for ingestion: each interval goes through
    the month's table, or through ``price_interval`` when it crosses a month end."""

    def __init__(self, history: TariffHistory, tz: tzinfo) -> None:
        self.history = history
        self.tz = tz
        self._tables: dict[BillingMonth, TariffTable] = {}

    def table_for(self, month: BillingMonth) -> TariffTable:
        if month not in self._tables:
            self._tables[month] = TariffTable.compile(self.history, self.tz, month)
        return self._tables[month]

    def cost_by_month(
        self, start_s: int, end_s: int, energy_centi_kwh: int, month_energy_before: int
    ) -> tuple[tuple[BillingMonth, int], ...]:
        """Exact cost in micro-units per billing month touched (one month unless the interval crosses
        a month end; then the later month's ladder starts from zero)."""
        month = BillingMonth.of(start_s, self.tz)
        table = self.table_for(month)
        if table.covers(start_s, end_s):
            return ((month, table.cost_interval(start_s, end_s, energy_centi_kwh, month_energy_before)),)
        start, end = datetime.fromtimestamp(start_s, self.tz), datetime.fromtimestamp(end_s, self.tz)
        priced = price_interval(self.history, self.tz, start, end, energy_centi_kwh, month_energy_before)
        return priced.cost_micro_by_month()
