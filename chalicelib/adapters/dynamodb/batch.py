"""Batch reads and writes on the hot path of ingestion, with PynamoDB's models as the schema but not its objects.

PynamoDB batches per model, so a reading and a state per meter would take two calls per 25 items of
each table; packed together they share calls (fewer round trips, and fewer billed requests in AWS).
The calls of one put go out side by side: they touch distinct items, and a bus run's write then takes
about one round trip instead of three.

Every bus run writes 64 items and reads 32: building a model object per item costs more CPU than the
rest of the run's work, so items are serialized straight from their values by the model's own attributes
(``item_attributes``), and read back from DynamoDB's answer (``batch_get``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from pynamodb.attributes import DiscriminatorAttribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import AttributeNullError
from pynamodb.models import Model

BATCH_LIMIT = 25
GET_LIMIT = 100
RETRIES = 8
PARALLEL_CALLS = 4

_senders = ThreadPoolExecutor(max_workers=PARALLEL_CALLS, thread_name_prefix="ddb-batch")


Attributes = dict[str, dict[str, Any]]


def item_attributes(model: type[Model], **values: Any) -> tuple[str, Attributes]:
    """The table and DynamoDB attributes of ``model(**values)``, exactly as its ``serialize()`` gives them
    (defaults for what is not given, the discriminator, null checks), without building the model. Not for models
    with a version attribute: their writes must be conditional, which a batch write is not."""
    attributes = model.get_attributes()
    unknown = values.keys() - attributes.keys()
    if unknown:
        raise ValueError(f"{model.__name__} has no attribute {sorted(unknown)[0]}")
    if any(isinstance(attribute, VersionAttribute) for attribute in attributes.values()):
        raise ValueError(f"{model.__name__} is versioned: write it with its conditional save, not in a batch")
    serialized: Attributes = {}
    for name, attribute in attributes.items():
        if name in values:
            value = values[name]  # given, even as None: the model would not put its default there either
        elif isinstance(attribute, DiscriminatorAttribute):
            value = model
        else:
            default = attribute.default_for_new if attribute.default_for_new is not None else attribute.default
            value = default() if callable(default) else default
        serialized_value = attribute.serialize(value) if value is not None else None
        if serialized_value is None:
            if not attribute.null:
                raise AttributeNullError(name)
            continue
        serialized[attribute.attr_name] = {attribute.attr_type: serialized_value}
    return model.Meta.table_name, serialized


def put_items(connection: Connection, items: Iterable[tuple[str, Attributes]]) -> None:
    """Put every item (table and attributes, of any of our tables), retrying what DynamoDB leaves unprocessed."""
    requests = [(table, {"PutRequest": {"Item": attributes}}) for table, attributes in items]
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


def batch_get(connection: Connection, table: str, keys: list[dict[str, Any]],
              attributes: tuple[str, ...]) -> list[dict[str, Any]]:
    """The items of ``keys`` that exist (in no particular order), with just ``attributes``, as DynamoDB's raw answer
    gives them; what DynamoDB leaves unprocessed is asked again."""
    names = {f"#a{n}": name for n, name in enumerate(attributes)}
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), GET_LIMIT):
        pending: dict[str, Any] = {table: {"Keys": keys[start:start + GET_LIMIT], "ExpressionAttributeNames": names,
                                           "ProjectionExpression": ", ".join(names)}}
        for attempt in range(RETRIES):
            answer = connection.dispatch("BatchGetItem", {"RequestItems": pending})
            found += answer.get("Responses", {}).get(table, [])
            pending = answer.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise RuntimeError(f"DynamoDB left keys unread after {RETRIES} tries")
    return found
