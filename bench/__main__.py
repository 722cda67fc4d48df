"""Run the benchmarks: ``python -m bench [--only NAME] [--quick]``."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BenchFn = Callable[[bool], Iterable[dict[str, Any]]]


def discover() -> dict[str, BenchFn]:
    """Every ``bench_*`` module in this folder, by its ``NAME``."""
    found: dict[str, BenchFn] = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if not info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        found[module.NAME] = module.run
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--only", help="run one benchmark by name")
    parser.add_argument("--quick", action="store_true", help="reduced sizes (whole run about two minutes)")
    args = parser.parse_args(argv)
    benches = discover()
    if args.only and args.only not in benches:
        print(f"error: no benchmark named {args.only!r}; known: {', '.join(sorted(benches))}", file=sys.stderr)
        return 2
    selected = {args.only: benches[args.only]} if args.only else benches
    failed = 0
    for name, run in selected.items():
        try:
            for result in run(args.quick):
                print(json.dumps({"bench": name, **result}), flush=True)
        except Exception:  # a broken bench must not hide the others' figures
            failed += 1
            print(json.dumps({"bench": name, "error": traceback.format_exc(limit=3)}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
