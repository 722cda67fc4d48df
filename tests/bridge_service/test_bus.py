"""The bridge's buses, seen from the cloud: a dead meter costs its timeout once, commands jump the
queue, transactions never overlap, and every transport hands back RTU frames."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import gateway_bridge.cli as cli
import pytest
from gateway_bridge.protocol import Batch, BatchResult, Command, Txn, TxnError, TxnResult
from gateway_bridge.rtu import RegistersReply, build_read_request, parse_response

from .conftest import Stack, started
from .fake_cloud import wait_for

LINE_SITE = """
[site]
name = "test"
[[buses]]
name = "line"
transport = "rtutcp"
baud = 38400
turnaround_ms = 0
[[buses.meters]]
address = 1
count = 32
model = "ACR"
load_kw = 10
"""
TIMEOUT_MS = 150
SLACK_MS = 60  # event-loop and process scheduling on a busy 2-core machine


def reads(addresses: Iterable[int], prefix: str = "m") -> tuple[Txn, ...]:
    return tuple(Txn(f"{prefix}{a}", build_read_request(a, 0, 30), 1000) for a in addresses)


def span_ms(result: BatchResult) -> int:
    return max(r.t1_ms for r in result.results) - min(r.t0_ms for r in result.results)


def by_id(result: BatchResult) -> dict[str, TxnResult]:
    return {r.id: r for r in result.results}


def test_dead_meter_delays_the_others_by_at_most_its_timeout(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    sim = stack.simulator(LINE_SITE)
    cloud = stack.cloud(["line"])
    bridge = stack.bridge(stack.config(cloud, [sim.bus("line")], timeout_ms=TIMEOUT_MS))
    started(bridge, cloud)
    txns = reads(range(1, 33))
    cloud.send("line", Batch("healthy", "line", txns))
    healthy = cloud.await_result("healthy")
    assert all(r.resp is not None for r in healthy.results)

    sim.control("POST", "/meters/line/5/fault", {"dead": True})
    cloud.send("line", Batch("dead-1", "line", txns))
    first = cloud.await_result("dead-1")
    cloud.send("line", Batch("dead-2", "line", txns))
    second = cloud.await_result("dead-2")

    assert [r.id for r in first.results if r.error] == ["m5"] and by_id(first)["m5"].error is TxnError.TIMEOUT
    assert span_ms(first) <= span_ms(healthy) + TIMEOUT_MS + SLACK_MS
    assert [r.id for r in second.results if r.error] == ["m5"] and by_id(second)["m5"].error is TxnError.SKIPPED
    assert span_ms(second) <= span_ms(healthy) + SLACK_MS
    assert all(isinstance(parse_response(build_read_request(int(a.id[1:]), 0, 30), a.resp), RegistersReply)
               for a in first.results if a.resp is not None)

    out = wait_for(lambda: status_showing(bridge.config, ("meter   5", "failure(s)"), capsys),
                   what="status to show meter 5 failing")
    assert "failure(s)" in out.split("meter   5")[1].splitlines()[0]
    assert "connection: connected" in out and "bus line (rtutcp): queue 0" in out
    assert "; ok" in out.split("meter   4")[1].splitlines()[0]


def status_showing(config: Path, texts: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str | None:
    """``voltvend-bridge status`` output once it contains every one of ``texts``."""
    capsys.readouterr()
    assert cli.main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    return out if all(text in out for text in texts) else None


def test_commands_jump_ahead_of_queued_reads(stack: Stack) -> None:
    sim = stack.simulator(LINE_SITE)
    cloud = stack.cloud(["line"])
    bridge = stack.bridge(stack.config(cloud, [sim.bus("line")]))
    started(bridge, cloud)
    cloud.send("line", Batch("sweep-a", "line", reads(range(1, 33), "a")))
    cloud.send("line", Batch("sweep-b", "line", reads(range(1, 33), "b")))
    cloud.send("line", Command("cmd-1", "line", reads([7, 8], "c")))
    a, b, cmd = (cloud.await_result(cycle) for cycle in ("sweep-a", "sweep-b", "cmd-1"))

    assert all(r.resp is not None for r in (*a.results, *b.results, *cmd.results))
    command_start, command_end = min(r.t0_ms for r in cmd.results), max(r.t1_ms for r in cmd.results)
    assert command_start < max(r.t0_ms for r in a.results), "the command waited for the whole first sweep"
    assert command_end <= min(r.t0_ms for r in b.results), "the command waited behind a queued sweep"
    timeline = sorted((*a.results, *b.results, *cmd.results), key=lambda r: (r.t0_ms, r.t1_ms))
    for earlier, later in pairwise(timeline):
        assert later.t0_ms >= earlier.t1_ms, "two transactions overlapped on one bus"


MIXED_SITE = """
[site]
name = "mixed"
""" + "".join(f"""
[[buses]]
name = "{transport}"
transport = "{transport}"
baud = 38400
turnaround_ms = 0
emulate_wire = false
[[buses.meters]]
address = 3
count = 2
model = "ACR"
load_kw = 5
""" for transport in ("rtutcp", "tcp", "serial"))


def test_every_transport_returns_rtu_frames(stack: Stack) -> None:
    sim = stack.simulator(MIXED_SITE)
    buses = ["rtutcp", "tcp", "serial"]
    cloud = stack.cloud(buses)
    bridge = stack.bridge(stack.config(cloud, [sim.bus(b) for b in buses]))
    started(bridge, cloud)
    for bus in buses:
        cloud.send(bus, Batch(f"now-{bus}", bus, reads([3, 4, 9])))
    for bus in buses:
        result = cloud.await_result(f"now-{bus}")
        answers = by_id(result)
        for address in (3, 4):
            answer = answers[f"m{address}"].resp
            assert answer is not None
            reply = parse_response(build_read_request(address, 0, 30), answer)
            assert isinstance(reply, RegistersReply) and len(reply.registers) == 30
        assert answers["m9"].error is TxnError.TIMEOUT  # nobody at 9
