"""Writing items of several tables in as few BatchWriteItem calls as DynamoDB allows (25 items each).

PynamoDB batches per model, so a reading and a state per meter would take two calls per 25 items of
each table; packed together they share calls (fewer round trips, and fewer billed requests in AWS).
The calls of one put go out side by side: they touch distinct items, and a bus run's write then takes
about one round trip instead of three.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from pynamodb.connection import Connection
from pynamodb.models import Model

BATCH_LIMIT = 25
RETRIES = 8
PARALLEL_CALLS = 4

_senders = ThreadPoolExecutor(max_workers=PARALLEL_CALLS, thread_name_prefix="ddb-batch")


def put_items(connection: Connection, items: Iterable[Model]) -> None:
    """Put every item (of any of our tables), retrying what DynamoDB leaves unprocessed."""
    requests = [(item.Meta.table_name, {"PutRequest": {"Item": item.serialize()}}) for item in items]
    chunks = [requests[start:start + BATCH_LIMIT] for start in range(0, len(requests), BATCH_LIMIT)]
    if len(chunks) <= 1:
        for chunk in chunks:
            _write(connection, chunk)
        return
    calls = [_senders.submit(_write, connection, chunk) for chunk in chunks]
    wait(calls)  # no call is left running behind a failure: all end, then the first failure is raised
    for call in calls:
        call.result()


def _write(connection: Connection, requests: list[tuple[str, dict[str, Any]]]) -> None:
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for table, request in requests:
        pending[table].append(request)
    for attempt in range(RETRIES):
        answer = connection.dispatch("BatchWriteItem", {"RequestItems": dict(pending)})
        pending = answer.get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(min(0.05 * 2**attempt, 1.0))  # throttled: back off, then send what is left
    raise RuntimeError(f"DynamoDB left {sum(len(v) for v in pending.values())} items unwritten after {RETRIES} tries")
