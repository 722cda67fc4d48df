"""The live status board of a site (SPEC 15.1, 15.5): the page, the JSON its script refreshes from, the Excel export.

All three take the same query parameters (building, floor, state, q, and page for the first two) and answer a
bad value with a 400 that says what is allowed. The board's modules load on its first request, not with every cold
start of the API (Lambda compiles them afresh each time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.meter_state import ControlMode
from chalicelib.domain.money import format_amount
from chalicelib.web.context import get_state
from chalicelib.web.guards import api, json_response, page
from chalicelib.web.http import query_params, url
from chalicelib.web.rendering import render_html
from chalicelib.web.views import render

if TYPE_CHECKING:
    from chalicelib.domain.board import BoardFilter, BoardRow
    from chalicelib.services.status_board import StatusBoard

bp = Blueprint(__name__)
MODE_NAMES = {ControlMode.PREPAID: "prepaid", ControlMode.KEEP_POWER: "keep-power",
              ControlMode.FORCED_TRIP: "forced-trip"}


def _board() -> StatusBoard:
    # Built per request over the composition root's tenancy repository (which binds the models the reads use): it
    # holds nothing else.
    from chalicelib.adapters.dynamodb.board_reads import DynamoBoardReads
    from chalicelib.services.status_board import StatusBoard

    return StatusBoard(get_services().tenancy, DynamoBoardReads())


@lru_cache(maxsize=4)
def board_words(locale: str) -> dict[str, Any]:
    """Labels in the reader's language, from one template shared by the page, its script and the export."""
    return dict(json.loads(render_html("board_words.html", {}, locale)))


def _params() -> Mapping[str, str]:
    return query_params(bp.current_request)


def _link(path: str, flt: BoardFilter) -> Callable[..., str]:
    """Links that keep the current filter but change some of it; any change but the page's goes back to page 1."""

    def link(**changes: str | int) -> str:
        params = flt.params()
        params.pop("page", None)
        for name, value in changes.items():
            if value in ("", 1):
                params.pop(name, None)
            else:
                params[name] = str(value)
        return url(path) + (f"?{urlencode(params)}" if params else "")

    return link


@bp.route("/sites/{site_id}/board", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def board_page(actor: Actor, site_id: str) -> Response:
    from chalicelib.domain.board import BoardState

    board = _board().board(actor, site_id, _params())
    flt = board.view.filter
    return render("board.html", board=board, states=list(BoardState), words=board_words(get_state().locale),
                  mode_names=MODE_NAMES, link=_link(f"/sites/{site_id}/board", flt),
                  export_url=_link(f"/sites/{site_id}/board.xlsx", flt)(),
                  api_url=url(f"/api/v1/sites/{site_id}/board"))


def row_json(row: BoardRow) -> dict[str, Any]:
    return {"meter_id": row.meter_id, "serial": row.serial, "building_id": row.building_id,
            "building": row.building, "floor": row.floor, "unit": row.unit, "billing_mode": row.billing_mode.value,
            "state": row.state.value,
            "remaining": None if row.remaining_minor is None else format_amount(row.remaining_minor),
            "relay": None if row.relay_open is None else ("open" if row.relay_open else "closed"),
            "mode": None if row.mode is None else MODE_NAMES[row.mode],
            "alarms": [a.value for a in row.alarms],
            "read_at": row.read_at.isoformat() if row.read_at else None}


@bp.route("/api/v1/sites/{site_id}/board", methods=["GET"])
@api(bp, Permission.METERS_VIEW)
def board_json(actor: Actor, site_id: str) -> Response:
    view = _board().board(actor, site_id, _params()).view
    return json_response({"site_id": site_id, "filter": view.filter.params(), "page": view.page,
                          "pages": view.pages, "matched": view.matched, "total": view.total,
                          "counts": {state.value: n for state, n in view.counts.items()},
                          "rows": [row_json(r) for r in view.rows]})


def export_table(rows: list[BoardRow], words: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The export's header and cells: amounts as numbers with two decimals, times as UTC wall-clock times."""
    column = words["column"]
    headers = [column[k] for k in ("building", "floor", "unit", "serial", "meter_id", "remaining", "relay", "mode",
                                   "alarms", "read_at", "state")]
    cells = [[r.building, r.floor, r.unit, r.serial, r.meter_id,
              None if r.remaining_minor is None else Decimal(format_amount(r.remaining_minor)),
              None if r.relay_open is None else words["relay"]["open" if r.relay_open else "closed"],
              None if r.mode is None else words["mode"][MODE_NAMES[r.mode]],
              ", ".join(words["alarm"].get(a.value, a.value) for a in r.alarms) or None,
              r.read_at, words["state"][r.state.value]] for r in rows]
    return headers, cells


@bp.route("/sites/{site_id}/board.xlsx", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def board_export(actor: Actor, site_id: str) -> Response:
    from chalicelib.adapters.xlsx_export import XLSX_TYPE, xlsx_bytes  # xlsxwriter loads on the first export only

    export = _board().export(actor, site_id, _params())
    words = board_words(get_state().locale)
    headers, cells = export_table(export.rows, words)
    stamp = get_services().clock.now().strftime("%Y%m%d-%H%M")
    return Response(body=xlsx_bytes(words["sheet"], headers, cells), status_code=200,
                    headers={"Content-Type": XLSX_TYPE, "Cache-Control": "no-store",
                             "Content-Disposition": f'attachment; filename="board-{site_id}-{stamp}.xlsx"'})
