"""The shop tenants' portal (issue 8.1–8.2), phone first, under ``/t/<operator>/``: sign-in, sign-up from an
invitation, password reset, their meters, one meter's usage and purchases, receipts, preferences. Plus the
operator's side of invitations (a link and a QR code per account)."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import quote, urlsplit

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.config import get_settings
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import AccountLocked, DomainError, PermissionDenied
from chalicelib.domain.history import chart
from chalicelib.domain.sessions import Session
from chalicelib.domain.tenancy import validate_code
from chalicelib.domain.tenants import TenantActor, invitation_path
from chalicelib.web.guards import page, signer
from chalicelib.web.http import FORM_TYPES, cookie_header, cookies, first, form_fields, query_params, redirect
from chalicelib.web.tenant_guards import TENANT_COOKIE, tenant_cookie, tenant_error, tenant_page
from chalicelib.web.views import render

LOG = logging.getLogger("voltvend.tenants")
bp = Blueprint(__name__)
NONCE_COOKIE = "vv_tenant_nonce"


def _home(operator_id: str) -> str:
    return f"/t/{quote(operator_id)}"


def _safe_next(operator_id: str, path: str | None) -> str:
    """Only back into this operator's tenant portal: never an open redirect."""
    home = _home(operator_id)
    return path if path and (path == home or path.startswith(home + "/")) and "//" not in path else home


def _form(template: str, operator_id: str, *, status: int = 200, **context: object) -> Response:
    """A form shown before sign-in: a nonce cookie and its signed twin in the form stand in for a session's CSRF
    token."""
    nonce = secrets.token_urlsafe(16)
    headers = {"Set-Cookie": cookie_header(NONCE_COOKIE, nonce, max_age=3600)}
    if isinstance(context.get("retry_after"), int):
        headers["Retry-After"] = str(context["retry_after"])
    fields = {"error": None, "login": "", "name": "", "sent": False, "next_path": _home(operator_id)} | context
    return render(template, status=status, headers=headers, operator_id=operator_id,
                  form_token=signer().login_csrf_token(nonce), **fields)


def _check_form(fields: dict[str, list[str]]) -> None:
    nonce = cookies(bp.current_request).get(NONCE_COOKIE, "")
    if not nonce or not signer().login_csrf_ok(first(fields, "form_token"), nonce):
        raise PermissionDenied("the form expired; please try again")


def _signed_in(session: Session, next_path: str) -> Response:
    ttl = get_settings().session_ttl_seconds
    return redirect(next_path, set_cookies=[tenant_cookie(session.operator_id, session.session_id, ttl),
                                            cookie_header(NONCE_COOKIE, "", max_age=0)])


# -- signing in -------------------------------------------------------------------------------------------------


@bp.route("/t/{operator_id}/login", methods=["GET"])
def login_page(operator_id: str) -> Response:
    try:
        validate_code(operator_id)
    except DomainError as error:
        return tenant_error(404, error.message, "")
    return _form("tenant_login.html", operator_id, next_path=_safe_next(operator_id,
                                                                          query_params(bp.current_request).get("next")))


@bp.route("/t/{operator_id}/login", methods=["POST"], content_types=FORM_TYPES)
def login_submit(operator_id: str) -> Response:
    fields: dict[str, list[str]] = {}
    try:
        fields = form_fields(bp.current_request)
        _check_form(fields)
        session = get_services().tenant_auth.login(operator_id, first(fields, "login"), first(fields, "password"))
    except DomainError as error:
        retry = error.retry_after if isinstance(error, AccountLocked) else None
        return _form("tenant_login.html", operator_id, status=error.status, error=error.message,
                     login=first(fields, "login"), next_path=_safe_next(operator_id, first(fields, "next")),
                     retry_after=retry)
    return _signed_in(session, _safe_next(operator_id, first(fields, "next")))


@bp.route("/t/{operator_id}/logout", methods=["POST"], content_types=FORM_TYPES)
@tenant_page(bp)
def logout(tenant: TenantActor, operator_id: str) -> Response:
    get_services().tenant_auth.logout(tenant)
    return redirect(f"{_home(operator_id)}/login", set_cookies=[cookie_header(TENANT_COOKIE, "", max_age=0)])


