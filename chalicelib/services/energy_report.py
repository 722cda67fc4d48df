"""Energy analysis over a date range by building, floor, unit or meter, from the daily roll-ups only."""

from __future__ import annotations

import re
from datetime import date

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.daily import DayFigures
from chalicelib.domain.errors import ValidationError
from chalicelib.ports import RollupRepository, TenancyRepository
from chalicelib.services.scoping import site_in_scope

SCOPE = re.compile(r"^(building|floor|unit|meter):[A-Za-z0-9_/.-]{1,80}$")
LONGEST_RANGE_DAYS = 366


class EnergyReport:
    def __init__(self, rollups: RollupRepository, tenancy: TenancyRepository) -> None:
        self._rollups = rollups
        self._tenancy = tenancy

    def days(self, actor: Actor, site_id: str, first: str, last: str,
             scope: str) -> list[tuple[str, str, DayFigures]]:
        actor.require(Permission.REPORTS_VIEW)
        site_in_scope(self._tenancy, actor, site_id)
        start, end = _date(first, "from"), _date(last, "to")
        if end < start or (end - start).days > LONGEST_RANGE_DAYS:
            raise ValidationError(f"the range must run forwards and span at most {LONGEST_RANGE_DAYS} days",
                                  field="to")
        if not SCOPE.match(scope):
            raise ValidationError("scope: building:<id>, floor:<building>/<floor>, unit:<id> or meter:<id>",
                                  field="scope")
        return self._rollups.days(actor.operator_id, site_id, start.isoformat(), end.isoformat(), scope)


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field}: a date like 2026-11-23", field=field) from None
