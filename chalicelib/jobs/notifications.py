"""Every minute: send the SMS that are due."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.bootstrap import get_services

bp = Blueprint(__name__)


@bp.schedule("rate(1 minute)")
def send_due_sms(event: Any) -> dict[str, int]:
    services = get_services()
    return {"sent": services.notifier.send_due(services.tenancy.operator_ids())}