@bp.route("/t/{operator_id}/invite/{invitation_id}", methods=["GET"])
def invite_page(operator_id: str, invitation_id: str) -> Response:
    try:
        invitation = get_services().tenant_auth.invitation(operator_id, invitation_id)
    except DomainError as error:
        return tenant_error(error.status, error.message, operator_id)
    return _form("tenant_invite.html", operator_id, invitation=invitation)


@bp.route("/t/{operator_id}/invite/{invitation_id}", methods=["POST"], content_types=FORM_TYPES)
def invite_accept(operator_id: str, invitation_id: str) -> Response:
    fields: dict[str, list[str]] = {}
    try:
        fields = form_fields(bp.current_request)
        _check_form(fields)
        session = get_services().tenant_auth.accept(
            operator_id, invitation_id, login=first(fields, "login"), display_name=first(fields, "name"),
            password=first(fields, "password"))
    except DomainError as error:
        return _form("tenant_invite.html", operator_id, status=error.status, error=error.message,
                     invitation=None, login=first(fields, "login"), name=first(fields, "name"))
    return _signed_in(session, _home(operator_id))


@bp.route("/t/{operator_id}/forgot", methods=["GET"])
def forgot_page(operator_id: str) -> Response:
    return _form("tenant_forgot.html", operator_id)


@bp.route("/t/{operator_id}/forgot", methods=["POST"], content_types=FORM_TYPES)
def forgot_submit(operator_id: str) -> Response:
    try:
        fields = form_fields(bp.current_request)
        _check_form(fields)
        link = _reset_link(f"{_home(operator_id)}/reset/{{token}}")
        if link is None:
            LOG.error("no reset link sent: VOLTVEND_PUBLIC_URL is not set, and %r is no local host",
                      bp.current_request.headers.get("host"))
        else:
            get_services().tenant_auth.request_reset(operator_id, first(fields, "login"), link)
    except DomainError as error:
        return _form("tenant_forgot.html", operator_id, status=error.status, error=error.message)
    return _form("tenant_forgot.html", operator_id, sent=True)  # the same answer whether the log-in exists or not


@bp.route("/t/{operator_id}/reset/{token}", methods=["GET"])
def reset_page(operator_id: str, token: str) -> Response:
    return _form("tenant_reset.html", operator_id, token=token)


@bp.route("/t/{operator_id}/reset/{token}", methods=["POST"], content_types=FORM_TYPES)
def reset_submit(operator_id: str, token: str) -> Response:
    try:
        fields = form_fields(bp.current_request)
        _check_form(fields)
        session = get_services().tenant_auth.reset(operator_id, token, first(fields, "password"))
    except DomainError as error:
        return _form("tenant_reset.html", operator_id, status=error.status, error=error.message, token=token)
    return _signed_in(session, _home(operator_id))


# -- the tenant's pages -----------------------------------------------------------------------------------------


@bp.route("/t/{operator_id}", methods=["GET"])
@tenant_page(bp)
def home(tenant: TenantActor, operator_id: str) -> Response:
    return render("tenant_home.html", tenant=tenant, operator_id=operator_id,
                  meters=get_services().tenant_portal.meters(tenant))


@bp.route("/t/{operator_id}/meters/{meter_id}", methods=["GET"])
@tenant_page(bp)
def meter(tenant: TenantActor, operator_id: str, meter_id: str) -> Response:
    detail = get_services().tenant_portal.meter(tenant, meter_id)
    return render("tenant_meter.html", tenant=tenant, operator_id=operator_id, detail=detail,
                  chart=chart(detail.history, width=340, height=120))


