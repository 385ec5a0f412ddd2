"""Processes sharing one budget through Redis over a month of simulated
traffic, as the tests and ``benches/fleet.py`` run them. Each request goes to
a process drawn at random and requests are decided in time order (the
processes' simulated clocks agree, as real clocks across hosts roughly do); each process steps its fleet link every
``SYNC`` simulated seconds. Redis can be killed for a span of the month and
started again empty, while the processes keep serving."""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from store_fleet import HOURS, START, blind_hours, request_times, schedule
from tracesieve import BudgetSampler, fleet
from tracesieve.local_redis import RedisServer
from tracesieve.testing import HOUR, SimClock

#: Simulated seconds between a process's fleet steps.
SYNC = 60.0


@dataclass
class RedisMonth:
    budget: int
    offered: int
    kept: int
    kept_by_hour: List[int]
    offered_by_hour: List[int]
    syncs: int
    degraded_seconds: float

    @property
    def percent_used(self) -> float:
        return 100.0 * self.kept / self.budget

    @property
    def blind_hours(self) -> int:
        return blind_hours(self.kept_by_hour, self.offered_by_hour)


def _serve(url: str, budget: int, per_hour: List[int], slot: int, processes: int, counter: Any, gate: Any, kept: Any, results: Any) -> None:
    times, hours = request_times(per_hour)
    clock = SimClock(START)
    sampler = BudgetSampler(1.0, budget=budget, store=url, clock=clock)
    rng = random.Random(slot + 1)
    # Each request goes to a process drawn at random (the same draw in every
    # process); its owner serves it when the requests before it are served.
    owners = random.Random(7)
    mine = [index for index in range(len(times)) if owners.randrange(processes) == slot]
    next_sync = START
    for index in mine:
        while counter.value != index or index >= gate.value:
            os.sched_yield()
        clock.now = times[index]
        if clock.now >= next_sync:
            fleet.sync(sampler)
            next_sync = clock.now + SYNC
        if sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /").decision.is_sampled():
            kept[hours[index]] += 1
        counter.value = index + 1
    # Let the others finish, then report.
    while counter.value < len(times):
        time.sleep(0.001)
    clock.now = START + HOURS * HOUR - 1.0
    fleet.sync(sampler)
    info = sampler.stats()["store"]["fleet"]["budget"]
    results.put((info["syncs"], info["degraded_seconds"]))


def run_redis_month(
    server: RedisServer, budget: int, demand: float, processes: int = 4, outage_days: Optional[Tuple[int, int]] = None, name: str = "month"
) -> RedisMonth:
    """Offer ``demand`` x ``budget`` requests over a month to ``processes``
    sharing one budget in ``server``; with ``outage_days`` (first, last), Redis
    is killed at the first day's start and started again, empty, after the last."""
    per_hour = schedule(budget, demand)
    url = f"{server.url}?interval=0#{name}"
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0, lock=False)  # written only by the owner of the next request
    total = sum(per_hour)
    outage = None
    if outage_days is not None:
        outage = (sum(per_hour[: 24 * outage_days[0]]), sum(per_hour[: 24 * (outage_days[1] + 1)]))
    gate = context.Value("q", outage[0] if outage else total, lock=False)
    kept = context.Array("q", HOURS, lock=False)  # written by the owner of the request
    results = context.Queue()
    workers = [
        context.Process(target=_serve, args=(url, budget, per_hour, slot, processes, counter, gate, kept, results))
        for slot in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        if outage is not None:
            for wait_for, then in ((outage[0], server.kill), (outage[1], server.start)):
                while counter.value < wait_for:
                    time.sleep(0.005)
                then()
                gate.value = outage[1] if then == server.kill else total
        reports = [results.get(timeout=600) for _ in workers]
        for worker in workers:
            worker.join(60)
    finally:
        # A test stopped half-way (a timeout, a failed worker) leaves no worker
        # waiting for its turn forever.
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(5)
    return RedisMonth(
        budget=budget,
        offered=total,
        kept=sum(kept),
        kept_by_hour=list(kept),
        offered_by_hour=per_hour,
        syncs=sum(r[0] for r in reports),
        degraded_seconds=max(r[1] for r in reports),
    )
