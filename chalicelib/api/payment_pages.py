"""Card payments in the portal (issue 8.3–8.5): the tenant's top-up, the local stand-in's card page, and the
operator's payments list and payment settings (pages and JSON)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import DomainError
from chalicelib.domain.ledger import new_request_token
from chalicelib.domain.money import format_amount
from chalicelib.domain.tenants import TenantActor
from chalicelib.web.guards import api, json_response, page
from chalicelib.web.http import FORM_TYPES, first, form_fields, query_params
from chalicelib.web.tenant_guards import tenant_page
from chalicelib.web.views import render

if TYPE_CHECKING:
    from chalicelib.services.payments import PaymentLine

bp = Blueprint(__name__)
REFRESH_S = 2  # the top-up's status page looks again this often until the credit is in


def _away(location: str) -> Response:
    """303 to an absolute address (the processor's checkout or onboarding): ``redirect`` is for our own paths."""
    return Response(body="", status_code=303, headers={"Location": location, "Cache-Control": "no-store"})


# -- the tenant's top-up ----------------------------------------------------------------------------------------------


def _top_up_page(tenant: TenantActor, operator_id: str, meter_id: str, *, status: int = 200, error: str | None = None,
                 amount: str = "") -> Response:
    form = get_services().payments.top_up_form(tenant, meter_id)
    cancelled = query_params(bp.current_request).get("cancelled") == "1"
    return render("tenant_top_up.html", status=status, tenant=tenant, operator_id=operator_id, form=form,
                  error=error, amount=amount, cancelled=cancelled, request_id=new_request_token())


@bp.route("/t/{operator_id}/meters/{meter_id}/top-up", methods=["GET"])
@tenant_page(bp)
def top_up_form(tenant: TenantActor, operator_id: str, meter_id: str) -> Response:
    return _top_up_page(tenant, operator_id, meter_id)


@bp.route("/t/{operator_id}/meters/{meter_id}/top-up", methods=["POST"], content_types=FORM_TYPES)
@tenant_page(bp)
def top_up_start(tenant: TenantActor, operator_id: str, meter_id: str) -> Response:
    fields = form_fields(bp.current_request)
    amount = first(fields, "quick") or first(fields, "amount")  # a one-tap amount button, else the typed amount
    try:
        url = get_services().payments.start_top_up(tenant, meter_id, amount, request_id=first(fields, "request_id"))
    except DomainError as error:
        if error.status == 404:
            raise
        return _top_up_page(tenant, operator_id, meter_id, status=error.status, error=error.message, amount=amount)
    return _away(url)


@bp.route("/t/{operator_id}/meters/{meter_id}/top-up/done", methods=["GET"])
@tenant_page(bp)
def top_up_done(tenant: TenantActor, operator_id: str, meter_id: str) -> Response:
    after = query_params(bp.current_request).get("after", "")
    found = get_services().payments.top_up_status(tenant, meter_id, after=int(after) if after.isdigit() else 0)
    headers = None if found.settled else {"Refresh": str(REFRESH_S)}
    return render("tenant_top_up_done.html", headers=headers, tenant=tenant, operator_id=operator_id, top_up=found,
                  refresh_s=REFRESH_S)


# -- the local stand-in's card page (no Stripe keys) ----------------------------------------------------------------
# Like Stripe's hosted page it needs no sign-in: the session id in the address is what opens it.


def _pay_page(session_id: str, *, status: int = 200, message: str | None = None) -> Response:
    session, operator_name = get_services().payments.local_session(session_id)
    return render("pay_local.html", status=status, session=session, operator_name=operator_name, message=message,
                  headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@bp.route("/pay/local/{session_id}", methods=["GET"])
def pay_local(session_id: str) -> Response:
    return _guarded(lambda: _pay_page(session_id))


@bp.route("/pay/local/{session_id}", methods=["POST"], content_types=FORM_TYPES)
def pay_local_submit(session_id: str) -> Response:
    def pay() -> Response:
        fields = form_fields(bp.current_request)
        paid = get_services().payments.local_pay(session_id, first(fields, "card_number"))
        if paid.paid:
            return _away(paid.redirect_url)
        return _pay_page(session_id, status=402, message=paid.message)

    return _guarded(pay)


def _guarded(view: Any) -> Response:
    from chalicelib.web.guards import error_page

    try:
        response: Response = view()
    except DomainError as error:
        return error_page(error)
    return response


# -- the operator's side ----------------------------------------------------------------------------------------------


def _month() -> str:
    return query_params(bp.current_request).get("month") or datetime.now(UTC).strftime("%Y-%m")


@bp.route("/sites/{site_id}/payments", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def payments_page(actor: Actor, site_id: str) -> Response:
    services, month = get_services(), _month()
    lines = services.payments.site_payments(actor, site_id, month)
    site = services.tenancy.get_site(actor.operator_id, site_id)
    return render("payments.html", site=site, site_id=site_id, month=month, lines=lines)


@bp.route("/settings/payments", methods=["GET"])
@page(bp)
def payment_settings(actor: Actor) -> Response:
    view = get_services().payments.settings_view(actor)
    onboarding = query_params(bp.current_request).get("onboarding")  # only our two words are shown, never URL text
    return render("payment_settings.html", view=view, onboarding=onboarding if onboarding in ("done", "again") else "")


@bp.route("/settings/payments/onboarding", methods=["POST"], content_types=FORM_TYPES)
@page(bp)
def payment_onboarding(actor: Actor) -> Response:
    return _away(get_services().payments.start_onboarding(actor))


def _line(line: PaymentLine) -> dict[str, Any]:
    return {"at": line.at.isoformat(), "channel": line.channel, "status": line.status, "meter_id": line.meter_id,
            "account_id": line.account_id, "amount": format_amount(line.amount_minor), "currency": line.currency,
            "payer": line.payer, "detail": line.detail, "entry_id": line.entry_id, "payment_intent": line.intent_id}


@bp.route("/api/v1/sites/{site_id}/payments", methods=["GET"])
@api(bp)
def payments_json(actor: Actor, site_id: str) -> Response:
    month = _month()
    lines = get_services().payments.site_payments(actor, site_id, month)
    return json_response({"site_id": site_id, "month": month, "payments": [_line(line) for line in lines]})


@bp.route("/api/v1/settings/payments", methods=["GET"])
@api(bp)
def payment_settings_json(actor: Actor) -> Response:
    view = get_services().payments.settings_view(actor)
    settings = view.settings
    return json_response({"processor": "local" if view.offline else "stripe",
                          "connected_account": settings.connected_account if settings else None,
                          "updated_at": settings.updated_at.isoformat() if settings else None})


@bp.route("/api/v1/settings/payments/onboarding", methods=["POST"])
@api(bp)
def payment_onboarding_json(actor: Actor) -> Response:
    services = get_services()
    url = services.payments.start_onboarding(actor)
    settings = services.payments.settings_view(actor).settings
    return json_response({"url": url, "connected_account": settings.connected_account if settings else None},
                         status=201)
