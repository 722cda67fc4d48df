"""Cutting time into segments over which the tariff version, the rate and the billing month are constant.

The rule: the rate in force at an instant is the band holding the site's local wall-clock time then
(what a meter with a local clock does). On a 23-hour day the skipped hour simply does not exist; on a
25-hour day the repeated hour is priced by its wall-clock band both times. A switch at a wall time
that the clocks jump over takes effect at the jump.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import pairwise

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs.model import Rate, TariffHistory, epoch_seconds

_DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class BillingMonth:
    """A calendar month in the site's timezone: the period the ladder accumulates over."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValidationError(f"not a month: {self.month}", field="month")

    @classmethod
    def of(cls, epoch_s: int, tz: tzinfo) -> BillingMonth:
        local = datetime.fromtimestamp(epoch_s, tz)
        return cls(local.year, local.month)

    def following(self) -> BillingMonth:
        return BillingMonth(self.year + self.month // 12, self.month % 12 + 1)

    def start_s(self, tz: tzinfo) -> int:
        """The epoch second of local midnight on the 1st (the instant the ladder resets)."""
        return _wall_instants(date(self.year, self.month, 1), time(0), tz)[0]

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Segment:
    """[start_s, end_s) in epoch seconds, under one tariff version, one rate, one billing month."""

    start_s: int
    end_s: int
    version_index: int
    rate: Rate
    month: BillingMonth

    @property
    def seconds(self) -> int:
        return self.end_s - self.start_s

    def clipped(self, start_s: int, end_s: int) -> Segment:
        return Segment(max(start_s, self.start_s), min(end_s, self.end_s), self.version_index, self.rate, self.month)


def segments_between(history: TariffHistory, tz: tzinfo, start_s: int, end_s: int) -> tuple[Segment, ...]:
    """The maximal runs of constant (version, rate, month) covering [start_s, end_s), in time order
    (one empty segment at the instant when start_s == end_s)."""
    if end_s < start_s:
        raise ValidationError("an interval cannot end before it starts", field="end")
    history.index_at(start_s)  # refuses a period before the first version
    if end_s == start_s:  # a repeated read: no duration, its energy (if any) is priced at that instant
        return (Segment(start_s, end_s, *_key_at(history, tz, start_s)),)
    cuts = sorted(_change_candidates(history, tz, start_s, end_s))
    segments: list[Segment] = []
    for piece_start, piece_end in pairwise(cuts):
        version_index, rate, month = _key_at(history, tz, piece_start)
        last = segments[-1] if segments else None
        if last is not None and (last.version_index, last.rate, last.month) == (version_index, rate, month):
            segments[-1] = Segment(last.start_s, piece_end, version_index, rate, month)
        else:
            segments.append(Segment(piece_start, piece_end, version_index, rate, month))
    return tuple(segments)


def _key_at(history: TariffHistory, tz: tzinfo, epoch_s: int) -> tuple[int, Rate, BillingMonth]:
    version_index = history.index_at(epoch_s)
    local = datetime.fromtimestamp(epoch_s, tz)
    return version_index, history.versions[version_index].rate_at(local), BillingMonth(local.year, local.month)


def _change_candidates(history: TariffHistory, tz: tzinfo, start_s: int, end_s: int) -> set[int]:
    """A superset of the instants in (start_s, end_s) where the key can change, plus both ends:
    every wall-clock switch and midnight (both readings of an ambiguous time), the version changes,
    and the instants where the zone's offset changes (found between those by bisection)."""
    first_version, last_version = history.index_at(start_s), history.index_at(end_s - 1)
    versions = history.versions[first_version : last_version + 1]
    switch_minutes = sorted(set().union(*(version.switch_minutes() for version in versions)))
    wall_times = [time(0)] + [time(minute // 60, minute % 60) for minute in switch_minutes]
    instants = {start_s, end_s, *history.effective_epochs[first_version + 1 : last_version + 1]}
    for day in _local_days(tz, start_s, end_s):
        for wall in wall_times:
            instants.update(_wall_instants(day, wall, tz))
    inside = sorted(t for t in instants if start_s <= t <= end_s)
    inside.extend(_offset_changes(tz, inside))
    return set(inside)


def _local_days(tz: tzinfo, start_s: int, end_s: int) -> Iterable[date]:
    """The local dates touched by the interval, with a day's margin either side for odd offsets."""
    day = datetime.fromtimestamp(start_s, tz).date() - _DAY
    last = datetime.fromtimestamp(end_s, tz).date() + _DAY
    while day <= last:
        yield day
        day += _DAY


def _wall_instants(day: date, wall: time, tz: tzinfo) -> tuple[int, int]:
    """The instants at which local clocks read ``day wall`` (two when the clocks go back; in a gap,
    two instants either side of the jump, which the offset search then pins down)."""
    return (
        epoch_seconds(datetime.combine(day, wall, tzinfo=tz)),
        epoch_seconds(datetime.combine(day, wall, tzinfo=tz).replace(fold=1)),
    )


def _utc_offset_s(tz: tzinfo, epoch_s: int) -> int:
    offset = datetime.fromtimestamp(epoch_s, tz).utcoffset()
    return 0 if offset is None else offset // timedelta(seconds=1)


def _offset_changes(tz: tzinfo, sorted_instants: list[int]) -> list[int]:
    """The first instant of each new UTC offset between consecutive instants (at most one change
    between two instants a few hours apart, which holds for every zone in use)."""
    changes = []
    offsets = [_utc_offset_s(tz, t) for t in sorted_instants]
    for (before, after), (old, new) in zip(pairwise(sorted_instants), pairwise(offsets), strict=True):
        if old == new:
            continue
        low, high = before, after  # offset(low) == old, offset(high) == new
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if _utc_offset_s(tz, middle) == old else (low, middle)
        changes.append(high)
    return changes
