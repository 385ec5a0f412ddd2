"""Fleet figures for docs/fleets.md, against a real redis-server started here:

0. A month: four processes share a 2,000-span budget at 2x to 100x demand,
   and at 10x with Redis killed for day 15 and started again empty; a day of
   a 3-service chain sharing a 3,000-span budget (tests/redis_fleet.py and
   tests/fleet_chain.py, as the tests run them).
1. Scale: N simulated processes (one BudgetSampler each, stepped by hand
   every second of simulated time) at a span rate each, for ten simulated
   minutes: Redis calls per second (from Redis's own command counts), calls
   per process per second, and how far the fleet's count went over its line.
2. The worker's CPU per process: a process deciding as fast as it can for
   ten seconds with a Redis store stepping every second and every 0.1 s.

    python benches/fleet.py
"""

from __future__ import annotations

import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from fleet_chain import run_chain_day
from redis_fleet import run_redis_month
from tracesieve import BudgetSampler, fleet, from_config
from tracesieve.local_redis import RedisServer
from tracesieve.testing import SimClock

START = 1_767_225_600.0 + 12 * 3600.0  # noon, 2026-01-01


def scale(server: RedisServer, processes: int, spans_per_second: float, seconds: int = 600) -> dict:
    """A day budget whose line grows by a tenth of the offered spans (the fleet
    paces hard); each process steps every simulated second."""
    budget = int(processes * spans_per_second * 86_400 * 0.1)
    url = f"{server.url}?interval=0#scale{processes}x{spans_per_second:g}"
    clock = SimClock(START)
    samplers = [BudgetSampler(1.0, budget=budget, period="day", store=url, clock=clock) for _ in range(processes)]
    client = server.client()
    client.config_resetstat()
    rng = random.Random(processes)
    carry = [0.0] * processes
    worst_over = 0.0
    started = time.perf_counter()
    for _ in range(seconds):
        clock.now += 1.0
        for i, sampler in enumerate(samplers):
            fleet.sync(sampler)
            carry[i] += spans_per_second
            for _ in range(int(carry[i])):
                sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /")
            carry[i] -= int(carry[i])
        status = samplers[0].budget_status()
        worst_over = max(worst_over, status["used_spans"] - status["allowed_spans"] - status["burst_spans"])
    elapsed = time.perf_counter() - started
    calls = sum(v["calls"] for k, v in client.info("commandstats").items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    fleet.sync(*samplers)
    status = samplers[0].budget_status()
    return {
        "processes": processes,
        "spans_per_second": spans_per_second,
        "redis_calls_per_second": calls / seconds,
        "calls_per_process_second": calls / seconds / processes,
        "over_line_spans": worst_over,
        "burst": status["burst_spans"],
        "real_seconds": elapsed,
    }


def worker_cpu(server: RedisServer, interval: float, seconds: float = 10.0) -> float:
    """CPU seconds the fleet worker thread spent stepping (its own thread
    time), per second of wall time, while the process decides flat out."""
    sampler = from_config(
        {
            "store": f"{server.url}?interval={interval}#cpu{interval}",
            "adaptive": {},
            "probability": {"rate": 0.1},
            "budget": {"budget": 10**12},
            "rate_limit": {"traces_per_second": 10**5},
        }
    )
    time.sleep(0.5)

    def cpu() -> float:
        return next(w["cpu_seconds"] for w in fleet.worker_stats() if w["interval"] == interval)

    rng = random.Random(1)
    before, start = cpu(), time.monotonic()
    while time.monotonic() - start < seconds:
        for _ in range(1000):
            sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /")
    return (cpu() - before) / (time.monotonic() - start)


def main() -> None:
    server = RedisServer().start()
    try:
        print("| run | kept | of budget | blind hours | hours on the fallback share (longest member) |")
        print("|---|---|---|---|---|")
        for demand, outage in [(2, None), (10, None), (100, None), (10, (15, 15))]:
            month = run_redis_month(server, 2000, demand, outage_days=outage, name=f"bench{demand}{'outage' if outage else ''}")
            label = f"{demand}x" + (", Redis killed on day 15, started empty a day later" if outage else "")
            print(
                f"| {label} | {month.kept:,} | {month.percent_used:.1f}% | {month.blind_hours} | {month.degraded_seconds / 3600:.1f} |",
                flush=True,
            )
        print()
        print("| chain demand | requests | kept spans (all services) | frontend / orders / payments | traces kept | whole |")
        print("|---|---|---|---|---|---|")
        for demand in (5, 20):
            day = run_chain_day(f"{server.url}?interval=0#benchchain{demand}", 3000, demand)
            roots, whole = day.whole_traces()
            split = " / ".join(str(sum(kept.values())) for kept in day.kept_by_service.values())
            print(f"| {demand}x | {day.requests:,} | {day.kept_spans:,} | {split} | {roots} | {100 * whole / roots:.1f}% |", flush=True)
        print()
        print("| processes | spans/s each | Redis calls/s | calls per process per second | worst count over line+burst | burst |")
        print("|---|---|---|---|---|---|")
        for processes, rate in [(10, 10), (10, 1000), (100, 10), (100, 100)]:
            row = scale(server, processes, rate)
            print(
                f"| {processes} | {rate:g} | {row['redis_calls_per_second']:.0f} | {row['calls_per_process_second']:.2f} "
                f"| {row['over_line_spans']:.0f} | {row['burst']:.0f} |",
                flush=True,
            )
        print()
        for interval in (1.0, 0.1):
            print(f"worker CPU at interval={interval:g} s: {100 * worker_cpu(server, interval):.2f}% of one core", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
