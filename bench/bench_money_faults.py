"""money_faults: randomized sales, refunds, reversals and repeats with a fault injected at every step; counts what
was lost or delivered twice (shared/TARGETS.md: 0 lost, 0 doubled, ledger = meter registers).

Two layers, each seeded and replayable (``python -m bench.bench_money_faults --replay model:SEED`` or
``stack:SEED``):

* model (``model_scenarios``): ``chalicelib.domain.money_faults_model`` — the real domain rules (accounts, ledger,
  delivery) against a model meter, in memory: 40 operations per scenario, commands lost, answers lost, read-backs
  lost, frames executed twice, commands delayed past a read-back, the bridge offline, requests repeated. Fast, so
  it carries the count (10,000 in the full run).
* stack (``stack_scenarios``): tests/support/money_stack.py — the real ``SalesDesk``, ``CreditDelivery`` and
  ``DynamoMoneyRepository`` against DynamoDB Local (started here), delivering through a test double of the bridge
  link to a model meter that decodes the RTU frames: crashes inside the ledger transaction and just after it
  (before the delivery kick), in the delivery worker's writes and after mark-sent before the command leaves;
  command lost, answer lost after the meter applied it, read-back lost, write answer lost, write executed twice,
  a command overtaken by the probe, answers twice, late and out of order; the bridge offline or gone mid-push;
  requests re-submitted later and at the same moment; two cashiers (or a cashier and the worker) at once.
  16 operations per scenario, then the sweep runs (probing at once) until nothing is in flight. About a hundred
  DynamoDB round trips per scenario, so it runs fewer (200 full, 20 quick), three at a time.

Each scenario is checked at quiescence: the fold of the meter's entries equals what the meter holds (the model
draws no energy), every delivering entry applied exactly once, the stored credit equals the fold, nothing blocked
or pending, reconciliation clean, every request answered as posted is in the ledger once. A scenario with any
problem is a failure; the first one's seed is printed.

value: scenarios checked (both layers); baseline: the count the target asks for in this run size (10,000 full,
200 quick), so ratio ≥ 1 means enough were run. The verdict is in the counts: ``lost``, ``doubled``, ``failed``.
``answered_differently`` counts requests answered as posted and later refused when sent again (the ledger is
right, the answer is not): reported, not counted as lost or doubled.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.timing import ratio_result

NAME = "money_faults"
MODEL_SEED = 20_240_301_000  # scenario i uses seed MODEL_SEED + i
STACK_SEED = 7_000_000
MODEL_LENGTH, STACK_LENGTH = 40, 16
SIZES = {True: (300, 20), False: (10_000, 200)}  # quick → (model, stack) scenarios
TARGET = {True: 200, False: 10_000}
STACK_WORKERS = 3  # DynamoDB round trips dominate: three scenarios at a time keep the server busy


def model_scenario(seed: int) -> tuple[list[Any], int, int]:
    from chalicelib.domain.money_faults_model import random_scenario

    rng = random.Random(seed)
    return random_scenario(rng, MODEL_LENGTH), rng.randrange(60_000), rng.choice((0, 0, 2_500))


def model_faults(ops: list[Any]) -> int:
    from chalicelib.domain.money_faults_model import Bridge, Inject, Repeat

    return sum(1 for op in ops if isinstance(op, Inject | Repeat) or (isinstance(op, Bridge) and not op.online))


def run_model(count: int) -> dict[str, Any]:
    from chalicelib.domain.money_faults_model import run_scenario

    totals: Counter[str] = Counter()
    first_failure: dict[str, Any] | None = None
    started = time.perf_counter()
    for index in range(count):
        seed = MODEL_SEED + index
        ops, start_count, start_remaining = model_scenario(seed)
        result = run_scenario(ops, start_count=start_count, start_remaining=start_remaining)
        totals.update(entries=result.entries, deliveries=result.deliveries, duplicates=result.duplicates,
                      refused=result.refused, lost=result.lost, doubled=result.doubled, faults=model_faults(ops),
                      failed=not result.ok, problems=len(result.problems))
        if first_failure is None and not result.ok:
            first_failure = {"layer": "model", "seed": seed, "problems": list(result.problems[:3])}
    return {"scenarios": count, "seconds": time.perf_counter() - started, "totals": totals,
            "first_failure": first_failure}


def stack_one(seed: int) -> Any:
    """One seeded stack scenario; an unexpected exception is a failed scenario with its seed, not a broken bench."""
    from tests.support.money_stack import StackResult, run_stack_scenario, seeded_stack_scenario

    ops, start_count, start_remaining = seeded_stack_scenario(seed, STACK_LENGTH)
    try:
        return run_stack_scenario(ops, start_count=start_count, start_remaining=start_remaining)
    except Exception as error:  # reported as the scenario's failure, with its seed
        return StackResult(0, 0, 0, 0, 0, 0, 0, 0, (f"raised {type(error).__name__}: {error}",))


def run_stack(count: int) -> dict[str, Any]:
    from infra.local import dynamodb_local
    from infra.local.stack import configure_environment, prepare_tables
    from tests.support.money_stack import probes_at_once

    totals: Counter[str] = Counter()
    first_failure: dict[str, Any] | None = None
    server = dynamodb_local.start()
    try:
        configure_environment(server.endpoint)
        prepare_tables()
        started = time.perf_counter()
        seeds = [STACK_SEED + i for i in range(count)]
        with probes_at_once(), ThreadPoolExecutor(max_workers=STACK_WORKERS) as pool:
            results = list(pool.map(stack_one, seeds))
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    for seed, result in zip(seeds, results, strict=True):
        totals.update(entries=result.entries, deliveries=result.deliveries, duplicates=result.duplicates,
                      refused=result.refused, lost=result.lost, doubled=result.doubled, faults=result.faults,
                      crashes=result.crashes, failed=not result.ok, problems=len(result.problems),
                      answered_differently=result.stats.get("posted-then-refused", 0),
                      reversal_retries_refused=result.stats.get("reversal-retry-refused", 0))
        if first_failure is None and not result.ok:
            first_failure = {"layer": "stack", "seed": seed, "problems": list(result.problems[:3])}
    return {"scenarios": count, "seconds": seconds, "totals": totals, "first_failure": first_failure}


def run(quick: bool) -> Iterator[dict[str, Any]]:
    model_count, stack_count = SIZES[quick]
    model = run_model(model_count)
    stack = run_stack(stack_count)
    both = model["totals"] + stack["totals"]
    scenarios = model_count + stack_count
    yield ratio_result(
        scenarios, TARGET[quick], "scenarios",
        scenarios=scenarios, model_scenarios=model_count, stack_scenarios=stack_count,
        faults=both["faults"], stack_faults=stack["totals"]["faults"], crashes=stack["totals"]["crashes"],
        lost=both["lost"], doubled=both["doubled"], failed=both["failed"], problems=both["problems"],
        entries=both["entries"], deliveries=both["deliveries"], duplicates=both["duplicates"],
        refused=both["refused"], answered_differently=stack["totals"]["answered_differently"],
        reversal_retries_refused=stack["totals"]["reversal_retries_refused"],
        first_failure=model["first_failure"] or stack["first_failure"],
        model_seconds=round(model["seconds"], 1), stack_seconds=round(stack["seconds"], 1),
        seeds={"model": MODEL_SEED, "stack": STACK_SEED},
    )


def replay(layer: str, seed: int) -> list[str]:
    """The operations and the verdict of one scenario, for a failing seed printed by the bench."""
    if layer == "model":
        from chalicelib.domain.money_faults_model import run_scenario

        ops, start_count, start_remaining = model_scenario(seed)
        result = run_scenario(ops, start_count=start_count, start_remaining=start_remaining)
        return [f"start count {start_count}, remaining {start_remaining}", *map(repr, ops), repr(result)]
    from tests.support.money_stack import seeded_stack_scenario

    ops, start_count, start_remaining = seeded_stack_scenario(seed, STACK_LENGTH)
    stack = run_stack_single(seed)
    return [f"start count {start_count}, remaining {start_remaining}", *map(repr, ops), repr(stack)]


def run_stack_single(seed: int) -> Any:
    from infra.local import dynamodb_local
    from infra.local.stack import configure_environment, prepare_tables
    from tests.support.money_stack import probes_at_once

    server = dynamodb_local.start()
    try:
        configure_environment(server.endpoint)
        prepare_tables()
        with probes_at_once():
            return stack_one(seed)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_money_faults", description="replay one scenario")
    parser.add_argument("--replay", required=True, metavar="LAYER:SEED", help="model:SEED or stack:SEED")
    layer, _, seed = parser.parse_args().replay.partition(":")
    if layer not in ("model", "stack") or not seed.isdigit():
        parser.error("--replay model:SEED or stack:SEED")
    print("\n".join(replay(layer, int(seed))))


if __name__ == "__main__":
    main()
