"""The bridge <-> cloud conversation: outages, command de-duplication across reconnects and restarts,
rekey mid-stream, a refused credential, and hostile input on the socket."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import Iterable
from decimal import Decimal
from itertools import pairwise

from gateway_bridge.bridge.store import Store, encode
from gateway_bridge.codec import decode_block
from gateway_bridge.profiles import load_profile
from gateway_bridge.protocol import (
    Ack,
    Batch,
    BatchResult,
    Command,
    Heartbeat,
    Hello,
    KeyRing,
    Txn,
    TxnError,
    Upload,
)
from gateway_bridge.rtu import RegistersReply, WriteReply, build_read_request, build_write_request, parse_response
from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient

from .conftest import CREDENTIAL, Simulator, Stack, started, stop_process
from .fake_cloud import FakeCloud, wait_for

PLAN_SITE = """
[site]
name = "plan"
[[buses]]
name = "line"
transport = "rtutcp"
emulate_wire = false
[[buses.meters]]
address = 1
count = 4
model = "ACR"
load_kw = 30
"""
SHOP_SITE = """
[site]
name = "shop"
[[buses]]
name = "shop"
transport = "rtutcp"
emulate_wire = false
[[buses.meters]]
address = 1
count = 2
model = "DTSY1352"
remaining_amount = 100.00
purchase_count = 4
prices = { valley = 0.3000, flat = 0.6000, peak = 0.9000, sharp = 1.2000 }
load_kw = 1
"""
ACR = load_profile("ACR")


def reads(addresses: Iterable[int]) -> tuple[Txn, ...]:
    return tuple(Txn(f"m{a}", build_read_request(a, 0, 30), 1000) for a in addresses)


def slot_of(result: BatchResult) -> int:
    return int(result.cycle.split("@")[1])


def energy(result: BatchResult, address: int) -> Decimal:
    answer = next(r for r in result.results if r.id == f"m{address}")
    assert answer.resp is not None, answer
    reply = parse_response(build_read_request(address, 0, 30), answer.resp)
    assert isinstance(reply, RegistersReply)
    value = decode_block(ACR, 0, reply.registers)["energy_total"]
    assert isinstance(value, Decimal)
    return value


def plan_results(cloud: FakeCloud) -> list[BatchResult]:
    return [r for r in cloud.results("line") if r.cycle.startswith("plan@")]


def each_slot_once_in_order(arrived: list[BatchResult]) -> list[BatchResult]:
    """The distinct results (as the cloud de-duplicates them), checked contiguous and in time order."""
    first_arrivals: dict[str, BatchResult] = {}
    for result in arrived:
        first_arrivals.setdefault(result.cycle, result)
    firsts = list(first_arrivals.values())
    slots = [slot_of(r) for r in firsts]
    assert slots == sorted(slots), "readings arrived out of time order"
    assert all(b - a == 1000 for a, b in pairwise(slots)), f"a reading was lost: {slots}"
    assert len(arrived) - len(firsts) <= 1, "only a result in flight at the cut may arrive twice"
    return firsts


def test_outage_every_reading_arrives_once_in_time_order(stack: Stack) -> None:
    sim = stack.simulator(PLAN_SITE, "--speed", "600")
    cloud = stack.cloud(["line"])
    bridge = stack.bridge(stack.config(cloud, [sim.bus("line")]))
    started(bridge, cloud)
    cloud.send("line", Batch("plan", "line", reads(range(1, 5)), every_s=1))
    wait_for(lambda: len(plan_results(cloud)) >= 2, what="two standing-plan runs")

    cloud.stop()  # the WebSocket is cut; the meters keep changing
    cut_at = time.time()
    sim.control("POST", "/meters/line/2/load", {"load_kw": "0"})
    sim.control("POST", "/meters/line/3/load", {"load_kw": "90"})
    time.sleep(4.5)
    cloud.start()
    restored_ms = int(time.time() * 1000)
    wait_for(lambda: any(slot_of(r) > restored_ms for r in plan_results(cloud)), 15, "readings after the outage")

    arrived = plan_results(cloud)
    ordered = each_slot_once_in_order(arrived)
    during = [r for r in arrived if cut_at * 1000 < slot_of(r) < restored_ms]
    assert len({r.cycle for r in during}) >= 3
    uploaded = {r.cycle for u in cloud.messages(Upload, "line") for r in u.results}
    assert {r.cycle for r in during} <= uploaded, "the backlog travels as uploads"
    assert all(energy(a, 3) <= energy(b, 3) for a, b in pairwise(ordered))
    assert energy(during[-1], 3) > energy(during[0], 3)  # the readings carry the meters' changes
    assert energy(during[-1], 2) == energy(during[1], 2)  # load 0: its energy stood still
    assert cloud.rejections == []


async def purchase_count_by_modbus(bus: dict[str, object], address: int) -> int:
    client = AsyncModbusTcpClient(str(bus["host"]), port=int(str(bus["port"])), framer=FramerType.RTU, timeout=2,
                                  retries=0)
    await client.connect()
    try:
        reply = await client.read_holding_registers(0x0104, count=1, device_id=address)
        return int(reply.registers[0])
    finally:
        client.close()


def purchase_counts(sim: Simulator, address: int) -> tuple[int, int]:
    by_control = int(sim.meter("shop", address)["purchase_count"])
    return by_control, asyncio.run(purchase_count_by_modbus(sim.bus("shop"), address))


def copies(cloud: FakeCloud, cycle: str) -> int:
    return len([r for r in cloud.results() if r.cycle == cycle])


def test_a_resent_command_is_never_executed_twice(stack: Stack) -> None:
    sim = stack.simulator(SHOP_SITE)
    cloud = stack.cloud(["shop"])
    config = stack.config(cloud, [sim.bus("shop")])
    bridge = stack.bridge(config)
    started(bridge, cloud)
    purchase = Command("buy-1", "shop", (Txn("write", build_write_request(1, 0x0120, [0, 2500, 5])),
                                         Txn("count", build_read_request(1, 0x0104, 1))))
    cloud.ack_results = False  # the acknowledgement is lost
    cloud.send("shop", purchase)
    first = cloud.await_result("buy-1")
    assert purchase_counts(sim, 1) == (5, 5)

    cloud.ack_results = True
    cloud.drop()
    started(bridge, cloud, connections=2)
    wait_for(lambda: copies(cloud, "buy-1") >= 2, what="the unacked result in the reconnect's upload")
    cloud.send("shop", purchase)  # the cloud, unsure, sends it again after the reconnect
    wait_for(lambda: copies(cloud, "buy-1") >= 3, what="the stored result, sent again")

    assert stop_process(bridge.process) == 0
    bridge = stack.bridge(config)  # and once more after a restart
    started(bridge, cloud, connections=3)
    cloud.send("shop", purchase)
    wait_for(lambda: copies(cloud, "buy-1") >= 4, what="the stored result after the restart")

    assert all(copy == first for copy in cloud.results("shop") if copy.cycle == "buy-1"), "the command ran again"
    assert purchase_counts(sim, 1) == (5, 5)
    assert cloud.rejections == [], "sequence numbers went backwards across the restart"


def test_rekey_mid_stream(stack: Stack) -> None:
    sim = stack.simulator(PLAN_SITE)
    cloud = stack.cloud(["line"])
    config = stack.config(cloud, [sim.bus("line")])
    bridge = stack.bridge(config)
    started(bridge, cloud)
    cloud.send("line", Batch("plan", "line", reads(range(1, 5)), every_s=1))
    wait_for(lambda: len(plan_results(cloud)) >= 2, what="two standing-plan runs")

    rekey = cloud.rekey("line")
    ack = wait_for(lambda: [a for a in cloud.arrivals if isinstance(a.message, Ack) and a.message.ref == rekey.ref],
                   what="the rekey ack")[0]
    assert ack.key_id == 2 and ack.message == Ack(rekey.ref)
    assert cloud.channels["line"].keyring.current.key_id == 2  # the cloud switched on the ack
    wait_for(lambda: sum(1 for a in cloud.arrivals if a.key_id == 2 and isinstance(a.message, BatchResult)) >= 2,
             what="results under the new key")

    ring_file = config.parent / "keys" / "line.json"
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    assert KeyRing.from_dict(json.loads(ring_file.read_text())).current == rekey.key
    slots = sorted({slot_of(r) for r in plan_results(cloud)})
    assert all(b - a == 1000 for a, b in pairwise(slots)), "a reading was lost in the rekey"

    assert stop_process(bridge.process) == 0
    started(stack.bridge(config), cloud, connections=2)  # the new key survives a restart
    assert [a.key_id for a in cloud.arrivals if isinstance(a.message, Hello)][-1] == 2
    assert cloud.rejections == []


def test_wrong_credential_is_refused_and_retried(stack: Stack) -> None:
    sim = stack.simulator(PLAN_SITE)
    cloud = stack.cloud(["line"])
    bridge = stack.bridge(stack.config(cloud, [sim.bus("line")], credential="wrong-" + CREDENTIAL))
    wait_for(lambda: cloud.handshakes_refused >= 3, 15, "repeated refused handshakes")
    assert bridge.process.poll() is None, "the bridge gave up or crashed"
    assert cloud.arrivals == []
    status = wait_for(lambda: json.loads((bridge.state_dir / "status.json").read_text())
                      if (bridge.state_dir / "status.json").exists() else None, what="a status file")
    wait_for(lambda: json.loads((bridge.state_dir / "status.json").read_text())["connection"]["state"] ==
             "credential_refused", what="status to say the credential was refused")
    assert status["bridge_id"] == "t-op.bridge-1"
    log = bridge.log_text()
    assert "HTTP 403" in log and "refused the bridge's credential" in log and "Traceback" not in log


def test_hostile_input_is_dropped_and_logged(stack: Stack) -> None:
    sim = stack.simulator(PLAN_SITE)
    cloud = stack.cloud(["line"])
    bridge = stack.bridge(stack.config(cloud, [sim.bus("line")]))
    started(bridge, cloud)
    good = cloud.frame("line", Batch("first", "line", reads([1])))
    cloud.send_raw(good)
    cloud.await_result("first")
    cloud.send_raw(good)  # replayed
    cloud.send_raw("not json at all")
    cloud.send_raw(b"\x00binary")
    tampered = json.loads(cloud.frame("line", Batch("tampered", "line", reads([2]))))
    envelope = tampered["items"][0]["e"]
    tampered["items"][0]["e"] = envelope[:-6] + ("AAAA" if envelope[-6:-2] != "AAAA" else "BBBB") + envelope[-2:]
    cloud.send_raw(json.dumps(tampered))
    cloud.send_raw(json.dumps({"t": "env", "items": [{"ch": "elsewhere", "e": envelope}]}))
    cloud.send("line", Batch("after", "line", reads([3])))
    cloud.await_result("after")

    assert cloud.result("tampered") is None
    assert len([r for r in cloud.results() if r.cycle == "first"]) == 1, "the replay was executed"
    log = bridge.log_text()
    for reason in ("reason=replayed", "reason=malformed", "reason=auth_failed", "reason=unknown_key"):
        assert reason in log, reason
    assert bridge.process.poll() is None and "Traceback" not in log
    cloud.send("line", Heartbeat(int(time.time() * 1000)))  # harmless too


def test_restart_never_reruns_an_interrupted_command(stack: Stack) -> None:
    sim = stack.simulator(SHOP_SITE)
    cloud = stack.cloud(["shop"])
    config = stack.config(cloud, [sim.bus("shop")])
    state = config.parent / "state"
    state.mkdir()
    store = Store(state / "bridge.sqlite3")  # as a bridge that stopped mid-command left it
    interrupted = Command("buy-2", "shop", (Txn("write", build_write_request(1, 0x0120, [0, 1000, 5])),))
    waiting = Command("buy-3", "shop", (Txn("write", build_write_request(1, 0x0120, [0, 1000, 5])),))
    store.command_received("buy-2", "shop", encode(interrupted), 1)
    store.command_started("buy-2")
    store.command_received("buy-3", "shop", encode(waiting), 2)
    store.close()

    started(stack.bridge(config), cloud)
    lost, ran = cloud.await_result("buy-2"), cloud.await_result("buy-3")
    assert [r.error for r in lost.results] == [TxnError.IO]  # not known how far it got: the cloud reads back
    accepted = ran.results[0].resp
    assert accepted is not None and isinstance(parse_response(waiting.txns[0].req, accepted), WriteReply)
    assert purchase_counts(sim, 1) == (5, 5)  # buy-3 (count 5) was accepted: buy-2 never reached the meter


def test_heartbeats_and_a_planned_reconnect_lose_nothing(stack: Stack) -> None:
    sim = stack.simulator(PLAN_SITE)
    cloud = stack.cloud(["line"])
    bridge = stack.bridge(stack.config(cloud, [sim.bus("line")], extra="heartbeat_s = 1\nplanned_reconnect_s = 10"))
    started(bridge, cloud)
    cloud.send("line", Batch("plan", "line", reads(range(1, 5)), every_s=1))
    started(bridge, cloud, connections=2)  # the bridge reconnected on its own, after about 10 s
    wait_for(lambda: len(plan_results(cloud)) >= 12, what="readings after the reconnect")

    heartbeats = cloud.messages(Heartbeat, "line")
    assert len(heartbeats) >= 5 and all(h.queued >= 0 for h in heartbeats)
    assert cloud.connections == 2
    each_slot_once_in_order(plan_results(cloud))
    log = bridge.log_text()
    assert "planned reconnect" in log and "connection lost" not in log
