"""Budget pacing, ours against the seed's, on simulated months.

    python benches/budget_comparison.py [--budget 10000]

For each demand level (and a spike month) both pacers see the same traffic: a
31-day month of root spans with a daily wave. Reported per pacer: budget used,
blind hours (hours with demand but nothing kept) and the day the budget ran out.
"""

from __future__ import annotations

import argparse
import sys

from tracesieve import BudgetSampler
from tracesieve.reference import SeedCostAwareSampler
from tracesieve.testing import SimClock, month_start, run_month

SCENARIOS = [
    ("0.5x", 0.5, None),
    ("2x", 2.0, None),
    ("10x", 10.0, None),
    ("100x", 100.0, None),
    ("10x + 20x spike on day 15", 10.0, (15, 20.0)),
]


def ours(budget: int, demand: float, spike):
    clock = SimClock(month_start(2026, 1))
    sampler = BudgetSampler(1.0, budget=budget, clock=clock)
    should_sample = sampler.should_sample
    return run_month(
        lambda trace_id: should_sample(None, trace_id, "GET").decision.is_sampled(),
        clock,
        budget,
        demand,
        spike=spike,
        used=lambda: sampler.budget_status()["used_spans"],
    )


def seed(budget: int, demand: float, spike):
    clock = SimClock(month_start(2026, 1))
    sampler = SeedCostAwareSampler(monthly_budget=budget * 0.001, cost_per_span=0.001, clock=clock)

    def decide(_trace_id: int) -> bool:
        if sampler.should_sample():
            sampler.record_span()
            return True
        return False

    return run_month(decide, clock, budget, demand, spike=spike)


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=10_000, help="spans per month (default 10000)")
    args = parser.parse_args(argv)
    print(f"Budget {args.budget:,} spans for January 2026 (744 hours); daily traffic wave.\n")
    header = f"{'demand':28} {'pacer':10} {'used':>7} {'blind hours':>12} {'ran out on day':>15}"
    print(header)
    print("-" * len(header))
    for label, demand, spike in SCENARIOS:
        for name, run in (("tutorial", seed), ("tracesieve", ours)):
            result = run(args.budget, demand, spike)
            if result.exhausted_at_hour is None:
                day = "-"
            elif result.exhausted_at_hour >= len(result.kept_by_hour):
                day = "last hour"
            else:
                day = f"{result.exhausted_day:.1f}"
            print(f"{label:28} {name:10} {result.utilisation:>7.1%} {result.blind_hours:>12} {day:>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
