"""site_scan: a whole site (8 buses × 32 meters) read through the real bridge, cycle start → every state stored.

Baseline: the slowest single bus's wire time, computed from the frames of its read plan at 9600 8N1 with
the meters' 20 ms turnaround; buses run in parallel, so the site should take little more than that bus.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench.stack_site import bench_site
from bench.timing import ratio_result

NAME = "site_scan"


def plan_wire_time(meters: list[Any], bus: str) -> float:
    from gateway_bridge.rtu import LineSettings, expected_response_length, wire_time

    from chalicelib.services.reading_plan import read_txns

    line = LineSettings(baud=9600, parity="N", stop_bits=1, turnaround_ms=20)
    txns = read_txns(m for m in meters if m.collector_id == bus)
    return sum(wire_time(len(t.req), expected_response_length(t.req), line) for t in txns)


def scan_once(site: Any) -> float:
    """Seconds from asking for the cycle until every meter's state holds a reading taken after the ask.

    The watcher asks only for the meters still missing, and not too often, so that measuring does not
    itself load the DynamoDB Local that ingestion is writing to."""
    from chalicelib.bootstrap import get_services

    services = get_services()
    started = time.time()
    services.site_control.read_now(site.actor, site.site_id)
    missing = {m.meter_id for m in site.meters}
    while True:
        states = services.readings.get_states(site.actor.operator_id, site.site_id, missing)
        missing -= {s.meter_id for s in states if s.last_answer_at and s.last_answer_at.timestamp() >= started}
        if not missing:
            return time.time() - started
        if time.time() - started > 120:
            raise TimeoutError(f"{len(missing)} meters never reported")
        time.sleep(0.1)


def run(quick: bool) -> Iterator[dict[str, Any]]:
    buses, per_bus = (8, 32)
    with bench_site(buses, per_bus) as site:
        scan_once(site)  # warm: connections, Lambda-style lazy set-up, DynamoDB Local's JIT
        samples = [scan_once(site) for _ in range(1 if quick else 3)]
        baseline = max(plan_wire_time(site.meters, f"bus{b}") for b in range(buses))
    yield ratio_result(statistics.median(samples), baseline, "s", buses=buses, meters=buses * per_bus,
                       runs=len(samples), worst_s=round(max(samples), 4))
