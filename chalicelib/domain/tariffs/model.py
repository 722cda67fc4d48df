"""What a tariff is: rates, daily time-of-use plans, seasons, per-rate prices, the ladder, versions.

Units, never float: energy in integer centi-kWh (0.01 kWh, the meters' register unit); prices in
integer 1/10000 of the currency per kWh (the meters' 4-decimal price registers).

The ladder (阶梯电价) model: cumulative energy in the billing month (local calendar month) falls into
tiers bounded by ``Ladder.upper_bounds``; tier ``n`` adds ``Ladder.increments[n - 1]`` per kWh to
whatever the time-of-use rate costs. An additive increment is what a prepaid meter can enforce: it
holds one price per rate, so at a tier boundary the cloud pushes all four rate prices raised by the
next tier's increment (and lowers them again at month rollover).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import IntEnum
from itertools import pairwise

from chalicelib.domain.errors import ValidationError

MAX_PRICE = 0xFFFF_FFFF  # the meters' UINT32 price registers
MINUTES_PER_DAY = 24 * 60


class Rate(IntEnum):
    """Time-of-use rates, numbered in the order of the meters' price and energy registers."""

    SHARP = 0  # 尖
    PEAK = 1  # 峰
    FLAT = 2  # 平
    VALLEY = 3  # 谷

    @classmethod
    def parse(cls, text: str | Rate) -> Rate:
        """``"peak"``, ``"PEAK"`` or ``"峰"`` → ``Rate.PEAK``."""
        if isinstance(text, Rate):
            return text
        name = _CHINESE_RATE_NAMES.get(text.strip(), text.strip().upper())
        try:
            return cls[name]
        except KeyError:
            raise ValidationError(f"unknown rate {text!r}: use sharp, peak, flat or valley", field="rate") from None


_CHINESE_RATE_NAMES = {"尖": "SHARP", "峰": "PEAK", "平": "FLAT", "谷": "VALLEY"}


def _minute_of_day(at: time) -> int:
    if at.tzinfo is not None or at.second or at.microsecond:
        raise ValidationError(f"switch time {at} must be a local wall-clock time in whole minutes", field="switches")
    return at.hour * 60 + at.minute


def _parse_clock(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"not a time of day: {text!r} (use HH:MM)", field="switches") from None


@dataclass(frozen=True)
class Switch:
    """From ``at`` (local wall-clock time) the ``rate`` applies, until the next switch."""

    at: time
    rate: Rate


@dataclass(frozen=True)
class DailyPlan:
    """A day's time bands. Before the first switch, the last band of the day carries on (it wraps
    round midnight), so ``23:00 valley … 08:00 flat`` needs no separate 00:00 switch."""

    switches: tuple[Switch, ...]
    _minutes: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.switches:
            raise ValidationError("a daily plan needs at least one switch time", field="switches")
        minutes = tuple(_minute_of_day(switch.at) for switch in self.switches)
        for earlier, later in pairwise(minutes):
            if later <= earlier:
                order = f"{_clock(earlier)} then {_clock(later)}"
                raise ValidationError(f"switch times must increase, without repeats ({order})", field="switches")
        object.__setattr__(self, "_minutes", minutes)

    @classmethod
    def of(cls, *bands: tuple[str, str | Rate]) -> DailyPlan:
        """``DailyPlan.of(("08:00", "flat"), ("10:00", "peak"), ("23:00", "valley"))``."""
        return cls(tuple(Switch(_parse_clock(at), Rate.parse(rate)) for at, rate in bands))

    def rate_at(self, minute_of_day: int) -> Rate:
        index = bisect_right(self._minutes, minute_of_day) - 1
        return self.switches[index].rate  # index -1 is the last band, wrapping from the day before

    @property
    def switch_minutes(self) -> tuple[int, ...]:
        return self._minutes


