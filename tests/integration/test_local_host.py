"""The local host serves REST routes, WebSocket routes (API Gateway-shaped events) and schedules."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
import pytest
from chalice import Chalice, Response, WebsocketDisconnectedError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from infra.local.host import LocalHost

T = TypeVar("T")
events: list[dict[str, Any]] = []
ticks: list[float] = []


def make_app() -> Chalice:
    app = Chalice(app_name="probe")
    app.experimental_feature_flags.update(["WEBSOCKETS"])

    @app.route("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.on_ws_connect()
    def on_connect(event: Any) -> Response:
        query = event.to_dict().get("queryStringParameters") or {}
        events.append({"connect": event.connection_id, "query": query})
        return Response(body="", status_code=200 if query.get("key") == "good" else 403)

    @app.on_ws_message()
    def on_message(event: Any) -> None:
        events.append({"message": event.body, "route": event.to_dict()["requestContext"]["routeKey"]})
        with contextlib.suppress(WebsocketDisconnectedError):
            app.websocket_api.send(event.connection_id, f"echo:{event.body}")

    @app.on_ws_disconnect()
    def on_disconnect(event: Any) -> None:
        events.append({"disconnect": event.connection_id})

    @app.schedule("rate(1 minute)")
    def tick(event: Any) -> dict[str, str]:
        ticks.append(time.monotonic())
        return {"source": event.to_dict()["source"]}

    return app


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on its own thread: Playwright's sync API may own this thread's event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


@pytest.fixture()
def host() -> Iterator[LocalHost]:
    events.clear()
    ticks.clear()
    local = LocalHost(make_app(), schedule_speedup=120.0)  # rate(1 minute) fires every 0.5 s
    local.start()
    try:
        yield local
    finally:
        local.stop()


def test_rest_routes_answer_over_real_http(host: LocalHost) -> None:
    with urllib.request.urlopen(f"{host.http_url}/hello", timeout=5) as response:
        assert json.load(response) == {"hello": "world"}


def test_connect_can_refuse_the_handshake(host: LocalHost) -> None:
    async def attempt() -> int:
        try:
            async with connect(f"{host.ws_url}/?key=bad"):
                return 101
        except InvalidStatus as error:
            return error.response.status_code

    assert run_async(attempt()) == 403
    assert events[0]["query"] == {"key": "bad"}


def test_messages_reach_the_handler_and_replies_come_back(host: LocalHost) -> None:
    async def talk() -> str:
        async with connect(f"{host.ws_url}/?key=good") as socket:
            await socket.send("ping")
            return str(await asyncio.wait_for(socket.recv(), 5))

    assert run_async(talk()) == "echo:ping"
    assert {"message": "ping", "route": "$default"} in events
    deadline = time.monotonic() + 5
    while not any("disconnect" in e for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("disconnect" in e for e in events)


def test_post_to_connection_from_another_client(host: LocalHost) -> None:
    received: list[str] = []
    connected = threading.Event()

    async def listen() -> None:
        async with connect(f"{host.ws_url}/?key=good") as socket:
            connected.set()
            received.append(str(await asyncio.wait_for(socket.recv(), 5)))

    thread = threading.Thread(target=lambda: asyncio.run(listen()))
    thread.start()
    assert connected.wait(5)
    connection_id = next(e["connect"] for e in events if "connect" in e)
    management = boto3.client("apigatewaymanagementapi", endpoint_url=host.management_url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")
    management.post_to_connection(ConnectionId=connection_id, Data=b"pushed")
    thread.join(5)
    assert received == ["pushed"]
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId="bm8tc3VjaA==", Data=b"x")


def test_binary_frames_are_refused_with_1003(host: LocalHost) -> None:
    async def send_binary() -> int | None:
        async with connect(f"{host.ws_url}/?key=good") as socket:
            await socket.send(b"\x01\x02")
            try:
                await asyncio.wait_for(socket.recv(), 5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
        return None

    assert run_async(send_binary()) == 1003


def test_schedules_fire_at_their_rate(host: LocalHost) -> None:
    deadline = time.monotonic() + 5
    while len(ticks) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(ticks) >= 3
    assert host.scheduler.run_now("tick") == {"source": "aws.events"}
