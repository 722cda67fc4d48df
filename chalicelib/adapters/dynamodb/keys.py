"""Key builders for the main table. Every tenant key starts with ``OP#<operator_id>``.

The one exception is the platform registry partition (``PLATFORM``), which lists operators and
sites so that scheduled jobs can find their work; it holds ids only, no tenant data.
"""

from __future__ import annotations

PLATFORM_PK = "PLATFORM"


def operator_pk(operator_id: str) -> str:
    return f"OP#{operator_id}"


def site_pk(operator_id: str, site_id: str) -> str:
    return f"OP#{operator_id}#SITE#{site_id}"


def oplog_pk(operator_id: str, month: str) -> str:
    return f"OP#{operator_id}#LOG#{month}"


def staff_sk(username: str) -> str:
    return f"STAFF#{username}"


def session_sk(session_id: str) -> str:
    return f"SESSION#{session_id}"
