"""Hourly: recompute the last two days' roll-ups (late readings from an outage are folded in)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.bootstrap import get_services

bp = Blueprint(__name__)


@bp.schedule("rate(1 hour)")
def roll_up_days(event: Any) -> dict[str, int]:
    services = get_services()
    return {"rows": services.rollups.run(services.clock.now())}
