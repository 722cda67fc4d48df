"""Create the project's tables (never at import time): called by the local stack and the tests."""

from __future__ import annotations

from chalicelib.adapters.dynamodb.models import MainItem, ReadingItem


def create_tables(wait: bool = True) -> list[str]:
    """Create any missing table; returns the names created."""
    created = []
    for model in (MainItem, ReadingItem):
        if not model.exists():
            model.create_table(wait=wait, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
    return created
