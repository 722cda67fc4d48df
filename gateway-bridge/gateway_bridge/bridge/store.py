"""The bridge's SQLite store: results waiting for the cloud's ack, executed commands, standing plans,
tunnel sequence state, and what the buffer has thinned.

WAL with ``synchronous = FULL``: a command marked started or a sealed sequence number survives a power
cut, which is what makes "never execute a command twice" and "sequence numbers never go backwards"
hold. All calls come from one thread (see ``Database``), so the event loop never waits on an fsync.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..protocol import Batch, BatchResult, ChannelState, ProtocolError, Reason, encode_message, parse_message

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- upload order: oldest first
    bus TEXT NOT NULL,
    cycle TEXT NOT NULL,                   -- what the cloud's Ack(ref=...) names
    kind TEXT NOT NULL,                    -- plan | once | command (only plan rows are ever thinned)
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL                     -- the BatchResult, as the protocol encodes it
);
CREATE INDEX IF NOT EXISTS results_by_cycle ON results (bus, cycle);
CREATE TABLE IF NOT EXISTS commands (
    cmd TEXT PRIMARY KEY,
    bus TEXT NOT NULL,
    state TEXT NOT NULL,                   -- queued | running | done
    received_ms INTEGER NOT NULL,
    request TEXT NOT NULL,                 -- the Command as received
    result TEXT                            -- the BatchResult once done
);
CREATE TABLE IF NOT EXISTS plans (
    bus TEXT PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    body TEXT NOT NULL                     -- the standing Batch
);
CREATE TABLE IF NOT EXISTS channel_state (
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,               -- up (sealed here) | down (opened here)
    state TEXT NOT NULL,                   -- ChannelState.to_dict()
    PRIMARY KEY (channel, direction)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
THIN_TARGET = 0.9  # thin down to this share of max_rows, so one full buffer does not thin on every insert
MAX_THIN_PASSES = 8
T = TypeVar("T")


@dataclass(frozen=True)
class StoredResult:
    id: int
    bus: str
    cycle: str
    kind: str
    created_ms: int
    body: str

    def message(self) -> BatchResult:
        parsed = parse_message(self.body.encode("ascii"))
        if not isinstance(parsed, BatchResult):
            raise ProtocolError(Reason.INVALID_MESSAGE, f"stored row {self.id} is not a batch result")
        return parsed


@dataclass(frozen=True)
class Waiting:
    id: int
    cycle: str
    size: int


@dataclass(frozen=True)
class CommandRecord:
    cmd: str
    bus: str
    state: str
    request: str
    result: str | None


@dataclass(frozen=True)
class Thinning:
    deleted: int
    remaining: int
    older_than_ms: int


def encode(message: Any) -> str:
    return encode_message(message).decode("ascii")


class Store:
    """Synchronous SQLite access; use it from one thread only."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- results waiting for an ack ------------------------------------------------------------

    def add_result(self, result: BatchResult, kind: str, created_ms: int) -> int:
        cursor = self._db.execute("INSERT INTO results (bus, cycle, kind, created_ms, body) VALUES (?, ?, ?, ?, ?)",
                                  (result.bus, result.cycle, kind, created_ms, encode(result)))
        return int(cursor.lastrowid or 0)

    def waiting(self, bus: str, after_id: int, limit: int) -> list[Waiting]:
        """Oldest-first results of ``bus`` after row ``after_id``: ids, cycles and sizes, not bodies."""
        rows = self._db.execute("SELECT id, cycle, LENGTH(body) FROM results WHERE bus = ? AND id > ? "
                                "ORDER BY id LIMIT ?", (bus, after_id, limit))
        return [Waiting(*row) for row in rows]

    def rows(self, ids: Sequence[int]) -> list[StoredResult]:
        """The stored results with these ids, in id order (rows deleted meanwhile are left out)."""
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(f"SELECT id, bus, cycle, kind, created_ms, body FROM results WHERE id IN ({marks}) "
                                "ORDER BY id", tuple(ids))
        return [StoredResult(*row) for row in rows]

    def pending(self, bus: str, limit: int = 512) -> list[StoredResult]:
        """Oldest-first results of ``bus``, bodies included (tests and tools)."""
        return self.rows([w.id for w in self.waiting(bus, 0, limit)])

    def next_id(self) -> int:
        """Every row inserted from now on has an id at least this (AUTOINCREMENT never reuses one)."""
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM results").fetchone()[0])

    def has_result(self, bus: str, cycle: str) -> bool:
        row = self._db.execute("SELECT 1 FROM results WHERE bus = ? AND cycle = ? LIMIT 1", (bus, cycle)).fetchone()
        return row is not None

    def delete_ids(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        with self._db:
            self._db.execute("BEGIN")
            deleted = sum(self._db.execute("DELETE FROM results WHERE id = ?", (i,)).rowcount for i in ids)
        return deleted

    def delete_cycle(self, bus: str, cycle: str) -> int:
        return self._db.execute("DELETE FROM results WHERE bus = ? AND cycle = ?", (bus, cycle)).rowcount

    def count_by_bus(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT bus, COUNT(*) FROM results GROUP BY bus").fetchall())

    # -- the buffer is full: thin old standing-plan results --------------------------------------

    def make_room(self, max_rows: int, older_than_ms: int) -> Thinning | None:
        """Thin standing-plan results (every other one, oldest first) until under ``THIN_TARGET``."""
        total = self._count()
        if total <= max_rows:
            return None
        deleted, cutoff = self._thin(older_than_ms), older_than_ms
        for _ in range(MAX_THIN_PASSES):
            if self._count() <= max_rows * THIN_TARGET:
                break
            cutoff = self._median_plan_ms()  # still full: thin the older half of what is left, again
            thinned = self._thin(cutoff + 1)
            if not thinned:
                break
            deleted += thinned
        remaining = self._count()
        if deleted:
            self._add_meta_int("thinned_total", deleted)
        return Thinning(deleted, remaining, cutoff)

    def _thin(self, older_than_ms: int) -> int:
        return self._db.execute(
            "DELETE FROM results WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
            "(PARTITION BY bus ORDER BY id) AS n FROM results WHERE kind = 'plan' AND created_ms < ?) "
            "WHERE n % 2 = 0)", (older_than_ms,)).rowcount

    def _median_plan_ms(self) -> int:
        row = self._db.execute("SELECT created_ms FROM results WHERE kind = 'plan' ORDER BY id LIMIT 1 OFFSET "
                               "(SELECT COUNT(*) / 2 FROM results WHERE kind = 'plan')").fetchone()
        return int(row[0]) if row else 0

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    # -- commands: each id executed at most once ---------------------------------------------------

    def command(self, cmd: str) -> CommandRecord | None:
        row = self._db.execute("SELECT cmd, bus, state, request, result FROM commands WHERE cmd = ?",
                               (cmd,)).fetchone()
        return CommandRecord(*row) if row else None

    def command_received(self, cmd: str, bus: str, request: str, now_ms: int) -> None:
        self._db.execute("INSERT INTO commands (cmd, bus, state, received_ms, request) VALUES (?, ?, 'queued', ?, ?)",
                         (cmd, bus, now_ms, request))

    def command_started(self, cmd: str) -> None:
        self._db.execute("UPDATE commands SET state = 'running' WHERE cmd = ?", (cmd,))

    def command_done(self, result: BatchResult, created_ms: int) -> int:
        """Record the command's result and queue it for the cloud, in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE commands SET state = 'done', result = ? WHERE cmd = ?",
                             (encode(result), result.cycle))
            return self.add_result(result, "command", created_ms)

    def commands_in(self, state: str) -> list[CommandRecord]:
        rows = self._db.execute("SELECT cmd, bus, state, request, result FROM commands WHERE state = ? "
                                "ORDER BY received_ms", (state,))
        return [CommandRecord(*row) for row in rows]

    def forget_commands(self, received_before_ms: int) -> int:
        return self._db.execute("DELETE FROM commands WHERE state = 'done' AND received_ms < ?",
                                (received_before_ms,)).rowcount

    # -- standing plans -----------------------------------------------------------------------------

    def save_plan(self, batch: Batch, now_ms: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO plans (bus, received_ms, body) VALUES (?, ?, ?)",
                         (batch.bus, now_ms, encode(batch)))

    def plans(self) -> list[Batch]:
        found = []
        for (body,) in self._db.execute("SELECT body FROM plans ORDER BY bus"):
            plan = parse_message(body.encode("ascii"))
            if isinstance(plan, Batch):
                found.append(plan)
        return found

    # -- tunnel sequence state ----------------------------------------------------------------------

    def channel_states(self) -> dict[tuple[str, str], ChannelState]:
        rows = self._db.execute("SELECT channel, direction, state FROM channel_state")
        return {(channel, direction): ChannelState.from_dict(json.loads(state)) for channel, direction, state in rows}

    def save_channel_states(self, states: Iterable[tuple[str, str, ChannelState]]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO channel_state (channel, direction, state) VALUES (?, ?, ?)",
                                 [(c, d, json.dumps(s.to_dict())) for c, d, s in states])

    # -- meta -----------------------------------------------------------------------------------------

    def meta_int(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _add_meta_int(self, key: str, amount: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (key, str(self.meta_int(key) + amount)))


class Database:
    """The store behind one worker thread: ``await db.run(Store.method, args...)`` never blocks the loop."""

    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bridge-db")
        self._store = self._executor.submit(Store, path).result()

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """``call(store, *args)`` on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, self._store, *args)

    def run_blocking(self, call: Callable[..., T], *args: Any) -> T:
        """The same, for start-up before the event loop serves anything."""
        return self._executor.submit(call, self._store, *args).result()

    def close(self) -> None:
        self._executor.submit(self._store.close).result()
        self._executor.shutdown(wait=True)
