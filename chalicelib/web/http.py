"""Small HTTP helpers over Chalice's request/response: forms, cookies, redirects, client address."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

from chalice.app import Request, Response

from chalicelib.config import get_settings
from chalicelib.domain.errors import ValidationError

MAX_FORM_BYTES = 64 * 1024
FORM_TYPES = ["application/x-www-form-urlencoded", "application/json"]


def url(path: str) -> str:
    """An absolute path under the deployment's base path (``/api`` stage prefix in AWS)."""
    return f"{get_settings().base_path}{path}"


def _raw_body(request: Request) -> bytes:
    raw = request.raw_body or b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def form_fields(request: Request) -> dict[str, list[str]]:
    raw = _raw_body(request)
    if len(raw) > MAX_FORM_BYTES:
        raise ValidationError("the form is too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("the form is not UTF-8") from None
    return parse_qs(text, keep_blank_values=True, max_num_fields=200)


def first(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    values = fields.get(name)
    return values[0] if values else default


def json_object(request: Request) -> dict[str, Any]:
    """The JSON body as an object; numbers with decimals become Decimal, never float."""
    raw = _raw_body(request)
    if len(raw) > MAX_FORM_BYTES:
        raise ValidationError("the request body is too large")
    try:
        from decimal import Decimal

        body = json.loads(raw.decode("utf-8") or "{}", parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    return body


def query_params(request: Request) -> Mapping[str, str]:
    return request.query_params or {}


def cookies(request: Request) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is ignored like browsers do, not a 500
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def cookie_header(name: str, value: str, *, max_age: int | None = None, http_only: bool = True) -> str:
    settings = get_settings()
    parts = [f"{name}={value}", f"Path={settings.base_path or '/'}", "SameSite=Lax"]
    if http_only:
        parts.append("HttpOnly")
    if settings.cookie_secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def client_ip(request: Request) -> str:
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "")


def redirect(path: str, *, set_cookies: list[str] | None = None) -> Response:
    headers: dict[str, Any] = {"Location": url(path)}
    if set_cookies:
        headers["Set-Cookie"] = set_cookies
    return Response(body="", status_code=303, headers=headers)


def safe_next(path: str | None) -> str:
    """Only local paths may be a redirect target after log-in (no open redirect)."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/dashboard"


def login_redirect(path: str) -> Response:
    return redirect(f"/login?next={quote(path)}")


def text_field(body: dict[str, object], name: str, *, required: bool = True) -> str:
    """A string field of a JSON body, or a 400 naming it."""
    value = body.get(name, "")
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string", field=name)
    if required and not value:
        raise ValidationError(f"{name} is required", field=name)
    return value


def string_list(body: dict[str, object], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{name} must be a list of strings", field=name)
    return value
