"""The store-and-forward buffer on its own: thinning when full, uploads that fit a message, oldest first."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path

from gateway_bridge.bridge.outbox import Outbox
from gateway_bridge.bridge.status import format_status
from gateway_bridge.bridge.store import Database, Store
from gateway_bridge.protocol import (
    Ack,
    BatchResult,
    Channel,
    ChannelState,
    KeyRing,
    Message,
    Role,
    Sealed,
    TxnResult,
    Upload,
    encode_frame,
    generate_key,
)

DAY_MS = 86_400_000


def sweep(cycle: str, meters: int = 32, at_ms: int = 0) -> BatchResult:
    answers = tuple(TxnResult(f"m{a}", bytes(65), None, at_ms, at_ms + 80) for a in range(1, meters + 1))
    return BatchResult(cycle, "gf", answers)


def test_a_full_buffer_thins_old_standing_plan_results_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.sqlite3")
    now = 40 * DAY_MS
    for i in range(400):  # one result every 0.1 day over the last 40 days
        created = now - 40 * DAY_MS + i * DAY_MS // 10
        store.add_result(sweep(f"plan@{created}", meters=1), "plan", created)
    for i in range(10):
        store.add_result(sweep(f"cmd-{i}", meters=1), "command", i)

    assert store.make_room(max_rows=500, older_than_ms=now - 7 * DAY_MS) is None
    thinning = store.make_room(max_rows=300, older_than_ms=now - 7 * DAY_MS)
    assert thinning is not None and (thinning.deleted, thinning.remaining) == (165, 245)
    kept = store.pending("gf", limit=1000)
    old_plan = [r for r in kept if r.kind == "plan" and r.created_ms < now - 7 * DAY_MS]
    assert len(old_plan) == 165 and all(b.created_ms - a.created_ms == DAY_MS // 5 for a, b in
                                        itertools.pairwise(old_plan))  # every other interval kept
    assert len([r for r in kept if r.kind == "plan" and r.created_ms >= now - 7 * DAY_MS]) == 70  # recent: all
    assert len([r for r in kept if r.kind == "command"]) == 10  # command results are never thinned

    again = store.make_room(max_rows=100, older_than_ms=now - 7 * DAY_MS)
    assert again is not None and again.remaining <= 100
    assert len([r for r in store.pending("gf", limit=1000) if r.kind == "command"]) == 10
    assert store.meta_int("thinned_total") == 165 + again.deleted
    store.close()

    text = format_status({"buffer": {"rows": again.remaining, "max_rows": 100, "thinned_total": 165 + again.deleted,
                                     "last_thinning": vars(again)}, "buses": {}}, now)
    assert f"thinned so far: {165 + again.deleted}" in text and "last thinning" in text


def test_backlog_goes_out_oldest_first_in_messages_under_100_kb(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], list[str]]:
        db = Database(tmp_path / "bridge.sqlite3")
        for n in range(600):
            await db.run(Store.add_result, sweep(f"plan@{n}"), "plan", n)
        outbox = Outbox(db, ["gf"])
        await outbox.load()
        channel, state = Channel("gf", KeyRing(current=generate_key(1)), Role.BRIDGE), ChannelState()
        sizes: list[int] = []
        cycles: list[str] = []

        async def send(items: Sequence[tuple[str, Message]]) -> None:
            for bus, message in items:
                sizes.append(len(encode_frame([Sealed(bus, channel.seal(message, state))])))
                assert isinstance(message, Upload)
                cycles.extend(r.cycle for r in message.results)
                asyncio.get_running_loop().call_soon(asyncio.ensure_future, outbox.acked(bus, Ack(message.ref)))

        task = asyncio.create_task(outbox.run(send, live_from=10**9))
        while outbox.rows:
            await asyncio.sleep(0.01)
        task.cancel()
        db.close()
        return sizes, cycles

    sizes, cycles = asyncio.run(scenario())
    assert len(sizes) > 10 and max(sizes) <= 100_000, max(sizes)
    assert cycles == [f"plan@{n}" for n in range(600)], "not oldest first, or a result set twice"


def test_command_records_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.sqlite3")
    store.command_received("c1", "gf", "{}", 1)
    store.command_started("c1")
    row = store.command_done(sweep("c1", meters=2), 5)
    store.close()
    reopened = Store(tmp_path / "bridge.sqlite3")
    record = reopened.command("c1")
    assert record is not None and record.state == "done" and record.result is not None
    assert [r.id for r in reopened.pending("gf")] == [row] and reopened.has_result("gf", "c1")
    assert reopened.delete_cycle("gf", "c1") == 1 and reopened.command("c1") is not None
    assert reopened.forget_commands(received_before_ms=2) == 1 and reopened.command("c1") is None
    reopened.close()


def test_an_unacked_upload_is_sent_again_in_order(tmp_path: Path) -> None:
    async def scenario() -> list[list[str]]:
        db = Database(tmp_path / "bridge.sqlite3")
        for n in range(3):
            await db.run(Store.add_result, sweep(f"plan@{n}"), "plan", n)
        outbox = Outbox(db, ["gf"], ack_timeout_s=0.2)
        await outbox.load()
        sent: list[list[str]] = []

        async def send(items: Sequence[tuple[str, Message]]) -> None:
            for bus, message in items:
                assert isinstance(message, Upload)
                sent.append([r.cycle for r in message.results])
                if len(sent) > 1:  # the first ack is lost
                    asyncio.get_running_loop().call_soon(asyncio.ensure_future, outbox.acked(bus, Ack(message.ref)))

        task = asyncio.create_task(outbox.run(send, live_from=10**9))
        while outbox.rows:
            await asyncio.sleep(0.01)
        task.cancel()
        db.close()
        return sent

    assert asyncio.run(scenario()) == [["plan@0", "plan@1", "plan@2"]] * 2
