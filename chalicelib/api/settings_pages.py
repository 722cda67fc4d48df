"""System settings (SPEC 6–10): bulk import of meters from CSV or Excel, as a page and as a JSON route.

The import's modules load on the first request that needs them, not with every cold start of the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from chalice.app import Chalice, Request, Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict
from chalicelib.web.context import get_state
from chalicelib.web.guards import api, json_response, page
from chalicelib.web.http import query_params, redirect
from chalicelib.web.views import render

if TYPE_CHECKING:
    from chalicelib.domain.meter_import import ImportPlan
    from chalicelib.services.meter_import import Upload
    from chalicelib.web.uploads import MultipartForm

SHOWN_PROBLEMS = 500  # a page beyond this helps nobody; the count says how many more there are
CSV_TYPES = ["text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"]
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOAD_BINARY_TYPES = ("multipart/form-data", XLSX_CONTENT_TYPE)


class _SettingsBlueprint(Blueprint):
    """Registers the upload media types as binary: API Gateway then hands Lambda the exact bytes (base64),
    rather than a text body in which an .xlsx file would be corrupted."""

    def register(self, app: Chalice, options: dict[str, Any]) -> None:
        super().register(app, options)
        app.api.binary_types.extend(t for t in UPLOAD_BINARY_TYPES if t not in app.api.binary_types)


bp = _SettingsBlueprint(__name__)


def _upload(form: MultipartForm) -> Upload:
    from chalicelib.domain.meter_import import ImportRefused
    from chalicelib.services.meter_import import Upload

    chosen = form.files.get("file")
    if chosen is not None and chosen.data:
        return Upload(chosen.filename or "upload", chosen.data)
    staged = form.first("staged")
    if staged:  # the file checked a moment ago, carried back by the page so it need not be chosen again
        return Upload(form.first("staged_name") or "checked.csv", staged.encode("utf-8"))
    raise ImportRefused("no_file")


def _page(actor: Actor, site_id: str, *, status: int = 200, **context: Any) -> Response:
    from chalicelib.domain.meter_import import TEMPLATE_HEADERS, Column

    setup = get_services().meter_import.setup(actor, site_id)
    columns = [(c, TEMPLATE_HEADERS["en"][c], TEMPLATE_HEADERS["zh"][c]) for c in Column]
    defaults: dict[str, Any] = {"plan": None, "refusal": None, "error": None, "staged": None, "upload_name": "",
                                "attempted": False}
    return render("meter_import.html", status=status, setup=setup, columns=columns, shown=SHOWN_PROBLEMS,
                  **{**defaults, **context})


@bp.route("/sites/{site_id}/meters/import", methods=["GET"])
@page(bp, Permission.SETTINGS_MANAGE)
def import_form(actor: Actor, site_id: str) -> Response:
    return _page(actor, site_id)


@bp.route("/sites/{site_id}/meters/import/template.csv", methods=["GET"])
@page(bp, Permission.SETTINGS_MANAGE)
def import_template(actor: Actor, site_id: str) -> Response:
    body = get_services().meter_import.template(actor, site_id, get_state().locale)
    return Response(body=body, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": 'attachment; filename="meters-template.csv"'})


@bp.route("/sites/{site_id}/meters/import", methods=["POST"], content_types=["multipart/form-data"])
@page(bp, Permission.SETTINGS_MANAGE)
def import_upload(actor: Actor, site_id: str) -> Response:
    """``action=check`` shows the report and writes nothing; ``action=import`` checks again and imports."""
    from chalicelib.domain.meter_import import ImportInvalid, ImportRefused, ImportRolledBack
    from chalicelib.web.uploads import parse_multipart

    service = get_services().meter_import
    try:
        form = parse_multipart(bp.current_request)
        upload = _upload(form)
        if form.first("action") == "import":
            plan = service.run(actor, site_id, upload)
            return redirect(f"/sites/{site_id}?imported={len(plan.meters)}")
        plan = service.check(actor, site_id, upload)
    except ImportInvalid as invalid:
        return _page(actor, site_id, status=invalid.status, plan=invalid.plan, attempted=True)
    except ImportRefused as refused:
        return _page(actor, site_id, status=refused.status, refusal=refused.code)
    except (Conflict, ImportRolledBack) as error:
        return _page(actor, site_id, status=error.status, error=error.message)
    staged = plan.sheet.to_csv() if plan.ok else None
    return _page(actor, site_id, status=200 if plan.ok else 400, plan=plan, staged=staged,
                 upload_name=upload.filename)


def _report(site_id: str, plan: ImportPlan) -> dict[str, Any]:
    return {"site_id": site_id, "rows": plan.rows, "valid": plan.ok, "meters": len(plan.meters),
            "units_to_create": len(plan.units), "problems_total": len(plan.problems),
            "problems": [p.as_json() for p in plan.problems[:SHOWN_PROBLEMS * 2]]}


def _body(request: Request) -> bytes:
    raw = request.raw_body or b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


@bp.route("/api/v1/sites/{site_id}/meters/import", methods=["POST"],
          content_types=[*CSV_TYPES, XLSX_CONTENT_TYPE, "application/octet-stream"])
@api(bp, Permission.SETTINGS_MANAGE)
def import_api(actor: Actor, site_id: str) -> Response:
    """The file is the body (CSV as UTF-8 or GB 18030, or .xlsx). ``?check=1`` answers the report and writes
    nothing; otherwise 201 with the count imported, or 400 with the report and nothing imported."""
    from chalicelib.domain.meter_import import ImportInvalid
    from chalicelib.services.meter_import import Upload

    request = bp.current_request
    params = query_params(request)
    upload = Upload(params.get("filename", "upload")[:120], _body(request))
    service = get_services().meter_import
    if params.get("check", "").lower() in ("1", "true", "yes"):
        return json_response(_report(site_id, service.check(actor, site_id, upload)))
    try:
        plan = service.run(actor, site_id, upload)
    except ImportInvalid as invalid:
        return json_response({"error": invalid.message, **_report(site_id, invalid.plan)}, status=invalid.status)
    return json_response({"site_id": site_id, "imported": len(plan.meters), "units_created": len(plan.units)},
                         status=201)
