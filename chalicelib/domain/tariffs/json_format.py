"""Tariff versions to and from JSON: the API's input format and the stored form are the same.

```json
{"effective_from": "2026-12-01T00:00:00+08:00",
 "prices": {"sharp": "1.2000", "peak": "0.9500", "flat": "0.6500", "valley": "0.3500"},
 "schedule": [{"starts_on": [1, 1], "bands": [["00:00", "valley"], ["08:00", "flat"], ["10:00", "peak"]]}],
 "ladder": {"upper_bounds_kwh": ["1000", "3000"], "increments": ["0.0000", "0.0500", "0.3000"]}}
```
Prices are per kWh with up to four decimals (the meters' price registers); energy bounds in kWh with up
to two decimals. ``schedule`` null means one price all day; ``ladder`` may be left out.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs import NO_LADDER, DailyPlan, Ladder, RatePrices, Season, Tariff, TouSchedule

RATE_NAMES = ("sharp", "peak", "flat", "valley")
LARGEST_REGISTER_VALUE = 2**32 - 1  # prices and bounds end up in UINT32 registers


def _scaled(text: Any, digits: int, field: str) -> int:
    if isinstance(text, float | bool) or not isinstance(text, str | int) or len(str(text)) > 24:
        raise ValidationError(f"{field}: give the number as text, e.g. \"0.6500\"", field=field)
    try:
        scaled = Decimal(str(text)).scaleb(digits)
    except InvalidOperation:
        raise ValidationError(f"{field}: not a number", field=field) from None
    if not scaled.is_finite() or scaled != scaled.to_integral_value() or scaled < 0:
        raise ValidationError(f"{field}: at most {digits} decimals, not negative", field=field)
    if scaled > LARGEST_REGISTER_VALUE:
        raise ValidationError(f"{field}: too large for a meter register", field=field)
    return int(scaled)


def _unscaled(value: int, digits: int) -> str:
    return str(Decimal(value).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))


def tariff_from_json(data: Any) -> Tariff:
    if not isinstance(data, dict):
        raise ValidationError("the tariff must be a JSON object")
    try:
        effective = datetime.fromisoformat(str(data.get("effective_from", "")))
    except ValueError:
        raise ValidationError("effective_from: an ISO date-time with its offset", field="effective_from") from None
    if effective.tzinfo is None:
        raise ValidationError("effective_from needs an offset, e.g. +08:00", field="effective_from")
    prices = data.get("prices")
    if not isinstance(prices, dict) or set(prices) != set(RATE_NAMES):
        raise ValidationError("prices: sharp, peak, flat and valley", field="prices")
    rate_prices = RatePrices(*(_scaled(prices[name], 4, f"prices.{name}") for name in RATE_NAMES))
    return Tariff(effective, rate_prices, _schedule(data.get("schedule")), _ladder(data.get("ladder")))


def _schedule(data: Any) -> TouSchedule | None:
    if data is None:
        return None
    if not isinstance(data, list) or not data:
        raise ValidationError("schedule: a list of seasons, or null", field="schedule")
    seasons = []
    for season in data:
        if not isinstance(season, dict) or not isinstance(season.get("bands"), list):
            raise ValidationError("each season needs starts_on [month, day] and bands", field="schedule")
        starts = season.get("starts_on", [1, 1])
        if not (isinstance(starts, list) and len(starts) == 2 and all(isinstance(v, int) for v in starts)):
            raise ValidationError("starts_on: [month, day]", field="schedule")
        bands = [tuple(band) for band in season["bands"]
                 if isinstance(band, list) and len(band) == 2 and all(isinstance(part, str) for part in band)]
        if len(bands) != len(season["bands"]):
            raise ValidationError("each band is [\"HH:MM\", \"rate\"]", field="schedule")
        seasons.append(Season((starts[0], starts[1]), DailyPlan.of(*bands)))
    return TouSchedule(tuple(seasons))


def _ladder(data: Any) -> Ladder:
    if data is None:
        return NO_LADDER
    if not isinstance(data, dict):
        raise ValidationError("ladder: upper_bounds_kwh and increments", field="ladder")
    bounds_in, increments_in = data.get("upper_bounds_kwh") or [], data.get("increments") or []
    if not isinstance(bounds_in, list) or not isinstance(increments_in, list):
        raise ValidationError("ladder: upper_bounds_kwh and increments are lists", field="ladder")
    bounds = [_scaled(v, 2, "ladder.upper_bounds_kwh") for v in bounds_in]
    increments = [_scaled(v, 4, "ladder.increments") for v in increments_in]
    return Ladder(tuple(bounds), tuple(increments))


def tariff_to_json(tariff: Tariff) -> dict[str, Any]:
    prices = dict(zip(RATE_NAMES, (_unscaled(p, 4) for p in tariff.prices.as_tuple()), strict=True))
    schedule = None if tariff.schedule is None else [
        {"starts_on": list(season.starts_on),
         "bands": [[switch.at.strftime("%H:%M"), RATE_NAMES[switch.rate]] for switch in season.plan.switches]}
        for season in tariff.schedule.seasons]
    ladder = {"upper_bounds_kwh": [_unscaled(b, 2) for b in tariff.ladder.upper_bounds],
              "increments": [_unscaled(i, 4) for i in tariff.ladder.increments]}
    return {"effective_from": tariff.effective_from.isoformat(), "prices": prices, "schedule": schedule,
            "ladder": ladder}
