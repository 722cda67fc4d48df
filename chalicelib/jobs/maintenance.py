"""Housekeeping schedules."""

from __future__ import annotations

import logging
from typing import Any

from chalice import Blueprint

from chalicelib.bootstrap import get_services

bp = Blueprint(__name__)
LOG = logging.getLogger("voltvend.jobs")


@bp.schedule("rate(15 minutes)")
def sweep_expired_sessions(event: Any) -> dict[str, int]:
    """Delete expired sessions: DynamoDB Local never sweeps TTL, and AWS may take days to."""
    services = get_services()
    removed = services.auth.sweep_expired_sessions(services.tenancy.operator_ids())
    LOG.info("swept %d expired sessions", removed)
    return {"removed": removed}
