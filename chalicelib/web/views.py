"""Rendering a page with what every template needs: the caller, language, CSRF token, navigation."""

from __future__ import annotations

from typing import Any

from chalice.app import Response

from chalicelib.domain.access import Permission
from chalicelib.web.context import get_state
from chalicelib.web.http import url
from chalicelib.web.rendering import LOCALES, html_response, render_html


def render(template: str, *, status: int = 200, headers: dict[str, Any] | None = None, **context: Any) -> Response:
    state = get_state()
    base = {
        "actor": state.actor,
        "locale": state.locale,
        "locales": LOCALES,
        "csrf_token": state.actor.csrf_token if state.actor else "",
        "url": url,
        "P": Permission,
        "request_path": state.path,
    }
    return html_response(render_html(template, {**base, **context}, state.locale), status, headers)
