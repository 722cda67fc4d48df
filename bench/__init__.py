"""Benchmarks: one module per bench, ``bench/bench_<name>.py``, each exposing ``NAME`` and ``run(quick)``.

``run`` yields result dicts; the runner prints each as one JSON line in the format of
``shared/TARGETS.md``: ``{"bench", "value", "unit", "baseline", "ratio", ...}`` where the baseline is
measured in the same run.
"""
