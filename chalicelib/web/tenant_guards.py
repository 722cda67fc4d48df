"""The tenant portal's guard: its own session cookie (never the staff one), the operator from the path checked
against the session's, CSRF on writes, the tenant's language, errors as pages."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from chalice.app import Request, Response

from chalicelib.domain.errors import DomainError, PermissionDenied
from chalicelib.domain.tenants import TenantActor
from chalicelib.web.context import get_state, set_state
from chalicelib.web.guards import signer
from chalicelib.web.http import client_ip, cookie_header, cookies, first, form_fields, redirect

LOG = logging.getLogger("voltvend.web.tenant")
TENANT_COOKIE = "vv_tenant"
TenantView = Callable[..., Response]


def tenant_from_request(request: Request, operator_id: str) -> TenantActor | None:
    token = cookies(request).get(TENANT_COOKIE)
    parsed = signer().read_session_token(token) if token else None
    if parsed is None or parsed[0] != operator_id:
        return None  # a session of another operator's portal is no session here
    from chalicelib.bootstrap import get_services

    return get_services().tenant_auth.resolve(parsed[0], parsed[1], source_ip=client_ip(request))


def tenant_cookie(operator_id: str, session_id: str, max_age: int) -> str:
    return cookie_header(TENANT_COOKIE, signer().session_token(operator_id, session_id), max_age=max_age)


def tenant_page(app: Any) -> Callable[[TenantView], TenantView]:
    """Wrap a tenant page whose route has ``{operator_id}``: the view gets ``(tenant, **kwargs)``."""

    def decorate(view: TenantView) -> TenantView:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            request = app.current_request
            operator_id = str(kwargs.get("operator_id", ""))
            tenant = tenant_from_request(request, operator_id)
            if tenant is None:
                return redirect(f"/t/{quote(operator_id)}/login?next={quote(request.path)}")
            set_state(replace(get_state(), locale=tenant.language))
            try:
                if request.method != "GET" and not hmac.compare_digest(
                        first(form_fields(request), "csrf_token").encode(), tenant.csrf_token.encode()):
                    raise PermissionDenied("the form expired or came from elsewhere; reload and try again")
                return view(tenant, **kwargs)
            except DomainError as error:
                return tenant_error(error.status, error.message, operator_id, tenant)
            except Exception:
                LOG.exception("unhandled error on %s %s", request.method, request.path)
                return tenant_error(500, None, operator_id, tenant)

        return wrapper

    return decorate


def tenant_error(status: int, message: str | None, operator_id: str, tenant: TenantActor | None = None) -> Response:
    from chalicelib.web.views import render

    return render("tenant_error.html", status=status, status_code=status, message=message, operator_id=operator_id,
                  tenant=tenant)
