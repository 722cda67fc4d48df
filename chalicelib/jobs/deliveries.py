"""Credit delivery sweep: pending deliveries go out, unanswered sends are settled by reading the count back."""

from __future__ import annotations

import logging
from typing import Any

from chalice import Blueprint

from chalicelib.bootstrap import get_services

bp = Blueprint(__name__)
LOG = logging.getLogger("voltvend.jobs.deliveries")


@bp.schedule("rate(1 minute)")
def sweep_credit_deliveries(event: Any) -> dict[str, int]:
    services = get_services()
    totals: dict[str, int] = {}
    for operator_id in services.tenancy.operator_ids():
        for outcome, count in services.credit_delivery.sweep(operator_id).items():
            totals[outcome] = totals.get(outcome, 0) + count
    if totals.get("blocked"):
        LOG.error("%d meter(s) have deliveries stopped for a person to resolve", totals["blocked"])
    return totals
