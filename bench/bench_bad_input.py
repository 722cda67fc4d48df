"""bad_input: every HTTP route called by signed-in users (an administrator's cookie and CSRF token, a bearer token
for the JSON API, a shop tenant's cookie) with malformed, missing, oversized and wrong-typed path parameters,
queries, forms and JSON bodies, through Chalice's test client against DynamoDB Local. Counts the answers: 0 server
errors, and every refusal with a message (TARGETS.md). The variants are in ``tests/support/bad_input.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

NAME = "bad_input"


def run(quick: bool) -> Iterator[dict[str, Any]]:
    from chalice.test import Client

    from infra.local import dynamodb_local
    from infra.local.stack import configure_environment, prepare_tables

    server = dynamodb_local.start()
    try:
        configure_environment(server.endpoint)
        prepare_tables()
        from app import app
        from bench.operators import onboard
        from tests.support.bad_input import prepare, routes, sweep

        ids = prepare(*onboard("bench-bad", admin="boss"))
        with Client(app) as client:
            outcome = sweep(client, app, ids, quick=quick)
    finally:
        server.stop()
    count = len(routes(app))
    yield {"value": outcome.calls, "unit": "calls", "baseline": count, "ratio": round(outcome.calls / count, 2),
           "routes": count, "server_errors": len(outcome.server_errors), "unexplained": len(outcome.unexplained),
           "unescaped": len(outcome.unescaped),
           "by_status": {str(k): v for k, v in sorted(outcome.by_status.items())},
           "first_errors": outcome.server_errors[:5] + outcome.unexplained[:5] + outcome.unescaped[:5],
           "target": "0 server errors, every refusal with a message"}
