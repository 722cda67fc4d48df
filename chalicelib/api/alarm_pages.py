"""Alarm report, alarm history, acknowledgement and the SMS outbox of a site."""

from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.web.guards import page
from chalicelib.web.http import FORM_TYPES, redirect
from chalicelib.web.views import render

bp = Blueprint(__name__)


@bp.route("/sites/{site_id}/alarms", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def alarms(actor: Actor, site_id: str) -> Response:
    return render("alarms.html", report=get_services().alarm_queries.report(actor, site_id))


@bp.route("/sites/{site_id}/alarms/{alarm_id}/acknowledge", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.METERS_VIEW)
def acknowledge(actor: Actor, site_id: str, alarm_id: str) -> Response:
    get_services().alarm_queries.acknowledge(actor, site_id, alarm_id)
    return redirect(f"/sites/{site_id}/alarms")
