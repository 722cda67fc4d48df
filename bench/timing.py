"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
from typing import Any


def ratio_result(value: float, baseline: float, unit: str, **extra: Any) -> dict[str, Any]:
    """One result line: the figure, its same-run baseline and their ratio."""
    ratio = value / baseline if baseline else float("inf")
    return {"value": round(value, 6), "unit": unit, "baseline": round(baseline, 6), "ratio": round(ratio, 4), **extra}


def percentile(samples: list[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``samples`` by the inclusive method."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(pct) - 1]
