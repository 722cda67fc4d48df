"""Home dashboard and the site pages of system settings (SPEC 6–9, read side)."""

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


@bp.route("/dashboard", methods=["GET"])
@page(bp)
def dashboard(actor: Actor) -> Response:
    services = get_services()
    sites = services.sites.sites(actor) if actor.can(Permission.METERS_VIEW) else []
    operator = services.tenancy.get_operator(actor.operator_id)
    return render("dashboard.html", sites=sites, operator=operator)


@bp.route("/sites/{site_id}", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def site_detail(actor: Actor, site_id: str) -> Response:
    overview = get_services().sites.overview(actor, site_id)
    return render("site.html", overview=overview)


@bp.route("/sites/{site_id}/read-now", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.METERS_CONTROL)
def read_now(actor: Actor, site_id: str) -> Response:
    get_services().site_control.read_now(actor, site_id)
    return redirect(f"/sites/{site_id}?reading=1")
