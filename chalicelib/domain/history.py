"""One meter's reading history by day (SPEC 16), pure: daily energy and closing balance from the last reading
before each day boundary, and the geometry of a small chart of both (drawn as SVG by the page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.money import parse_amount


@dataclass(frozen=True)
class DayLine:
    day: date
    energy_kwh: Decimal | None  # None: no reading before or at the end of the day
    balance_minor: int | None  # the remaining amount at the day's last reading
    purchases: int | None  # purchase commands the meter accepted that day


def _decimal(values: Mapping[str, Any] | None, name: str) -> Decimal | None:
    value = values.get(name) if values else None
    return None if value is None else Decimal(str(value))


def daily_lines(days: Sequence[date], boundaries: Sequence[Mapping[str, Any] | None]) -> list[DayLine]:
    """``boundaries[i]`` is the last reading before ``days[i]`` began; one more closes the last day."""
    if len(boundaries) != len(days) + 1:
        raise ValueError("one boundary reading per day, plus one after the last day")
    lines = []
    for day, opening, closing in zip(days, boundaries, boundaries[1:], strict=False):
        start, end = _decimal(opening, "energy_total"), _decimal(closing, "energy_total")
        before, after = _decimal(opening, "purchase_count"), _decimal(closing, "purchase_count")
        balance = closing.get("remaining_amount") if closing else None
        lines.append(DayLine(day, None if start is None or end is None else end - start,
                             None if balance is None else parse_amount(str(balance)),
                             None if before is None or after is None else int(after - before)))
    return lines


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Coordinates in a ``width`` × ``height`` box: energy as bars, balance as a line."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    balance_points: str  # "x,y x,y …" for an SVG polyline
    max_energy: Decimal
    balance_range: tuple[int, int]


def chart(lines: Sequence[DayLine], width: int = 640, height: int = 160) -> Chart:
    """Scale a history into a chart; empty days keep their slot so the days stay evenly spaced."""
    slot = width / max(len(lines), 1)
    energies = [line.energy_kwh for line in lines if line.energy_kwh is not None]
    top = max([e for e in energies if e > 0], default=Decimal(1))
    bars = []
    for i, line in enumerate(lines):
        share = float(max(line.energy_kwh or Decimal(0), Decimal(0)) / top)
        bars.append(Bar(round(i * slot + slot * 0.15, 1), round(height * (1 - share), 1), round(slot * 0.7, 1),
                        round(height * share, 1), f"{line.day:%m-%d} {line.energy_kwh or 0} kWh"))
    balances = [line.balance_minor for line in lines if line.balance_minor is not None]
    low, high = (min(balances), max(balances)) if balances else (0, 0)
    span = max(high - low, 1)
    points = " ".join(f"{round(i * slot + slot / 2, 1)},{round(height * (1 - (b - low) / span), 1)}"
                      for i, line in enumerate(lines) if (b := line.balance_minor) is not None)
    return Chart(width, height, tuple(bars), points, top, (low, high))


def days_of_credit(balance_minor: int | None, spent_minor: int, window_days: int) -> Decimal | None:
    """How many days the credit lasts at the recent rate of spending (one decimal); None when nothing was spent
    (no rate to go by) or the balance is unknown; 0 when there is no credit left."""
    if balance_minor is None or window_days <= 0 or spent_minor <= 0:
        return None
    if balance_minor <= 0:
        return Decimal(0)
    return (Decimal(balance_minor) * window_days / spent_minor).quantize(Decimal("0.1"))


def spent_in_window(balance_then_minor: int | None, balance_now_minor: int | None, credit_added_minor: int) -> int:
    """What a prepaid meter used over a window: the balance it started with, plus what was added, less what is
    left (0 when either balance is unknown)."""
    if balance_then_minor is None or balance_now_minor is None:
        return 0
    return max(balance_then_minor + credit_added_minor - balance_now_minor, 0)


EXPORT_COLUMNS = ("energy_total", "energy_sharp", "energy_peak", "energy_flat", "energy_valley", "voltage",
                  "current", "active_power", "remaining_amount", "purchase_count", "relay_state", "control_mode")


def export_row(at: datetime, values: dict[str, object]) -> list[datetime | int | Decimal | None]:
    """A reading as spreadsheet cells: exact decimals stay Decimal, counts stay integers."""
    cells: list[datetime | int | Decimal | None] = [at]
    for name in EXPORT_COLUMNS:
        value = values.get(name)
        cells.append(value if value is None or isinstance(value, int) else Decimal(str(value)))
    return cells
