"""The cloud end of the tunnel against a protocol-level bridge double that talks to the real simulator.

The double seals with the shared protocol as the bridge does, and runs the cloud's raw RTU requests
on the simulator over RTU-over-TCP, so the cloud's plan → decode → store path meets real Modbus.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from gateway_bridge.protocol import (
    Ack,
    Batch,
    BatchResult,
    Channel,
    ChannelState,
    Hello,
    KeyRing,
    Role,
    Sealed,
    TxnResult,
    encode_frame,
)
from gateway_bridge.protocol.frames import Limits, decode
from gateway_bridge.rtu import response_length
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from chalicelib.bootstrap import get_services
from infra.local.host import LocalHost
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import SiteFixture, admin_actor, build_site


@pytest.fixture()
def site(cloud: LocalHost, new_operator: OperatorFixture, tmp_path: Path) -> Iterator[SiteFixture]:
    built = build_site(new_operator, tmp_path)
    try:
        yield built
    finally:
        built.simulator.stop()


class BridgeDouble:
    """Just enough of a bridge: seal/open on one collector channel, run RTU transactions on the simulator."""

    def __init__(self, site: SiteFixture) -> None:
        self.site = site
        self.channel = Channel(site.collector_id, KeyRing.from_dict(site.bundle.keyrings[site.collector_id]),
                               Role.BRIDGE)
        self.tx, self.rx = ChannelState(), ChannelState()
        self.last_sent = ""

    def frame(self, message: Any) -> str:
        self.last_sent = encode_frame([Sealed(self.site.collector_id, self.channel.seal(message, self.tx))])
        return self.last_sent

    def open(self, text: str) -> Any:
        frame = decode(text, Limits(), Limits().max_message_bytes, allow_part=False)
        assert isinstance(frame, tuple)
        return self.channel.open(frame[0].envelope, self.rx).message()

    async def run(self, batch: Batch) -> BatchResult:
        reader, writer = await asyncio.open_connection(self.site.bus["host"], self.site.bus["port"])
        results = []
        for txn in batch.txns:
            t0 = int(time.time() * 1000)
            writer.write(txn.req)
            head = await reader.readexactly(2)
            total = response_length(txn.req, head) or 5
            body = head + await reader.readexactly(total - 2)
            results.append(TxnResult(txn.id, body, None, t0, int(time.time() * 1000)))
        writer.close()
        return BatchResult(batch.cycle, batch.bus, tuple(results))


def url(cloud: LocalHost, site: SiteFixture) -> str:
    return f"{cloud.ws_url}/?bridge={site.bundle.bridge_id}"


def bearer(site: SiteFixture) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.bundle.credential}"}


def run_async(coroutine: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


async def hello_and_plan(socket: ClientConnection, bridge: BridgeDouble) -> Batch:
    await socket.send(bridge.frame(Hello(bridge.site.bundle.bridge_id, bridge.site.site_id, "test", 0,
                                         (bridge.site.collector_id,))))
    plan = bridge.open(str(await asyncio.wait_for(socket.recv(), 10)))
    assert isinstance(plan, Batch)
    return plan


def test_wrong_or_revoked_credentials_are_refused(cloud: LocalHost, site: SiteFixture,
                                                  new_operator: OperatorFixture) -> None:
    async def status(credential: str) -> int:
        try:
            async with connect(url(cloud, site), additional_headers={"Authorization": f"Bearer {credential}"}):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    assert run_async(status("not-the-credential")) == 403
    assert run_async(status(site.bundle.credential)) == 101
    get_services().bridge_admin.revoke(admin_actor(new_operator), site.bundle.bridge_id)
    assert run_async(status(site.bundle.credential)) == 403


def test_round_trip_plan_read_store_ack(cloud: LocalHost, site: SiteFixture) -> None:
    bridge = BridgeDouble(site)

    async def session() -> tuple[Batch, Any, Any]:
        async with connect(url(cloud, site), additional_headers=bearer(site)) as socket:
            plan = await hello_and_plan(socket, bridge)
            result = await bridge.run(plan)
            await socket.send(bridge.frame(result))
            first_ack = bridge.open(str(await asyncio.wait_for(socket.recv(), 10)))
            await socket.send(bridge.frame(result))  # re-sent after a "lost" ack: stored once
            second_ack = bridge.open(str(await asyncio.wait_for(socket.recv(), 10)))
            return plan, first_ack, second_ack

    plan, first_ack, second_ack = run_async(session())
    assert plan.every_s == 60 and plan.bus == site.collector_id
    assert len(plan.txns) == 2 * len(site.meters)  # the DTSY1352 read plan is two blocks
    assert first_ack == Ack(ref=plan.cycle) and second_ack == Ack(ref=plan.cycle)
    readings = get_services().readings
    states = {s.meter_id: s for s in readings.list_states(site.operator_id, site.site_id)}
    assert set(states) == {m.meter_id for m in site.meters}
    simulated = json.loads(_get(f"{site.simulator.control_url}/state"))
    for meter in site.meters:
        values = states[meter.meter_id].values
        assert values["purchase_count"] == meter.address
        assert values["remaining_amount"] == _sim_meter(simulated, meter.address)["remaining_amount"]
        assert len(readings.readings(site.operator_id, meter.meter_id)) == 1


def test_a_replayed_envelope_is_dropped(cloud: LocalHost, site: SiteFixture) -> None:
    bridge = BridgeDouble(site)

    async def session() -> bool:
        async with connect(url(cloud, site), additional_headers=bearer(site)) as socket:
            await hello_and_plan(socket, bridge)
            await socket.send(bridge.last_sent)  # the same Hello again, byte for byte
            try:
                await asyncio.wait_for(socket.recv(), 1.5)
            except TimeoutError:
                return True
            return False

    assert run_async(session()) is True


def _get(address: str) -> str:
    import urllib.request

    with urllib.request.urlopen(address, timeout=5) as response:
        return str(response.read().decode())


def _sim_meter(state: dict[str, Any], address: int) -> dict[str, Any]:
    meters = state["meters"] if "meters" in state else [m for b in state["buses"] for m in b["meters"]]
    return next(m for m in meters if m["address"] == address)


def test_a_worn_key_is_rotated_by_the_cloud(cloud: LocalHost, site: SiteFixture) -> None:
    from dataclasses import replace as swap

    from gateway_bridge.protocol import Heartbeat, Rekey, accept_rekey

    bridge = BridgeDouble(site)
    bridges = get_services().bridge_link._bridges
    tunnel = bridges.load_tunnel(site.operator_id, site.site_id, site.collector_id)
    assert tunnel is not None
    worn = dict(tunnel.inbound, usage={"1": 2**18})  # as if 2^18 3DES blocks had been opened under key 1
    bridges.save_tunnel(site.operator_id, site.site_id, swap(tunnel, inbound=worn))

    async def session() -> tuple[Any, int]:
        async with connect(url(cloud, site), additional_headers=bearer(site)) as socket:
            await socket.send(bridge.frame(Hello(site.bundle.bridge_id, site.site_id, "test", 0, (site.collector_id,))))
            rekey = bridge.open(str(await asyncio.wait_for(socket.recv(), 10)))  # the first message it opens
            assert isinstance(rekey, Rekey)
            assert isinstance(bridge.open(str(await asyncio.wait_for(socket.recv(), 10))), Batch)
            ack = accept_rekey(bridge.channel, rekey)
            await socket.send(bridge.frame(ack))  # sealed under the new key: the cloud switches over
            await socket.send(bridge.frame(Heartbeat(now_ms=0)))
            await asyncio.sleep(0.5)
            return rekey, bridge.channel.keyring.current.key_id

    rekey, bridge_key = run_async(session())
    assert rekey.key.key_id == 2 and bridge_key == 2
    stored = bridges.load_tunnel(site.operator_id, site.site_id, site.collector_id)
    assert stored is not None and stored.keyring["current"]["id"] == 2


def test_messages_arriving_out_of_order_are_taken_in_order_not_lost(cloud: LocalHost, site: SiteFixture) -> None:
    """Two results sealed 2 then 3 but delivered 3 then 2 (API Gateway hands one connection's messages to
    concurrent invocations): the later one waits for the earlier, so both are stored and both acknowledged."""
    bridge = BridgeDouble(site)

    async def session() -> set[Any]:
        async with connect(url(cloud, site), additional_headers=bearer(site)) as socket:
            plan = await hello_and_plan(socket, bridge)
            result = await bridge.run(plan)
            half = len(result.results) // 2
            first = bridge.frame(BatchResult(f"{plan.cycle}.a", result.bus, result.results[:half]))
            second = bridge.frame(BatchResult(f"{plan.cycle}.b", result.bus, result.results[half:]))
            await socket.send(second)
            await asyncio.sleep(0.2)  # the later message is being handled, and waits for the earlier one
            await socket.send(first)
            acks = {bridge.open(str(await asyncio.wait_for(socket.recv(), 10))) for _ in range(2)}
            return {ack.ref for ack in acks}

    refs = run_async(session())
    assert len(refs) == 2 and all(ref.endswith((".a", ".b")) for ref in refs)
    states = get_services().readings.list_states(site.operator_id, site.site_id)
    assert {s.meter_id for s in states} == {m.meter_id for m in site.meters}
