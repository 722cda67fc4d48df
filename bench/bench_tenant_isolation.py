"""tenant_isolation: every route that names an object, called by operator A's administrator, API client and shop
tenant with operator B's ids, and by the tenant with another shop's ids, through Chalice's test client against
DynamoDB Local. Counts calls not refused, answers showing the other party's data, and changes to the other party's
data: all must be 0 (TARGETS.md). The calls are in ``tests/support/tenant_isolation.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

NAME = "tenant_isolation"


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
        from tests.support.tenant_isolation import prepare_both, snapshot, sweep

        operators = [onboard(f"bench-iso-{name}", admin="boss") for name in ("a", "b")]
        mine, other, other_shop = prepare_both(*operators[0], *operators[1])
        watched = [(o.ids["operator_id"], o.ids["site_id"], o.ids["account_id"], o.ids.get("invitation_id", ""))
                   for o in (other, other_shop)]
        before = [snapshot(*w) for w in watched]
        with Client(app) as client:
            outcome = sweep(client, app, mine, other, other_shop)
        changed = sum(snapshot(*w) != b for w, b in zip(watched, before, strict=True))
    finally:
        server.stop()
    problems = len(outcome.not_refused) + len(outcome.leaks) + len(outcome.server_errors) + changed
    yield {"value": problems, "unit": "problems", "baseline": outcome.calls,
           "ratio": round(problems / outcome.calls, 4), "calls": outcome.calls,
           "not_refused": len(outcome.not_refused), "leaks": len(outcome.leaks),
           "server_errors": len(outcome.server_errors), "changed_parties": changed,
           "first": (outcome.not_refused + outcome.leaks + outcome.server_errors)[:5], "target": "0 leaks, 0 changes"}
