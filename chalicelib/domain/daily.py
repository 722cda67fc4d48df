"""Daily roll-ups of meter registers (SPEC 28 energy analysis, 23–25 sales): pure arithmetic on readings.

A day's figures are differences between the last reading before the day began (the opening) and the
last reading of the day (the closing), so a day is complete however many readings it had. For a prepaid
meter the money spent is what the balance lost plus what was bought in the day: opening remaining +
purchased − closing remaining, all from the meter's own registers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chalicelib.domain.money import round_to_minor

RATES = ("sharp", "peak", "flat", "valley")
ZERO = Decimal(0)


@dataclass(frozen=True)
class DayFigures:
    energy_kwh: Decimal
    energy_by_rate: tuple[Decimal, Decimal, Decimal, Decimal]
    spent_minor: int | None
    purchased_minor: int | None
    purchases: int | None
    readings: int

    def plus(self, other: DayFigures) -> DayFigures:
        return DayFigures(
            self.energy_kwh + other.energy_kwh,
            _rates(a + b for a, b in zip(self.energy_by_rate, other.energy_by_rate, strict=True)),
            _add(self.spent_minor, other.spent_minor), _add(self.purchased_minor, other.purchased_minor),
            _add(self.purchases, other.purchases), self.readings + other.readings)


EMPTY_DAY = DayFigures(ZERO, (ZERO, ZERO, ZERO, ZERO), 0, 0, 0, 0)


def _rates(values: Iterable[Decimal]) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    sharp, peak, flat, valley = values
    return sharp, peak, flat, valley


def _or_zero(value: Decimal | None) -> Decimal:
    return ZERO if value is None else value  # not ``or``: Decimal("0.00") is falsy and would lose its scale


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _number(values: Mapping[str, Any], name: str) -> Decimal | None:
    value = values.get(name)
    return None if value is None else Decimal(str(value))


def _delta(opening: Mapping[str, Any], closing: Mapping[str, Any], name: str) -> Decimal | None:
    start, end = _number(opening, name), _number(closing, name)
    return None if start is None or end is None else end - start


def day_figures(opening: Mapping[str, Any] | None, day: Iterable[Mapping[str, Any]]) -> DayFigures:
    """Figures of one meter-day from its opening reading (None: the meter's first day) and the day's readings,
    oldest first. With no opening, the day's first reading stands in for it."""
    readings = list(day)
    if not readings:
        return EMPTY_DAY
    start, end = opening if opening is not None else readings[0], readings[-1]
    energy = _or_zero(_delta(start, end, "energy_total"))
    by_rate = _rates(_or_zero(_delta(start, end, f"energy_{rate}")) for rate in RATES)
    purchased = _delta(start, end, "total_purchased")
    count = _delta(start, end, "purchase_count")
    opening_left, closing_left = _number(start, "remaining_amount"), _number(end, "remaining_amount")
    spent = None if opening_left is None or closing_left is None or purchased is None \
        else round_to_minor(opening_left + purchased - closing_left)
    return DayFigures(energy, by_rate, spent, None if purchased is None else round_to_minor(purchased),
                      None if count is None else int(count), len(readings))
