"""Presence: bridges that went quiet are marked lost contact (feeds the lost-contact reports)."""

from __future__ import annotations

import logging
from typing import Any

from chalice import Blueprint

from chalicelib.bootstrap import get_services

bp = Blueprint(__name__)
LOG = logging.getLogger("voltvend.jobs.presence")


@bp.schedule("rate(1 minute)")
def sweep_bridge_presence(event: Any) -> dict[str, int]:
    services = get_services()
    lost = services.bridge_link.sweep_presence(services.tenancy.operator_ids())
    if lost:
        LOG.warning("%d bridge(s) lost contact", lost)
    return {"lost": lost}
