"""Four processes against one budget in a host store, over a month of traffic:
spawned, forked after construction, and joining/leaving/killed mid-month, at
0.5x to 100x demand; the table in docs/prefork.md.

    python benches/host_store.py
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from store_fleet import Worker, run_fleet_month

BUDGET = 2000
CHURN = [Worker(), Worker(first_hour=24 * 5, last_hour=24 * 20), Worker(first_hour=24 * 10, killed=True), Worker(last_hour=24 * 15)]


def main() -> None:
    print("| processes | demand | offered | kept | of budget | blind hours |")
    print("|---|---|---|---|---|---|")
    for label, workers, mode in [
        ("4 spawned", [Worker()] * 4, "spawn"),
        ("4 forked", [Worker()] * 4, "fork"),
        ("4 joining, leaving, 1 killed", CHURN, "spawn"),
    ]:
        for demand in (0.5, 2, 10, 100):
            with tempfile.TemporaryDirectory(prefix="tracesieve-bench-") as folder:
                month = run_fleet_month(f"file://{folder}/month.tracesieve", BUDGET, demand, workers, mode=mode)
            print(f"| {label} | {demand:g}x | {month.offered:,} | {month.used:,} | {month.percent_used:.1f}% | {month.blind_hours} |")


if __name__ == "__main__":
    main()
