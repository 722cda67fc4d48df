"""The fast path: a tariff history compiled for one billing month into integer lookup rows.

Same prices as ``price_interval`` to the micro-unit, but the hot loop touches only integers: no
datetime, no Decimal, no allocation per reading. A reading inside one segment, or crossing into the
next segment only (the reading that spans a time-of-use switch), is priced inline; anything else
(a tier bound reached, several switches, a gap) goes through the general split over the table's
segments. Compiling a month takes milliseconds; keep tables per (history, month), e.g. in a
``TariffPricer``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs.model import TariffHistory
from chalicelib.domain.tariffs.pricing import check_energy, price_interval, price_segments
from chalicelib.domain.tariffs.timeline import BillingMonth, Segment, segments_between

_NO_CEILING = 1 << 62  # above any month's energy: the open top tier
_NO_NEXT = -1  # a "next segment end" no reading can fit under: the last segment has no next

# One row per segment and ladder tier: (start_s, end_s, next segment's end_s, price, next segment's price).
_Row = tuple[int, int, int, int, int]
Reading = tuple[int, int, int]  # (start_s, end_s, energy_centi_kwh)


@dataclass(frozen=True)
class ReadingsCost:
    cost_micro: int  # exact, in 1/1,000,000 of the currency
    month_energy_after: int
    split_readings: int  # readings that needed the general split (tier bound, several switches, gap)


@dataclass(frozen=True)
class TariffTable:
    history: TariffHistory
    tz: tzinfo
    month: BillingMonth
    covers_from_s: int  # the month's start, or the first version's, whichever is later
    covers_until_s: int  # the next month's start
    segments: tuple[Segment, ...]
    segment_starts: tuple[int, ...]
    tier_bounds: tuple[int, ...]  # every ladder bound of every version in the month, so tiers never straddle one
    rows_by_tier: tuple[tuple[_Row, ...], ...]  # [tier index][segment index]

    @classmethod
    def compile(cls, history: TariffHistory, tz: tzinfo, month: BillingMonth) -> TariffTable:
        month_end_s = month.following().start_s(tz)
        start_s = max(month.start_s(tz), history.effective_epochs[0])
        if start_s >= month_end_s:
            raise ValidationError(f"no tariff in force in {month}", field="month")
        segments = segments_between(history, tz, start_s, month_end_s)
        versions = {segment.version_index for segment in segments}
        bounds = tuple(sorted({b for v in versions for b in history.versions[v].ladder.upper_bounds}))
        rows = tuple(_rows_for_tier(history, segments, floor) for floor in (0, *bounds))
        return cls(history, tz, month, start_s, month_end_s, segments, tuple(s.start_s for s in segments), bounds, rows)

    def covers(self, start_s: int, end_s: int) -> bool:
        return self.covers_from_s <= start_s < end_s <= self.covers_until_s

    def cost_interval(self, start_s: int, end_s: int, energy_centi_kwh: int, month_energy_before: int) -> int:
        """Exact cost in micro-units of one interval inside this month (epoch seconds)."""
        return self.cost_readings((start_s,), (end_s,), (energy_centi_kwh,), month_energy_before).cost_micro

    def cost_readings(
        self, starts: Sequence[int], ends: Sequence[int], energies: Sequence[int], month_energy_before: int
    ) -> ReadingsCost:
        """One meter's consecutive readings in this month, in time order: reading i is priced after
        ``month_energy_before`` plus the energy of readings 0..i-1 (the ladder follows list order)."""
        if not len(starts) == len(ends) == len(energies):
            raise ValidationError("starts, ends and energies must be equally long", field="readings")
        check_energy(0, month_energy_before)
        if energies and min(energies) < 0:
            raise ValidationError("energy cannot be negative", field="energy")
        first_start = starts[0] if starts else self.covers_from_s
        readings = zip(starts, ends, energies, strict=True)
        total, month_energy, split = self._cost_run(readings, month_energy_before, first_start)
        if not isinstance(total, int) or not isinstance(month_energy, int):
            raise ValidationError("energy and times must be integers (centi-kWh, seconds), never float", field="energy")
        return ReadingsCost(total, month_energy, split)

    def _cost_run(self, readings: Iterable[Reading], month_energy: int, first_start: int) -> tuple[int, int, int]:
        total = split = 0
        rows, ceiling, index = self._cursor(first_start, month_energy)
        seg_start, seg_end, next_end, price, next_price = rows[index]
        for start, end, energy in readings:
            month_energy += energy
            if month_energy <= ceiling:  # the whole reading stays in the cursor's tier
                if seg_start <= start < end < seg_end:
                    total += energy * price
                    continue
                if seg_start <= start < seg_end <= end <= next_end:
                    # two segments: largest remainder of two shares is the first share rounded half up
                    span = end - start
                    first = (2 * energy * (seg_end - start) + span) // (2 * span)
                    total += first * price + (energy - first) * next_price
                    index += 1
                    seg_start, seg_end, next_end, price, next_price = rows[index]
                    continue
            month_energy -= energy
            total += self._split_cost(start, end, energy, month_energy)
            month_energy += energy
            split += 1
            rows, ceiling, index = self._cursor(end, month_energy)
            seg_start, seg_end, next_end, price, next_price = rows[index]
        return total, month_energy, split

    def _cursor(self, at_s: int, month_energy: int) -> tuple[tuple[_Row, ...], int, int]:
        """Rows for the tier after ``month_energy``, that tier's ceiling, and the segment holding ``at_s``."""
        tier_index = bisect_right(self.tier_bounds, month_energy)
        ceiling = self.tier_bounds[tier_index] if tier_index < len(self.tier_bounds) else _NO_CEILING
        index = min(max(bisect_right(self.segment_starts, at_s) - 1, 0), len(self.segments) - 1)
        return self.rows_by_tier[tier_index], ceiling, index

    def _split_cost(self, start_s: int, end_s: int, energy: int, month_energy: int) -> int:
        check_energy(energy, month_energy)
        if not self.covers(start_s, end_s):
            raise ValidationError(
                f"reading [{start_s}, {end_s}) is not an interval inside {self.month} "
                f"[{self.covers_from_s}, {self.covers_until_s}): price it with price_interval",
                field="readings",
            )
        first = bisect_right(self.segment_starts, start_s) - 1
        last = bisect_right(self.segment_starts, end_s - 1) - 1
        clipped = [segment.clipped(start_s, end_s) for segment in self.segments[first : last + 1]]
        parts, _ = price_segments(self.history, clipped, energy, month_energy)
        return sum(part.cost_micro for part in parts)


def _rows_for_tier(history: TariffHistory, segments: Sequence[Segment], tier_floor: int) -> tuple[_Row, ...]:
    """Rows for the month-to-date range starting at ``tier_floor``: each version prices that range in
    one of its own tiers, because the table's bounds include every version's bounds."""
    prices = []
    for segment in segments:
        version = history.versions[segment.version_index]
        prices.append(version.price_of(segment.rate, version.ladder.tier_of(tier_floor)))
    rows = []
    for index, segment in enumerate(segments):
        has_next = index + 1 < len(segments)
        next_end = segments[index + 1].end_s if has_next else _NO_NEXT
        rows.append((segment.start_s, segment.end_s, next_end, prices[index], prices[index + 1] if has_next else 0))
    return tuple(rows)


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
        start, end = _aware(start_s, self.tz), _aware(end_s, self.tz)
        priced = price_interval(self.history, self.tz, start, end, energy_centi_kwh, month_energy_before)
        return priced.cost_micro_by_month()


def _aware(epoch_s: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz)
