"""Point the models at a table and an endpoint, once per process, sharing one botocore client.

A PynamoDB connection costs 85–280 ms to build, and every model class would otherwise build its
own; all item classes live in one table, so they share the base class's connection.
"""

from __future__ import annotations

from pynamodb.connection import Connection
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.models import ALL_ITEM_CLASSES, MainItem, ReadingItem
from chalicelib.config import Settings

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def bind_models(settings: Settings) -> Connection:
    """Bind every model to the configured table; returns the shared low-level connection."""
    _bind(MainItem, settings.main_table, settings)
    table_connection = MainItem._get_connection()
    for item_class in ALL_ITEM_CLASSES:
        item_class._connection = table_connection
    _bind(ReadingItem, settings.readings_table, settings)
    return table_connection.connection


def _bind(model: type[Model], table_name: str, settings: Settings) -> None:
    meta = model.Meta
    meta.table_name = table_name
    meta.region = settings.region
    meta.host = settings.ddb_host
    if settings.ddb_host:
        meta.aws_access_key_id = LOCAL_CREDENTIALS["aws_access_key_id"]
        meta.aws_secret_access_key = LOCAL_CREDENTIALS["aws_secret_access_key"]
    model._connection = None