@bp.route("/t/{operator_id}/meters/{meter_id}/receipts/{entry_id}", methods=["GET"])
@tenant_page(bp)
def receipt(tenant: TenantActor, operator_id: str, meter_id: str, entry_id: str) -> Response:
    found = get_services().tenant_portal.receipt(tenant, meter_id, entry_id)
    base = f"{_home(operator_id)}/meters/{meter_id}"
    return render("receipt.html", receipt=found, pdf_url=f"{base}/receipts/{entry_id}/pdf", back_url=base)


@bp.route("/t/{operator_id}/meters/{meter_id}/receipts/{entry_id}/pdf", methods=["GET"])
@tenant_page(bp)
def receipt_pdf(tenant: TenantActor, operator_id: str, meter_id: str, entry_id: str) -> Response:
    from chalicelib.adapters.receipt_pdf import render_receipt_pdf

    found = get_services().tenant_portal.receipt(tenant, meter_id, entry_id)
    return Response(body=render_receipt_pdf(found, tenant.language), status_code=200,
                    headers={"Content-Type": "application/pdf",
                             "Content-Disposition": f'inline; filename="{found.receipt_number}.pdf"'})


@bp.route("/t/{operator_id}/settings", methods=["GET"])
@tenant_page(bp)
def settings_page(tenant: TenantActor, operator_id: str) -> Response:
    return render("tenant_settings.html", tenant=tenant, operator_id=operator_id,
                  user=get_services().tenant_auth.tenant(tenant), saved=query_params(bp.current_request).get("saved"))


@bp.route("/t/{operator_id}/settings", methods=["POST"], content_types=FORM_TYPES)
@tenant_page(bp)
def settings_save(tenant: TenantActor, operator_id: str) -> Response:
    fields = form_fields(bp.current_request)
    get_services().tenant_auth.set_preferences(tenant, first(fields, "language"), first(fields, "sms_alerts") == "on")
    return redirect(f"{_home(operator_id)}/settings?saved=1")


# -- the operator's side: invitations ---------------------------------------------------------------------------


@bp.route("/sites/{site_id}/invitations", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.ACCOUNTS_MANAGE)
def invite(actor: Actor, site_id: str) -> Response:
    import segno

    account_id = first(form_fields(bp.current_request), "account_id")
    invitation = get_services().tenant_auth.invite(actor, site_id, account_id)
    link = _invitation_link(invitation_path(invitation))
    qr_svg = segno.make(link, error="m").svg_inline(scale=4, title="QR")
    return render("tenant_invitation.html", site_id=site_id, account_id=account_id, invitation=invitation,
                  link=link, qr_svg=qr_svg, sent_to=None)


@bp.route("/sites/{site_id}/invitations/{invitation_id}/sms", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.ACCOUNTS_MANAGE)
def invite_by_sms(actor: Actor, site_id: str, invitation_id: str) -> Response:
    import segno

    services = get_services()
    invitation = services.tenant_auth.invitation(actor.operator_id, invitation_id)
    link = _invitation_link(invitation_path(invitation))
    phone = services.tenant_auth.send_invitation(actor, site_id, invitation_id, link)
    return render("tenant_invitation.html", site_id=site_id, account_id=invitation.account_id, invitation=invitation,
                  link=link, qr_svg=segno.make(link, error="m").svg_inline(scale=4, title="QR"), sent_to=phone)


LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _reset_link(path: str) -> str | None:
    """The full address a reset message carries. Never this request's Host header, which whoever asks for the reset
    chooses (a forged one would send the victim's token to the forger's site): the configured public address; only
    without one, and only for a local host (a developer's machine), this request's host; otherwise none."""
    public = get_settings().public_url
    if public:
        return f"{public}{path}"
    try:
        host = urlsplit(f"//{bp.current_request.headers.get('host', 'localhost')}").hostname
    except ValueError:  # not even a host name
        return None
    return _invitation_link(path) if host in LOCAL_HOSTS else None


def _invitation_link(path: str) -> str:
    """The full address for a phone to open: this request's host (what the operator's browser reached us on)."""
    settings, host = get_settings(), bp.current_request.headers.get("host", "localhost")
    scheme = "https" if settings.cookie_secure else "http"
    return f"{scheme}://{host}{settings.base_path or ''}{path}"
