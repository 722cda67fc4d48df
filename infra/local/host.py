"""The local host: one process serving the Chalice app's REST routes, WebSocket routes and schedules.

The same ``app`` object that deploys to AWS; API Gateway and EventBridge are the only things
stood in for.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer, create_local_server

from infra.local.scheduler import LocalScheduler
from infra.local.websocket_gateway import WebSocketGateway

LOG = logging.getLogger("voltvend.local.http")


class QuietRequestHandler(ChaliceRequestHandler):
    """Chalice's handler, logging requests through ``logging`` instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug(format, *args)


class LocalHost:
    def __init__(self, app: Any, *, host: str = "127.0.0.1", http_port: int = 0, ws_port: int = 0,
                 management_port: int = 0, run_schedules: bool = True, schedule_speedup: float = 1.0) -> None:
        self.app = app
        self._host = host
        self._http_port = http_port
        self.gateway = WebSocketGateway(app, host, ws_port, management_port)
        self.scheduler = LocalScheduler(app, speedup=schedule_speedup)
        self._run_schedules = run_schedules
        self._server: LocalDevServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = Config.create(chalice_app=self.app, app_name=self.app.app_name, function_name="api_handler",
                               lambda_timeout=60, lambda_memory_size=512)
        if isinstance(self.app, LocalChalice):  # served before in this process: already thread-local
            server = LocalDevServer(self.app, config, self._host, self._http_port)
        else:
            server = create_local_server(self.app, config, self._host, self._http_port)
        server.server.RequestHandlerClass = _quiet(server)
        self._server = server
        self._thread = threading.Thread(target=server.server.serve_forever, name="http", daemon=True)
        self._thread.start()
        self.gateway.start()
        self._point_websocket_api_at_gateway()
        if self._run_schedules:
            self.scheduler.start()

    def _point_websocket_api_at_gateway(self) -> None:
        """``app.websocket_api.send`` then reaches the local management API instead of AWS."""
        websocket_api = self.app.websocket_api
        websocket_api._endpoint = self.gateway.management_url
        websocket_api._client = None
        websocket_api.session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")

    def stop(self) -> None:
        if self._run_schedules:
            self.scheduler.stop()
        self.gateway.stop()
        if self._server is not None:
            self._server.server.shutdown()
            self._server.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def http_url(self) -> str:
        assert self._server is not None
        return f"http://{self._host}:{self._server.server.server_address[1]}"

    @property
    def ws_url(self) -> str:
        return self.gateway.ws_url

    @property
    def management_url(self) -> str:
        return self.gateway.management_url


def _quiet(server: LocalDevServer) -> Any:
    import functools

    wrapped = server._wrapped_handler
    return functools.partial(QuietRequestHandler, **wrapped.keywords)
