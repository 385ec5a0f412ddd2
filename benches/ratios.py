"""Per-call medians and ratios from one or more pytest-benchmark JSON files.

    for run in 1 2 3; do pytest benches --benchmark-only --benchmark-json=bench-$run.json; done
    python benches/ratios.py bench-*.json

In each group the first row whose name starts with "sdk" is the baseline (else
the first row). For
every row we take the per-call median of each run, the ratio to the baseline in
that same run, and report the median over runs: shared machines are noisy, and a
ratio measured within one run is what stays comparable.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from typing import Dict, List


def per_call_ns(bench: dict) -> float:
    match = re.search(r"x(\d+)", bench["group"] or "")
    calls = int(match.group(1)) if match else 1
    return bench["stats"]["median"] / calls * 1e9


def load(path: str) -> Dict[str, Dict[str, float]]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    groups: Dict[str, Dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        groups[bench["group"]][bench["param"]] = per_call_ns(bench)
    return groups


def main(paths: List[str]) -> int:
    runs = [load(path) for path in paths]
    for group in runs[0]:
        rows = runs[0][group]
        baseline = next((name for name in rows if name.startswith("sdk")), next(iter(rows)))
        print(f"\n{group}  ({len(runs)} run{'s' if len(runs) > 1 else ''}; baseline: {baseline})")
        for name in rows:
            times = [run[group][name] for run in runs if name in run.get(group, {})]
            ratios = [run[group][name] / run[group][baseline] for run in runs if name in run.get(group, {})]
            print(f"  {name:45} {statistics.median(times):9.0f} ns/call   {statistics.median(ratios):5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["bench.json"]))
