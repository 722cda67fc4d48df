"""ingest: bus runs decoded, alarm-checked and stored per second, against raw PynamoDB batch_write.

One process, DynamoDB Local in memory. Each run is a 32-meter DTSY1352 bus answering its read plan
(RTU frames built from register images). The baseline writes, with bare ``batch_write``, the same items
ingestion stores (a reading and a state per meter, the alarm memory living in the state), in the same run.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from bench.timing import ratio_result

NAME = "ingest"
METERS = 32


def bus_run(meters: list[Any], cycle: str, at_ms: int, balance: int) -> Any:
    from decimal import Decimal

    from tests.support.bus_runs import bus_run as build

    def values(meter: Any) -> dict[str, Any]:
        return {"energy_total": Decimal(at_ms % 100000) / 100, "remaining_amount": Decimal(balance) / 100,
                "purchase_count": 3, "voltage": Decimal("230.1"), "relay_state": 0}

    return build(meters, cycle, "bus0", at_ms, values)


def setup() -> tuple[Any, list[Any]]:
    from chalicelib.bootstrap import get_services
    from chalicelib.domain.tenancy import BillingMode, Meter, Site
    from chalicelib.services.audit import operation

    services, op, site_id = get_services(), "bench-ingest", f"site_{secrets.token_hex(3)}"
    now = datetime.now(UTC)
    if services.tenancy.get_operator(op) is None:
        from chalicelib.adapters.clock import SystemClock
        from chalicelib.adapters.passwords import Argon2PasswordHasher
        from chalicelib.services.provisioning import OperatorOnboarding

        OperatorOnboarding(services.tenancy, Argon2PasswordHasher(), SystemClock()).onboard(
            op, "Ingest bench", "admin", "bench-password-2026")
    services.tenancy.add_site(Site(op, site_id, "Ingest"), operation(op, "bench", "site.create", site_id, now))
    meters = [Meter(op, site_id, f"m{a}", f"S{a}", "DTSY1352", "bus0", a, f"u{a}", BillingMode.PREPAID_METER)
              for a in range(1, METERS + 1)]
    services.tenancy.add_meters(meters)
    return services, meters


def stored_items(operator_id: str, site_id: str, meters: list[Any]) -> tuple[list[Any], list[Any]]:
    """What ingestion stored: the same items, content and all, for the baseline to write again raw
    (one reading per meter per run, and each meter's state)."""
    from chalicelib.adapters.dynamodb.keys import site_pk
    from chalicelib.adapters.dynamodb.models import MeterStateItem, ReadingItem

    readings = [next(iter(ReadingItem.query(f"OP#{operator_id}#METER#{m.meter_id}", limit=1))) for m in meters]
    states = list(MeterStateItem.query(site_pk(operator_id, site_id), MeterStateItem.sk.startswith("STATE#")))
    return readings, states


def raw_batch_write(readings: list[Any], states: list[Any], tag: str) -> None:
    """Bare batch_write of one run's worth of the same items, under fresh keys marked ``tag``."""
    from chalicelib.adapters.dynamodb.models import MeterStateItem, ReadingItem

    with ReadingItem.batch_write() as batch:
        for item in readings:
            batch.save(ReadingItem(pk=f"{item.pk}#{tag}", at_ms=item.at_ms, values=item.values, expires=item.expires))
    with MeterStateItem.batch_write() as batch:
        for item in states:
            copy = MeterStateItem(**{name: getattr(item, name) for name in item.get_attributes()})
            copy.sk = f"{item.sk}#{tag}"
            batch.save(copy)


def timed_runs(ingest: Any, meters: list[Any], runs: list[Any]) -> float:
    op, site_id = meters[0].operator_id, meters[0].site_id
    started = time.perf_counter()
    for result in runs:
        ingest.ingest(op, site_id, "bus0", result, meters, datetime.now(UTC))
    return time.perf_counter() - started


def timed_raw(readings: list[Any], states: list[Any], tags: list[str]) -> float:
    started = time.perf_counter()
    for tag in tags:
        raw_batch_write(readings, states, tag)
    return time.perf_counter() - started


def run(quick: bool) -> Iterator[dict[str, Any]]:
    from infra.local import dynamodb_local
    from infra.local.stack import configure_environment, prepare_tables

    runs, block, warm_runs = (10, 5, 5) if quick else (60, 5, 10)
    server = dynamodb_local.start()
    try:
        configure_environment(server.endpoint)
        prepare_tables()
        services, warm_meters = setup()
        _, meters = setup()
        ingest = services.bridge_link._ingest
        start_ms = int(time.time() * 1000) - (runs + warm_runs) * 60_000
        runs_of = [bus_run(meters, f"c{r}", start_ms + r * 60_000, 9000 - r * 150) for r in range(runs)]
        warm = [bus_run(warm_meters, f"w{r}", start_ms + r * 60_000, 9000 - r * 150) for r in range(warm_runs)]
        # Warm both paths first (the JVM's JIT favours whichever runs later), then alternate blocks.
        timed_runs(ingest, warm_meters, warm)
        readings, states = stored_items(warm_meters[0].operator_id, warm_meters[0].site_id, warm_meters)
        one_run = readings[:METERS]
        timed_raw(one_run, states, [f"warm{r}" for r in range(warm_runs)])
        ours = raw = 0.0
        for first in range(0, runs, block):
            ours += timed_runs(ingest, meters, runs_of[first:first + block])
            raw += timed_raw(one_run, states, [f"raw{r}" for r in range(first, first + block)])
    finally:
        server.stop()
    count = runs * METERS
    yield ratio_result(count / ours, count / raw, "readings/s", readings=count, runs=runs, meters=METERS)
