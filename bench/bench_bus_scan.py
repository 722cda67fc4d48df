"""bus_scan: does the bridge's bus worker keep up with the wire?

The bridge's ``BusWorker`` (the same code ``voltvend-bridge run`` uses, over its RTU-over-TCP link)
reads all 32 meters of one bus, one 30-register FC03 read each (ACR profile: one contiguous block at
0), through the simulator process emulating a 9600-baud 8N1 line with a 20 ms meter turnaround.
The baseline is the wire time ``rtu.wire_time`` gives for the frames actually exchanged (request and
answer lengths as returned by the worker). Target: ratio <= 1.05.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway_bridge.bridge.bus import BusWorker, Job, JobKind
from gateway_bridge.bridge.links import RtuTcpLink
from gateway_bridge.protocol import BatchResult, Txn
from gateway_bridge.rtu import build_read_request, wire_time

from bench.bench_sim_wire import LINE, METERS, REGISTERS, start_simulator, stop_simulator
from bench.timing import ratio_result

NAME = "bus_scan"


def _ignore(job: Job, result: BatchResult) -> None:
    return None


def _wire_seconds(txns: tuple[Txn, ...], results: list[BatchResult]) -> float:
    by_id = {txn.id: txn for txn in txns}
    total = 0.0
    for result in results:
        for answer in result.results:
            if answer.resp is None:
                raise RuntimeError(f"meter {answer.id} did not answer: {answer.error}")
            total += wire_time(len(by_id[answer.id].req), len(answer.resp), LINE)
    return total


async def sweep(bus: dict[str, Any], sweeps: int) -> tuple[float, float, int]:
    """(elapsed seconds, wire seconds, transactions) for ``sweeps`` sweeps of every meter."""
    link = RtuTcpLink(bus["host"], bus["port"], connect_timeout_s=2)
    worker = BusWorker("line", link, LINE, request_timeout_s=0.5, completed=_ignore)
    txns = tuple(Txn(f"m{a}", build_read_request(a, 0, REGISTERS), 500) for a in range(1, METERS + 1))
    try:
        await worker.run_job(Job(JobKind.READ, "warm-up", txns[:1]))  # connects; not counted
        started = time.perf_counter()
        results = [await worker.run_job(Job(JobKind.READ, f"sweep-{n}", txns)) for n in range(sweeps)]
        elapsed = time.perf_counter() - started
    finally:
        await link.close()
    return elapsed, _wire_seconds(txns, results), sum(len(r.results) for r in results)


def run(quick: bool) -> Iterator[dict[str, Any]]:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    sweeps = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-bus-scan-") as tmp:
        process, bus = start_simulator(Path(tmp), "rtutcp")
        try:
            elapsed, wire, transactions = asyncio.run(sweep(bus, sweeps))
        finally:
            stop_simulator(process)
    yield ratio_result(elapsed, wire, "s", meters=METERS, registers=REGISTERS, sweeps=sweeps,
                       transactions=transactions, transport="rtutcp", line=LINE.label,
                       turnaround_ms=LINE.turnaround_ms, target="ratio <= 1.05")
