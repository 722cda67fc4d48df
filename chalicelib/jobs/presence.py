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
    operator_ids = services.tenancy.operator_ids()
    lost = services.bridge_link.sweep_presence(operator_ids)
    if lost:
        LOG.warning("%d bridge(s) lost contact", lost)
    now, alarms = services.clock.now(), 0
    for operator_id in operator_ids:
        for site_id, heard in services.bridge_link.collectors_heard(operator_id).items():
            alarms += len(services.alarm_watch.sweep_collectors(operator_id, site_id, heard, now))
    return {"lost": lost, "alarm_events": alarms}
