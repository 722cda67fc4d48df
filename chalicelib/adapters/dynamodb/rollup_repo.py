"""Daily roll-ups per meter and per unit, floor and building, so reports never scan raw readings."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pynamodb.connection import Connection

from chalicelib.adapters.dynamodb.keys import site_pk
from chalicelib.adapters.dynamodb.models import DayItem
from chalicelib.domain.daily import DayFigures


def _to_item(operator_id: str, site_id: str, day: str, scope: str, figures: DayFigures) -> DayItem:
    data = {"energy_kwh": str(figures.energy_kwh), "energy_by_rate": [str(v) for v in figures.energy_by_rate],
            "spent_minor": figures.spent_minor, "purchased_minor": figures.purchased_minor,
            "purchases": figures.purchases, "readings": figures.readings}
    return DayItem(pk=f"{site_pk(operator_id, site_id)}#DAYS", sk=f"{day}#{scope}", day=day, scope=scope,
                   figures=data)


def _figures(item: DayItem) -> DayFigures:
    data = item.figures
    rates = tuple(Decimal(v) for v in data["energy_by_rate"])
    return DayFigures(Decimal(data["energy_kwh"]), (rates[0], rates[1], rates[2], rates[3]), data["spent_minor"],
                      data["purchased_minor"], data["purchases"], data["readings"])


class DynamoRollupRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def put_days(self, operator_id: str, site_id: str, rows: Iterable[tuple[str, str, DayFigures]]) -> None:
        with DayItem.batch_write() as batch:
            for day, scope, figures in rows:
                batch.save(_to_item(operator_id, site_id, day, scope, figures))

    def days(self, operator_id: str, site_id: str, first: str, last: str,
             scope: str | None = None) -> list[tuple[str, str, DayFigures]]:
        """Roll-ups of the days first..last (inclusive, ISO dates), for one scope or all."""
        items = DayItem.query(f"{site_pk(operator_id, site_id)}#DAYS", DayItem.sk.between(first, f"{last}~"))
        return [(i.day, i.scope, _figures(i)) for i in items if scope is None or i.scope == scope]
