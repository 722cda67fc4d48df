"""The bridges' WebSocket routes over the bridge link service.

Chalice wraps WebSocket handlers only when they are registered on the app itself (a blueprint's stay
unwrapped and never receive their event object), so ``app.py`` registers these with one-line handlers.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Response, WebsocketEvent

from chalicelib.bootstrap import get_services


def _header(event: WebsocketEvent, name: str) -> str:
    headers = event.to_dict().get("headers") or {}
    return next((str(v) for k, v in headers.items() if k.lower() == name), "")


def connect(event: WebsocketEvent) -> Response:
    query: dict[str, Any] = event.to_dict().get("queryStringParameters") or {}
    auth = _header(event, "authorization")
    credential = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    accepted = get_services().bridge_link.connect(event.connection_id, str(query.get("bridge", "")), credential)
    return Response(body="", status_code=200 if accepted else 403)


def message(event: WebsocketEvent) -> None:
    get_services().bridge_link.receive(event.connection_id, event.body)


def disconnect(event: WebsocketEvent) -> None:
    get_services().bridge_link.disconnect(event.connection_id)
