"""The operation log page (SPEC 4)."""

from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.web.guards import page
from chalicelib.web.http import query_params
from chalicelib.web.views import render

bp = Blueprint(__name__)


@bp.route("/oplog", methods=["GET"])
@page(bp, Permission.OPLOG_VIEW)
def oplog(actor: Actor) -> Response:
    params = query_params(bp.current_request)
    month, records, cursor = get_services().oplog.page(actor, params.get("month"), params.get("after"))
    return render("oplog.html", month=month, records=records, next_cursor=cursor)
