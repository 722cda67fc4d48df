"""Create the project's tables (never at import time): called by the local stack and the tests."""

from __future__ import annotations

from chalicelib.adapters.dynamodb.models import MainItem


def create_tables(wait: bool = True) -> list[str]:
    """Create any missing table; returns the names created."""
    created = []
    if not MainItem.exists():
        MainItem.create_table(wait=wait, billing_mode="PAY_PER_REQUEST")
        created.append(MainItem.Meta.table_name)
    return created
