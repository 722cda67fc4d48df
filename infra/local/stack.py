"""Bring up the local stack in-process: settings from the environment, DynamoDB Local, tables, host.

Used by ``make demo``, by the test fixtures and by the benchmarks, so all three run the same parts.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local import dynamodb_local
from infra.local.dynamodb_local import DynamoDBLocal
from infra.local.host import LocalHost


def configure_environment(ddb_endpoint: str, *, session_secret: str | None = None, table_prefix: str = "voltvend-",
                          cookie_secure: bool = True) -> None:
    """Point the app at a DynamoDB endpoint; must run before the first ``get_services()``."""
    os.environ.update({
        "DDB_HOST": ddb_endpoint,
        "VOLTVEND_SESSION_SECRET": session_secret or secrets.token_urlsafe(32),
        "VOLTVEND_TABLE_PREFIX": table_prefix,
        "VOLTVEND_COOKIE_SECURE": "1" if cookie_secure else "0",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
    })
    from chalicelib.bootstrap import reset_services
    from chalicelib.web.guards import signer

    reset_services()
    signer.cache_clear()


def use_management_api(url: str) -> None:
    """Tell the app where to push to bridge connections (the local host's management endpoint)."""
    from chalicelib.bootstrap import reset_services

    os.environ["VOLTVEND_WS_MANAGEMENT_URL"] = url
    reset_services()


def use_public_url(url: str) -> None:
    """Tell the app its own address: card checkouts return there, and the local card page posts its events to the
    webhook there."""
    from chalicelib.bootstrap import reset_services

    os.environ["VOLTVEND_PUBLIC_URL"] = url
    reset_services()


def prepare_tables() -> list[str]:
    from chalicelib.adapters.dynamodb.tables import create_tables
    from chalicelib.bootstrap import get_services

    get_services()  # binds the models to the configured endpoint
    return create_tables()


@dataclass
class LocalStack:
    ddb: DynamoDBLocal
    host: LocalHost | None = None

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
        self.ddb.stop()


def start_stack(*, data_dir: Path | None = None, ddb_port: int | None = None, app: Any = None,
                host_ports: tuple[int, int, int] = (0, 0, 0), session_secret: str | None = None,
                run_schedules: bool = True) -> LocalStack:
    """DynamoDB Local (in memory unless ``data_dir``), tables, and the app served by a LocalHost."""
    ddb = dynamodb_local.start(data_dir=data_dir, port=ddb_port)
    stack = LocalStack(ddb)
    try:
        configure_environment(ddb.endpoint, session_secret=session_secret)
        prepare_tables()
        if app is not None:
            http_port, ws_port, management_port = host_ports
            stack.host = LocalHost(app, http_port=http_port, ws_port=ws_port, management_port=management_port,
                                   run_schedules=run_schedules)
            stack.host.start()
            use_management_api(stack.host.management_url)
            use_public_url(stack.host.http_url)
    except BaseException:
        stack.stop()
        raise
    return stack
