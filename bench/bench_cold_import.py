"""cold_import: import time of the API handler module in a fresh interpreter, against ``import boto3``."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.timing import ratio_result

NAME = "cold_import"
ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("weasyprint", "openpyxl", "xlsxwriter", "stripe")
PROBE = "import json, sys; import {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"


def fresh_import(module: str) -> tuple[float, set[str]]:
    """Wall time of a fresh interpreter importing ``module`` (minus bare start-up), and what it loaded."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - started, set(json.loads(done.stdout))


def median_seconds(module: str, runs: int) -> tuple[float, set[str]]:
    fresh_import(module)  # warm the OS file cache so both sides are measured alike
    samples: list[float] = []
    loaded: set[str] = set()
    for _ in range(runs):
        seconds, loaded = fresh_import(module)
        samples.append(seconds)
    return statistics.median(samples), loaded


def run(quick: bool) -> Iterator[dict[str, Any]]:
    runs = 5 if quick else 15
    bare, _ = median_seconds("sys", runs)
    boto3_s, _ = median_seconds("boto3", runs)
    app_s, loaded = median_seconds("app", runs)
    yield ratio_result(app_s - bare, boto3_s - bare, "s", runs=runs, interpreter_start_s=round(bare, 4),
                       heavy_imported=sorted(set(HEAVY) & loaded))
