"""A local stand-in for API Gateway's WebSocket API and its management (post-to-connection) API.

Each WebSocket event is synthesised in API Gateway's shape and handed to the same Chalice handler
that runs on Lambda; binary frames are refused with 1003 as API Gateway does. The management API
answers ``apigatewaymanagementapi`` calls (post/get/delete connection) from any process, so code
that pushes to a connection uses one path locally and in AWS.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from chalice.local import LambdaContext
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from infra.local.entry_points import lambda_entry

LOG = logging.getLogger("voltvend.local.ws")
CONNECT, MESSAGE, DISCONNECT = "$connect", "$default", "$disconnect"
MESSAGE_CONCURRENCY = 8  # like a Lambda reserved concurrency: bounded, not one-at-a-time
EVENT_TYPES = {CONNECT: "CONNECT", MESSAGE: "MESSAGE", DISCONNECT: "DISCONNECT"}


def _connection_id() -> str:
    # Real ids look like "L0SM9cOFvHcCIhw=": base64 with padding, which botocore URL-quotes.
    return base64.b64encode(secrets.token_bytes(10)).decode()


class WebSocketGateway:
    """Serves the app's WebSocket routes on one port and the management API on another."""

    def __init__(self, app: Any, host: str = "127.0.0.1", ws_port: int = 0, management_port: int = 0,
                 stage: str = "local") -> None:
        self._app = app
        self._host = host
        self._ws_port = ws_port
        self._stage = stage
        self._connections: dict[str, ServerConnection] = {}
        self._connected_at: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._concurrency = asyncio.Semaphore(MESSAGE_CONCURRENCY)
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="ws-gateway", daemon=True)
        self._management = ThreadingHTTPServer((host, management_port), management_handler(self))
        self._management.daemon_threads = True
        self._management_thread = threading.Thread(target=self._management.serve_forever, name="ws-mgmt",
                                                   daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self._server = future.result(timeout=10)
        self._management_thread.start()

    async def _serve(self) -> Server:
        return await serve(self._on_connection, self._host, self._ws_port, process_request=self._on_handshake,
                           max_size=128 * 1024, ping_interval=None)

    def stop(self) -> None:
        if self._server is not None:
            closing = asyncio.run_coroutine_threadsafe(self._close(self._server), self._loop)
            try:
                closing.result(timeout=10)
            except TimeoutError:
                LOG.warning("WebSocket connections did not close within 10 s; stopping anyway")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._management.shutdown()
        self._management.server_close()

    async def _close(self, server: Server) -> None:
        server.close()
        await server.wait_closed()

    @property
    def ws_url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://{self._host}:{port}"

    @property
    def management_url(self) -> str:
        return f"http://{self._host}:{self._management.server_address[1]}/{self._stage}"

    # -- the WebSocket side ------------------------------------------------------------------
    async def _on_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        connection_id = _connection_id()
        connection.voltvend_id = connection_id  # type: ignore[attr-defined]
        self._connected_at[connection_id] = int(time.time() * 1000)
        extra = {"headers": dict(request.headers.raw_items()),
                 "queryStringParameters": dict(parse_qsl(urlsplit(request.path).query)) or None}
        result = await asyncio.to_thread(self._invoke, CONNECT, connection_id, None, extra)
        if not 200 <= int(result.get("statusCode", 200)) < 300:
            self._connected_at.pop(connection_id, None)
            return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        self._connections[connection_id] = connection
        return None

    async def _on_connection(self, connection: ServerConnection) -> None:
        connection_id: str = connection.voltvend_id  # type: ignore[attr-defined]
        # API Gateway invokes a Lambda per message, concurrently and in no promised order; so do we.
        running: set[asyncio.Task[Any]] = set()
        try:
            async for message in connection:
                if isinstance(message, bytes):
                    await connection.close(1003, "binary frames are not supported")
                    break
                await self._concurrency.acquire()
                task = asyncio.create_task(self._invoke_message(connection_id, message))
                running.add(task)
                task.add_done_callback(running.discard)
        except ConnectionClosed:
            pass
        finally:
            if running:
                await asyncio.wait(running)
            self._connections.pop(connection_id, None)
            await asyncio.to_thread(self._invoke, DISCONNECT, connection_id, None, {})
            self._connected_at.pop(connection_id, None)

    async def _invoke_message(self, connection_id: str, message: str) -> None:
        try:
            await asyncio.to_thread(self._invoke, MESSAGE, connection_id, message, {})
        finally:
            self._concurrency.release()

    def _invoke(self, route_key: str, connection_id: str, body: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        handler = self._app.websocket_handlers.get(route_key)
        if handler is None:
            return {"statusCode": 200}
        event = self._event(route_key, connection_id, body, extra)
        try:
            function = lambda_entry(self._app, handler.name, handler.handler_string)
            return function(event, LambdaContext(handler.name, 256)) or {"statusCode": 200}
        except Exception:
            LOG.exception("WebSocket handler for %s failed", route_key)
            return {"statusCode": 500}

    def _event(self, route_key: str, connection_id: str, body: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time() * 1000)
        context = {
            "routeKey": route_key, "eventType": EVENT_TYPES[route_key], "connectionId": connection_id,
            "stage": self._stage, "apiId": "local", "domainName": self.ws_url.removeprefix("ws://"),
            "requestId": secrets.token_hex(8), "messageDirection": "IN", "requestTimeEpoch": now,
            "connectedAt": self._connected_at.get(connection_id, now), "identity": {"sourceIp": "127.0.0.1"},
        }
        return {"requestContext": context, "isBase64Encoded": False, "body": body, **extra}

    # -- the management API ------------------------------------------------------------------
    def post_to_connection(self, connection_id: str, data: bytes) -> bool:
        connection = self._connections.get(connection_id)
        if connection is None:
            return False
        future = asyncio.run_coroutine_threadsafe(connection.send(data.decode("utf-8")), self._loop)
        try:
            future.result(timeout=10)
        except ConnectionClosed:
            return False
        return True

    def delete_connection(self, connection_id: str) -> bool:
        connection = self._connections.get(connection_id)
        if connection is None:
            return False
        asyncio.run_coroutine_threadsafe(connection.close(1000, "closed by the server"), self._loop).result(10)
        return True

    def connection_info(self, connection_id: str) -> dict[str, Any] | None:
        if connection_id not in self._connections:
            return None
        connected = self._connected_at.get(connection_id, 0)
        return {"ConnectedAt": connected / 1000, "Identity": {"SourceIp": "127.0.0.1"},
                "LastActiveAt": time.time()}


def management_handler(gateway: WebSocketGateway) -> type[BaseHTTPRequestHandler]:
    """An HTTP handler class answering ``apigatewaymanagementapi`` calls for ``gateway``."""

    class ManagementHandler(BaseHTTPRequestHandler):
        def _connection_id(self) -> str:
            path = urlsplit(self.path).path
            return unquote(path.rsplit("/@connections/", 1)[1]) if "/@connections/" in path else ""

        def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status == 410:
                self.send_header("x-amzn-ErrorType", "GoneException")
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length", "0")))
            delivered = gateway.post_to_connection(self._connection_id(), data)
            self._answer(200, {}) if delivered else self._answer(410, {"message": "connection is gone"})

        def do_GET(self) -> None:
            info = gateway.connection_info(self._connection_id())
            self._answer(410, {"message": "connection is gone"}) if info is None else self._answer(200, info)

        def do_DELETE(self) -> None:
            closed = gateway.delete_connection(self._connection_id())
            self._answer(204) if closed else self._answer(410, {"message": "connection is gone"})

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug(format, *args)

    return ManagementHandler
