"""Log-in, log-out, change own password and language switch (SPEC 1 and 5)."""

from __future__ import annotations

import secrets

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.config import get_settings
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import AccountLocked, DomainError, PermissionDenied, ValidationError
from chalicelib.web.context import get_state
from chalicelib.web.guards import LANG_COOKIE, SESSION_COOKIE, page, signer
from chalicelib.web.http import (
    FORM_TYPES,
    client_ip,
    cookie_header,
    cookies,
    first,
    form_fields,
    query_params,
    redirect,
    safe_next,
)
from chalicelib.web.rendering import LOCALES
from chalicelib.web.views import render

bp = Blueprint(__name__)
LOGIN_NONCE_COOKIE = "vv_login_nonce"


@bp.route("/")
def home() -> Response:
    return redirect("/dashboard" if get_state().actor else "/login")


def _login_form(status: int = 200, *, error: str | None = None, company: str = "", username: str = "",
                next_path: str = "/dashboard", retry_after: int | None = None) -> Response:
    nonce = secrets.token_urlsafe(16)
    headers = {"Set-Cookie": cookie_header(LOGIN_NONCE_COOKIE, nonce, max_age=3600)}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return render("login.html", status=status, headers=headers, error=error, company=company,
                  username=username, next_path=next_path, login_csrf=signer().login_csrf_token(nonce))


@bp.route("/login", methods=["GET"])
def login_page() -> Response:
    params = query_params(bp.current_request)
    company = cookies(bp.current_request).get("vv_company", "")
    return _login_form(company=company, next_path=safe_next(params.get("next")))


@bp.route("/login", methods=["POST"], content_types=FORM_TYPES)
def login_submit() -> Response:
    request = bp.current_request
    try:
        fields = form_fields(request)
    except DomainError as error:
        return _login_form(error.status, error=error.message)
    company, username = first(fields, "company"), first(fields, "username")
    next_path = safe_next(first(fields, "next"))
    try:
        nonce = cookies(request).get(LOGIN_NONCE_COOKIE, "")
        if not nonce or not signer().login_csrf_ok(first(fields, "login_csrf"), nonce):
            raise PermissionDenied("the log-in form expired; please try again")
        session = get_services().auth.login(company, username, first(fields, "password"),
                                            source_ip=client_ip(request))
    except DomainError as error:
        retry = error.retry_after if isinstance(error, AccountLocked) else None
        return _login_form(error.status, error=error.message, company=company, username=username,
                           next_path=next_path, retry_after=retry)
    token = signer().session_token(session.operator_id, session.session_id)
    ttl = get_settings().session_ttl_seconds
    return redirect(next_path, set_cookies=[
        cookie_header(SESSION_COOKIE, token, max_age=ttl),
        cookie_header("vv_company", session.operator_id, max_age=365 * 86400),
        cookie_header(LOGIN_NONCE_COOKIE, "", max_age=0),
    ])


@bp.route("/logout", methods=["POST"], content_types=FORM_TYPES)
@page(bp)
def logout(actor: Actor) -> Response:
    get_services().auth.logout(actor)
    return redirect("/login", set_cookies=[cookie_header(SESSION_COOKIE, "", max_age=0)])


@bp.route("/account/password", methods=["GET"])
@page(bp, password_change_page=True)
def password_page(actor: Actor) -> Response:
    return render("password.html", error=None, done=False)


@bp.route("/account/password", methods=["POST"], content_types=FORM_TYPES)
@page(bp, password_change_page=True)
def password_submit(actor: Actor) -> Response:
    fields = form_fields(bp.current_request)
    new, repeat = first(fields, "new_password"), first(fields, "repeat_password")
    try:
        if new != repeat:
            raise ValidationError("the two new passwords differ", field="repeat_password")
        get_services().auth.change_password(actor, first(fields, "current_password"), new)
    except DomainError as error:
        return render("password.html", status=error.status, error=error.message, done=False)
    return redirect("/dashboard")


@bp.route("/lang/{code}", methods=["GET"])
def switch_language(code: str) -> Response:
    params = query_params(bp.current_request)
    back = safe_next(params.get("next"))
    if code not in LOCALES:
        return redirect(back)
    return redirect(back, set_cookies=[cookie_header(LANG_COOKIE, code, max_age=365 * 86400)])