def _clock(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


@dataclass(frozen=True)
class Season:
    """From ``starts_on`` (month, day) each year, ``plan`` applies until the next season starts."""

    starts_on: tuple[int, int]
    plan: DailyPlan

    def __post_init__(self) -> None:
        month, day = self.starts_on
        if (month, day) == (2, 29):
            raise ValidationError("a season cannot start on 29 February (most years have none)", field="seasons")
        try:
            date(2001, month, day)  # a common year: any valid start exists every year
        except (ValueError, TypeError):
            raise ValidationError(f"not a month and day: {self.starts_on!r}", field="seasons") from None


@dataclass(frozen=True)
class TouSchedule:
    """Time-of-use plans for the year. The season starting latest on or before a date applies; before
    the first season's start, the last season carries on from the previous year."""

    seasons: tuple[Season, ...]

    def __post_init__(self) -> None:
        if not self.seasons:
            raise ValidationError("a time-of-use schedule needs at least one season", field="seasons")
        starts = [season.starts_on for season in self.seasons]
        if starts != sorted(set(starts)):
            raise ValidationError("seasons must be in calendar order, each on its own start day", field="seasons")

    @classmethod
    def year_round(cls, plan: DailyPlan) -> TouSchedule:
        return cls((Season((1, 1), plan),))

    def plan_on(self, day: date) -> DailyPlan:
        index = bisect_right([season.starts_on for season in self.seasons], (day.month, day.day)) - 1
        return self.seasons[index].plan

    def switch_minutes(self) -> frozenset[int]:
        return frozenset(minute for season in self.seasons for minute in season.plan.switch_minutes)


def _check_price(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer in 1/10000 per kWh, got {value!r}", field="prices")
    if not 0 <= value <= MAX_PRICE:
        raise ValidationError(f"{what} {value} is outside 0..{MAX_PRICE} (1/10000 per kWh)", field="prices")


@dataclass(frozen=True)
class RatePrices:
    """One price per rate, in 1/10000 of the currency per kWh (what a meter's price registers hold)."""

    sharp: int
    peak: int
    flat: int
    valley: int

    def __post_init__(self) -> None:
        for rate in Rate:
            _check_price(self.for_rate(rate), f"{rate.name.lower()} price")

    @classmethod
    def uniform(cls, price: int) -> RatePrices:
        return cls(price, price, price, price)

    def for_rate(self, rate: Rate) -> int:
        return self.as_tuple()[rate]

    def as_tuple(self) -> tuple[int, int, int, int]:
        """In register order: sharp, peak, flat, valley."""
        return (self.sharp, self.peak, self.flat, self.valley)

    def raised_by(self, increment: int) -> RatePrices:
        return RatePrices(*(price + increment for price in self.as_tuple()))


@dataclass(frozen=True)
class Ladder:
    """Tiers by cumulative energy in the billing month. ``upper_bounds`` (centi-kWh, increasing) end
    tiers 1..n; the last tier is open. Energy that brings the month exactly to a bound is still in the
    lower tier. ``increments`` (one per tier, 1/10000 per kWh) are added to the rate price."""

    upper_bounds: tuple[int, ...]
    increments: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.increments) != len(self.upper_bounds) + 1:
            raise ValidationError("a ladder needs one increment per tier: one more than its bounds", field="ladder")
        bounds = (0, *self.upper_bounds)
        if any(not isinstance(b, int) or b <= a for a, b in pairwise(bounds)):
            raise ValidationError("ladder bounds must be positive and increasing (centi-kWh)", field="ladder")
        for increment in self.increments:
            _check_price(increment, "ladder increment")
        if list(self.increments) != sorted(self.increments):
            raise ValidationError("ladder increments must not fall from one tier to the next", field="ladder")

    def tier_of(self, month_energy: int) -> int:
        """The tier (1 = first) that the next unit of energy falls in, after ``month_energy``."""
        return bisect_right(self.upper_bounds, month_energy) + 1

    def increment_of(self, tier: int) -> int:
        return self.increments[tier - 1]


NO_LADDER = Ladder((), (0,))


@dataclass(frozen=True)
class Tariff:
    """One tariff version, in force from ``effective_from`` until the next version. Without a schedule
    it is a single price: every hour counts as FLAT and all four rate prices must be equal."""

    effective_from: datetime
    prices: RatePrices
    schedule: TouSchedule | None = None
    ladder: Ladder = NO_LADDER

    def __post_init__(self) -> None:
        if self.effective_from.utcoffset() is None:
            raise ValidationError("effective_from must carry a timezone", field="effective_from")
        if self.schedule is None and len(set(self.prices.as_tuple())) != 1:
            raise ValidationError("a single-price tariff has one price for every rate", field="prices")
        for rate in Rate:
            _check_price(self.prices.for_rate(rate) + self.ladder.increments[-1], f"{rate.name.lower()} top-tier price")

    @classmethod
    def single_price(cls, effective_from: datetime, price: int, ladder: Ladder = NO_LADDER) -> Tariff:
        return cls(effective_from, RatePrices.uniform(price), None, ladder)

    def rate_at(self, local: datetime) -> Rate:
        """The rate in force at a local wall-clock time (the meter's own clock decides the band)."""
        if self.schedule is None:
            return Rate.FLAT
        return self.schedule.plan_on(local.date()).rate_at(local.hour * 60 + local.minute)

    def price_of(self, rate: Rate, tier: int) -> int:
        return self.prices.for_rate(rate) + self.ladder.increment_of(tier)

    def meter_prices(self, tier: int) -> RatePrices:
        """The four prices a prepaid meter must hold while the month is in ``tier``."""
        return self.prices.raised_by(self.ladder.increment_of(tier))

    def switch_minutes(self) -> frozenset[int]:
        return frozenset() if self.schedule is None else self.schedule.switch_minutes()


@dataclass(frozen=True)
class TariffHistory:
    """Tariff versions in order of ``effective_from``; a period is priced by the version then in force."""

    versions: tuple[Tariff, ...]
    effective_epochs: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValidationError("a tariff history needs at least one version", field="versions")
        epochs = tuple(epoch_seconds(version.effective_from) for version in self.versions)
        if any(later <= earlier for earlier, later in pairwise(epochs)):
            raise ValidationError("tariff versions must take effect in order, at different instants", field="versions")
        object.__setattr__(self, "effective_epochs", epochs)

    def index_at(self, epoch_s: int) -> int:
        index = bisect_right(self.effective_epochs, epoch_s) - 1
        if index < 0:
            first = self.versions[0].effective_from.isoformat()
            raise ValidationError(f"no tariff in force before {first}", field="start")
        return index

    def in_force_at(self, instant: datetime) -> Tariff:
        return self.versions[self.index_at(epoch_seconds(instant))]


_UNIX_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def epoch_seconds(instant: datetime) -> int:
    """Whole seconds since 1970-01-01T00:00Z of an aware datetime, by integer arithmetic (no float)."""
    offset = instant.utcoffset()
    if offset is None:
        raise ValidationError(f"{instant.isoformat()} has no timezone", field="instant")
    naive_utc = instant.replace(tzinfo=None) - offset
    return (naive_utc - _UNIX_EPOCH) // _SECOND
