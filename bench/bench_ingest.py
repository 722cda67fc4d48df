"""ingest: bus runs decoded, priced, alarm-checked and stored per second, against raw PynamoDB batch_write.

One process, DynamoDB Local in memory. Each run is a 32-meter DTSY1352 bus answering its read plan
(RTU frames built from register images). The site has a four-rate time-of-use tariff with a three-tier
ladder; a quarter of the meters are cloud-billed (each interval priced and stored as usage), the rest
prepaid (the ladder's next prices planned when a tier is crossed). The baseline writes, with bare
``batch_write``, the same items ingestion stores (a reading and a state per meter, the alarm and billing
memory living in the state, and the cloud-billed meters' usage), in the same run.
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
CLOUD_BILLED_EVERY = 4  # meters m4, m8, ... are billed by the cloud
TARIFF = {"effective_from": "2026-01-01T00:00:00+08:00",
          "prices": {"sharp": "1.2000", "peak": "0.9500", "flat": "0.6500", "valley": "0.3500"},
          "schedule": [{"starts_on": [1, 1], "bands": [["00:00", "valley"], ["08:00", "flat"], ["10:00", "peak"],
                                                       ["11:00", "sharp"], ["12:00", "flat"], ["18:00", "peak"],
                                                       ["22:00", "valley"]]}],
          "ladder": {"upper_bounds_kwh": ["20.00", "40.00"], "increments": ["0", "0.0500", "0.3000"]}}


def bus_run(meters: list[Any], cycle: str, at_ms: int, run: int) -> Any:
    """Run ``run`` of a bus whose meters use 0.75 kWh and 1.50 of credit between runs: over 60 runs their balance
    falls through alarm 1, alarm 2 and arrears, as a busy bus's would (energy only ever rises, as a meter's does)."""
    from decimal import Decimal

    from tests.support.bus_runs import bus_run as build

    def values(meter: Any) -> dict[str, Any]:
        return {"energy_total": Decimal(120_000 + 75 * run + meter.address) / 100,
                "remaining_amount": Decimal(9000 - 150 * run) / 100,
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
    meters = [Meter(op, site_id, f"m{a}", f"S{a}", "DTSY1352", "bus0", a, f"u{a}",
                    BillingMode.CLOUD_BILLED if a % CLOUD_BILLED_EVERY == 0 else BillingMode.PREPAID_METER)
              for a in range(1, METERS + 1)]
    services.tenancy.add_meters(meters)
    session = services.auth.login(op, "admin", "bench-password-2026")
    actor = services.auth.resolve(op, session.session_id)
    assert actor is not None
    services.tariffs.add_site_version(actor, site_id, TARIFF)
    return services, meters


def stored_items(operator_id: str, site_id: str, meters: list[Any]) -> tuple[list[Any], list[Any]]:
    """What one run of ingestion stored: the same items, content and all, for the baseline to write again raw
    (a reading per meter, each meter's state, and each cloud-billed meter's usage)."""
    from chalicelib.adapters.dynamodb.keys import site_pk
    from chalicelib.adapters.dynamodb.models import MeterStateItem, ReadingItem, UsageItem

    readings = [next(iter(ReadingItem.query(f"OP#{operator_id}#METER#{m.meter_id}", limit=1))) for m in meters]
    site = site_pk(operator_id, site_id)
    states: list[Any] = list(MeterStateItem.query(site, MeterStateItem.sk.startswith("STATE#")))
    usage = [next(iter(UsageItem.query(site, UsageItem.sk.startswith(f"USE#{m.meter_id}#"),
                                       scan_index_forward=False, limit=1)))
             for m in meters if m.billing_mode.value == "cloud"]
    return readings, states + usage


def raw_batch_write(readings: list[Any], site_items: list[Any], tag: str) -> None:
    """Bare batch_write of one run's worth of the same items, under fresh keys marked ``tag``."""
    from chalicelib.adapters.dynamodb.models import MainItem, ReadingItem

    with ReadingItem.batch_write() as batch:
        for item in readings:
            batch.save(ReadingItem(pk=f"{item.pk}#{tag}", at_ms=item.at_ms, values=item.values, expires=item.expires))
    with MainItem.batch_write() as batch:
        for item in site_items:
            copy = type(item)(**{name: getattr(item, name) for name in item.get_attributes() if name != "kind"})
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

    # DynamoDB Local's JIT takes a few dozen calls to settle: both paths are warmed before either is timed.
    runs, block, warm_runs = (10, 5, 5) if quick else (60, 5, 30)
    server = dynamodb_local.start()
    try:
        configure_environment(server.endpoint)
        prepare_tables()
        services, warm_meters = setup()
        _, meters = setup()
        ingest = services.bridge_link._ingest
        start_ms = int(time.time() * 1000) - (runs + warm_runs) * 60_000
        runs_of = [bus_run(meters, f"c{r}", start_ms + r * 60_000, r) for r in range(runs)]
        warm = [bus_run(warm_meters, f"w{r}", start_ms + r * 60_000, r) for r in range(warm_runs)]
        # Warm both paths first (the JVM's JIT favours whichever runs later), then alternate blocks.
        timed_runs(ingest, warm_meters, warm)
        readings, states = stored_items(warm_meters[0].operator_id, warm_meters[0].site_id, warm_meters)
        one_run = readings[:METERS]
        timed_raw(one_run, states, [f"warm{r}" for r in range(warm_runs)])
        ours = raw = 0.0
        for first in range(0, runs, block):
            raw_first = (first // block) % 2 == 1  # ABBA order, so neither path always follows the other
            if raw_first:
                raw += timed_raw(one_run, states, [f"raw{r}" for r in range(first, first + block)])
            ours += timed_runs(ingest, meters, runs_of[first:first + block])
            if not raw_first:
                raw += timed_raw(one_run, states, [f"raw{r}" for r in range(first, first + block)])
    finally:
        server.stop()
    count = runs * METERS
    yield ratio_result(count / ours, count / raw, "readings/s", readings=count, runs=runs, meters=METERS)
