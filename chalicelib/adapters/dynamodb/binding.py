"""Point the models at a table and an endpoint, once per process, sharing one botocore client.

A PynamoDB connection costs 85–280 ms to build, and every model class would otherwise build its
own; all item classes live in one table, so they share the base class's connection.
"""

from __future__ import annotations

from pynamodb.connection import Connection

from chalicelib.adapters.dynamodb.models import ALL_ITEM_CLASSES, MainItem, ReadingItem
from chalicelib.config import Settings

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def bind_models(settings: Settings) -> Connection:
    """Bind every model to the configured table; returns the shared low-level connection."""
    meta = MainItem.Meta
    meta.table_name = settings.main_table
    meta.region = settings.region
    meta.host = settings.ddb_host
    if settings.ddb_host:
        meta.aws_access_key_id = LOCAL_CREDENTIALS["aws_access_key_id"]
        meta.aws_secret_access_key = LOCAL_CREDENTIALS["aws_secret_access_key"]
    MainItem._connection = None
    table_connection = MainItem._get_connection()
    for item_class in ALL_ITEM_CLASSES:
        item_class._connection = table_connection
    _bind_readings(settings)
    return table_connection.connection


def _bind_readings(settings: Settings) -> None:
    meta = ReadingItem.Meta
    meta.table_name = settings.readings_table
    meta.region = settings.region
    meta.host = settings.ddb_host
    if settings.ddb_host:
        meta.aws_access_key_id = LOCAL_CREDENTIALS["aws_access_key_id"]
        meta.aws_secret_access_key = LOCAL_CREDENTIALS["aws_secret_access_key"]
    ReadingItem._connection = None
