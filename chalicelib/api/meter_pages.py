"""One meter's page (history, chart, export, remote control) and batch remote operations with live progress
(SPEC 15.2–15.4, 16): pages, and the JSON the progress page polls."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.errors import DomainError, ValidationError
from chalicelib.domain.history import EXPORT_COLUMNS, chart, export_row
from chalicelib.domain.remote_ops import Operation, parse_operation
from chalicelib.web.guards import api, json_response, page
from chalicelib.web.http import FORM_TYPES, first, form_fields, json_object, query_params, redirect, string_list
from chalicelib.web.views import render

bp = Blueprint(__name__)


# -- one meter -------------------------------------------------------------------------------------------------


@bp.route("/sites/{site_id}/meters/{meter_id}", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def meter(actor: Actor, site_id: str, meter_id: str) -> Response:
    view = get_services().meter_pages.view(actor, site_id, meter_id, query_params(bp.current_request).get("days",
                                                                                                            "30"))
    return render("meter.html", site_id=site_id, view=view, chart=chart(view.history), operations=list(Operation))


@bp.route("/sites/{site_id}/meters/{meter_id}/readings.xlsx", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def readings_export(actor: Actor, site_id: str, meter_id: str) -> Response:
    from chalicelib.adapters.xlsx_export import XLSX_TYPE, xlsx_bytes

    days = query_params(bp.current_request).get("days", "30")
    found, rows = get_services().meter_pages.readings(actor, site_id, meter_id, days)
    body = xlsx_bytes(found.serial, ("time", *EXPORT_COLUMNS), (export_row(at, values) for at, values in rows))
    return Response(body=body, status_code=200, headers={
        "Content-Type": XLSX_TYPE, "Content-Disposition": f'attachment; filename="{found.serial}-{days}d.xlsx"'})


# -- batches (one meter's control is a batch of one) --------------------------------------------------------------


def _meters_page(actor: Actor, site_id: str, *, error: str | None = None, status: int = 200) -> Response:
    overview = get_services().sites.overview(actor, site_id)
    params = query_params(bp.current_request)
    building, state = params.get("building", ""), params.get("state", "")
    rows = [row for row in overview.rows
            if (not building or (row.unit is not None and row.unit.building_id == building))
            and (not state or row.condition.value == state)]
    return render("control.html", status=status, overview=overview, rows=rows, building=building, state=state,
                  operations=list(Operation), error=error)


@bp.route("/sites/{site_id}/control", methods=["GET"])
@page(bp, Permission.METERS_CONTROL)
def control(actor: Actor, site_id: str) -> Response:
    return _meters_page(actor, site_id)


@bp.route("/sites/{site_id}/control", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.METERS_CONTROL)
def control_run(actor: Actor, site_id: str) -> Response:
    """First post: show what will change and ask to confirm. Second (confirmed): send, then show progress."""
    fields = form_fields(bp.current_request)
    meter_ids = fields.get("meters", [])
    try:
        operation = parse_operation(first(fields, "operation"))
        if not meter_ids:
            raise ValidationError("choose at least one meter", field="meters")
        if first(fields, "confirmed") != "yes":
            meters = get_services().tenancy.get_meters(actor.operator_id, site_id, meter_ids)
            return render("control_confirm.html", site_id=site_id, operation=operation, meters=meters,
                          back=first(fields, "back") or f"/sites/{site_id}/control")
        outcome = get_services().meter_control.run(actor, site_id, meter_ids, operation)
    except DomainError as error:
        return _meters_page(actor, site_id, error=error.message, status=error.status)
    if not outcome.records:
        reasons = "; ".join(f"{meter}: {why}" for meter, why in outcome.skipped.items())
        return _meters_page(actor, site_id, error=f"nothing was sent ({reasons})", status=409)
    return redirect(f"/sites/{site_id}/control/{outcome.batch_id}")


@bp.route("/sites/{site_id}/control/{batch_id}", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def batch(actor: Actor, site_id: str, batch_id: str) -> Response:
    records = get_services().meter_control.batch(actor, site_id, batch_id)
    return render("batch.html", site_id=site_id, batch_id=batch_id, records=records, summary=_summary(records))


@bp.route("/sites/{site_id}/control/{batch_id}/retry", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.METERS_CONTROL)
def batch_retry(actor: Actor, site_id: str, batch_id: str) -> Response:
    outcome = get_services().meter_control.retry_failed(actor, site_id, batch_id)
    return redirect(f"/sites/{site_id}/control/{outcome.batch_id}")


def _record(record: CommandRecord) -> dict[str, Any]:
    return {"command_id": record.command_id, "meter_id": record.meter_id, "kind": record.kind,
            "status": record.status, "detail": record.detail, "updated_at": record.updated_at.isoformat()}


def _summary(records: list[CommandRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    return counts


@bp.route("/api/v1/sites/{site_id}/batches/{batch_id}", methods=["GET"])
@api(bp)
def batch_json(actor: Actor, site_id: str, batch_id: str) -> Response:
    records = get_services().meter_control.batch(actor, site_id, batch_id)
    done = all(r.status in ("delivered", "failed") for r in records)
    return json_response({"batch_id": batch_id, "done": done, "summary": _summary(records),
                          "commands": [_record(r) for r in records]})


@bp.route("/api/v1/sites/{site_id}/batches", methods=["POST"])
@api(bp)
def batch_create(actor: Actor, site_id: str) -> Response:
    body = json_object(bp.current_request)
    outcome = get_services().meter_control.run(actor, site_id, string_list(body, "meters"),
                                               parse_operation(str(body.get("operation", ""))))
    return json_response({"batch_id": outcome.batch_id, "commands": [_record(r) for r in outcome.records],
                          "skipped": outcome.skipped}, status=201)
