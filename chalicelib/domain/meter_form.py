"""One meter added or changed by hand, checked by exactly the rules of the bulk import (domain/meter_import.py).

The form's values become a one-row sheet under the import template's English header, and the import's checker
judges it against the site: unknown model, collector or unit, a bad address, an address taken on the bus, a full
bus, an id or serial used elsewhere in the company, a plain model marked prepaid. So a meter typed in and a meter
imported can never be held to different rules. The problems keep the import's codes; each is mapped back to the
form field it concerns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.meter_import import (
    TEMPLATE_HEADERS,
    Column,
    Problem,
    Sheet,
    SiteContext,
    cell_text,
    plan_import,
)
from chalicelib.domain.tenancy import Meter

FIELD_OF: Mapping[Column, str] = {
    Column.METER_ID: "meter_id", Column.SERIAL: "serial", Column.MODEL: "model", Column.COLLECTOR: "collector_id",
    Column.ADDRESS: "address", Column.BUILDING: "unit_id", Column.FLOOR: "unit_id", Column.UNIT: "unit_id",
    Column.CT_RATIO: "ct_ratio", Column.BILLING_MODE: "billing_mode", Column.NEW_UNIT: "unit_id",
}
FIELDS = ("meter_id", "serial", "model", "collector_id", "address", "unit_id", "ct_ratio", "billing_mode")
_HEADERS = TEMPLATE_HEADERS["en"]
_COLUMN_OF_HEADER = {header: column for column, header in _HEADERS.items()}


class MeterInvalid(ValidationError):
    """The meter breaks the import's rules; ``problems`` are the import's, each with its form field."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        super().__init__("; ".join(p.message for p in problems), field=field_of(problems[0]))
        self.problems = problems

    def as_json(self) -> list[dict[str, Any]]:
        return [{"field": field_of(p), "code": p.code, "message": p.message} for p in self.problems]


def field_of(problem: Problem) -> str:
    column = _COLUMN_OF_HEADER.get(problem.column)
    return FIELD_OF[column] if column is not None else "meter_id"


def checked_meter(values: Mapping[str, object], site: SiteContext, *, existing: Meter | None = None) -> Meter:
    """The meter ``values`` describe (keys as in FIELDS; absent keys keep ``existing``'s), or MeterInvalid.

    ``site`` must leave out ``existing`` itself (its own address and serial are not a clash); an existing meter
    keeps its id and its own overrides of the site defaults."""
    cells = _cells(values, site, existing)
    sheet = Sheet(1, tuple(_HEADERS[c] for c in Column), ((2, tuple(cells[c] for c in Column)),))
    plan = plan_import(sheet, site, lambda: "unused")  # the row never declares a new unit
    if not plan.ok:
        raise MeterInvalid(plan.problems)
    meter = plan.meters[0]
    if existing is None:
        return meter
    return replace(existing, serial=meter.serial, model=meter.model, collector_id=meter.collector_id,
                   address=meter.address, unit_id=meter.unit_id, billing_mode=meter.billing_mode,
                   ct_ratio=meter.ct_ratio)


def _cells(values: Mapping[str, object], site: SiteContext, existing: Meter | None) -> dict[Column, str]:
    def value(name: str, current: object) -> str:
        return cell_text(values[name]) if name in values else cell_text(current)

    unit_ref = value("unit_id", existing.unit_id if existing else "")
    unit = next((u for u in site.units if u.unit_id == unit_ref), None)
    return {
        Column.METER_ID: existing.meter_id if existing else value("meter_id", ""),
        Column.SERIAL: value("serial", existing.serial if existing else ""),
        Column.MODEL: value("model", existing.model if existing else ""),
        Column.COLLECTOR: value("collector_id", existing.collector_id if existing else ""),
        Column.ADDRESS: value("address", existing.address if existing else ""),
        # The unit by its id: its building and number pin it down however unit numbers repeat across buildings.
        Column.BUILDING: unit.building_id if unit else "",
        Column.FLOOR: "",
        Column.UNIT: unit.number if unit else unit_ref,
        Column.CT_RATIO: value("ct_ratio", existing.ct_ratio if existing else ""),
        Column.BILLING_MODE: value("billing_mode", existing.billing_mode.value if existing else ""),
        Column.NEW_UNIT: "",
    }
