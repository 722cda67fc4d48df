"""Resolving the caller once per request, and the decorators every route goes through.

``page`` and ``api`` check the session, permission and CSRF token, and turn domain errors into a
clear 4xx page or JSON body; anything unexpected becomes a plain 500 without a traceback.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from chalice.app import Request, Response

from chalicelib.config import get_settings
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import AccountLocked, DomainError, PermissionDenied
from chalicelib.web.context import RequestState, get_state, set_state
from chalicelib.web.http import client_ip, cookies, first, form_fields, login_redirect, redirect
from chalicelib.web.rendering import pick_locale
from chalicelib.web.tokens import TokenSigner

LOG = logging.getLogger("voltvend.web")
SESSION_COOKIE = "vv_session"
LANG_COOKIE = "vv_lang"
View = Callable[..., Response]


@lru_cache(maxsize=1)
def signer() -> TokenSigner:
    settings = get_settings()
    return TokenSigner(settings.session_secret, settings.session_ttl_seconds)


def resolve_request(request: Request) -> RequestState:
    """Who is calling (session cookie or bearer token) and in which language."""
    jar = cookies(request)
    locale = pick_locale(jar.get(LANG_COOKIE), request.headers.get("accept-language"))
    auth_header = request.headers.get("authorization", "")
    via_bearer = auth_header.lower().startswith("bearer ")
    token = auth_header[7:].strip() if via_bearer else jar.get(SESSION_COOKIE)
    actor = _actor_from_token(token, client_ip(request)) if token else None
    return RequestState(actor=actor, locale=locale, via_bearer=via_bearer, path=request.path)


def _actor_from_token(token: str, source_ip: str) -> Actor | None:
    parsed = signer().read_session_token(token)
    if parsed is None:
        return None
    from chalicelib.bootstrap import get_services

    return get_services().auth.resolve(parsed[0], parsed[1], source_ip=source_ip)


def request_middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
    set_state(resolve_request(request))
    try:
        return get_response(request)
    finally:
        set_state(None)


def _csrf_ok(request: Request, actor: Actor) -> bool:
    sent = request.headers.get("x-csrf-token") or ""
    content_type = request.headers.get("content-type", "")
    if not sent and content_type.startswith("application/x-www-form-urlencoded"):
        sent = first(form_fields(request), "csrf_token")
    elif not sent and content_type.startswith("multipart/form-data"):  # file uploads
        from chalicelib.web.uploads import multipart_field

        sent = multipart_field(request, "csrf_token")
    return hmac.compare_digest(sent.encode(), actor.csrf_token.encode())


def page(app: Any, permission: Permission | None = None, *,
         password_change_page: bool = False) -> Callable[[View], View]:
    """Wrap an HTML route: log-in required, permission, CSRF on writes, errors as pages."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            request = app.current_request
            actor = get_state().actor
            if actor is None:
                return login_redirect(request.path if request.method == "GET" else "/dashboard")
            if actor.must_change_password and not password_change_page:
                return redirect("/account/password")
            try:
                if request.method != "GET" and not _csrf_ok(request, actor):
                    raise PermissionDenied("the form expired or came from elsewhere; reload and try again")
                if permission is not None:
                    actor.require(permission)
                _site_first(request.method, actor, kwargs)
                return view(actor, **kwargs)
            except DomainError as error:
                return error_page(error)
            except Exception:
                LOG.exception("unhandled error on %s %s", request.method, request.path)
                return error_page(None)

        return wrapper

    return decorate


def api(app: Any, permission: Permission | None = None) -> Callable[[View], View]:
    """Wrap a JSON route: bearer or cookie session, permission, CSRF for cookie writes, JSON errors."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            request = app.current_request
            state = get_state()
            if state.actor is None:
                return json_error(401, "authentication required")
            try:
                if request.method != "GET" and not state.via_bearer and not _csrf_ok(request, state.actor):
                    raise PermissionDenied("missing or wrong X-CSRF-Token header")
                if permission is not None:
                    state.actor.require(permission)
                _site_first(request.method, state.actor, kwargs)
                return view(state.actor, **kwargs)
            except DomainError as error:
                return domain_error_json(error)
            except Exception:
                LOG.exception("unhandled error on %s %s", request.method, request.path)
                return json_error(500, "internal error; it has been logged")

        return wrapper

    return decorate


def _site_first(method: str, actor: Actor, kwargs: dict[str, Any]) -> None:
    """A write to a site is judged against the caller's sites before its form or body: another operator's site must
    answer "not found" whatever was sent, never a validation error about the fields."""
    if method != "GET" and "site_id" in kwargs:
        from chalicelib.bootstrap import get_services
        from chalicelib.services.scoping import site_in_scope

        site_in_scope(get_services().tenancy, actor, kwargs["site_id"])


def json_response(body: Any, status: int = 200, headers: dict[str, Any] | None = None) -> Response:
    all_headers = {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})}
    return Response(body=json.dumps(body, default=str, ensure_ascii=False), status_code=status, headers=all_headers)


def json_error(status: int, message: str, **extra: Any) -> Response:
    return json_response({"error": message, **extra}, status=status)


def domain_error_json(error: DomainError) -> Response:
    extra: dict[str, Any] = {"field": error.field} if error.field else {}
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, AccountLocked) else None
    response = json_error(error.status, error.message, **extra)
    if headers:
        response.headers.update(headers)
    return response


def error_page(error: DomainError | None) -> Response:
    from chalicelib.web.views import render

    status = error.status if error is not None else 500
    message = error.message if error is not None else None
    return render("error.html", status=status, status_code=status, message=message)
