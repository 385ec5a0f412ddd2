"""Processes sharing one host store, as the tests and ``benches/host_store.py``
run them: a month of traffic split among processes (spawned, or forked after
construction; joining and leaving, one killed with SIGKILL), each request
decided by whichever process claims it next, in time order, so the processes'
simulated clocks agree as real clocks on one host do."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from tracesieve import BudgetSampler
from tracesieve.testing import HOUR, SimClock, daily_wave, days_in_month, month_start

START = month_start(2026, 1)
HOURS = days_in_month(2026, 1) * 24


@dataclass
class Worker:
    """Hours (from the month's start) in which a process serves requests; ``killed``:
    it ends with SIGKILL (in the middle of its work) instead of stopping."""

    first_hour: int = 0
    last_hour: int = HOURS
    killed: bool = False


@dataclass
class FleetMonth:
    budget: int
    offered: int
    used: int
    kept_by_hour: List[int]
    offered_by_hour: List[int]
    refused: int

    @property
    def percent_used(self) -> float:
        return 100.0 * self.used / self.budget

    @property
    def blind_hours(self) -> int:
        return blind_hours(self.kept_by_hour, self.offered_by_hour)


def blind_hours(kept_by_hour: List[int], offered_by_hour: List[int]) -> int:
    """Hours with traffic in which nothing was kept."""
    return sum(1 for kept, offered in zip(kept_by_hour, offered_by_hour) if offered and not kept)


def schedule(budget: int, demand: float) -> List[int]:
    """Requests per hour: ``demand`` x ``budget`` over the month, in the daily wave."""
    weights = [daily_wave(h % 24) for h in range(HOURS)]
    per_weight = demand * budget / sum(weights)
    return [round(per_weight * w) for w in weights]


def request_times(per_hour: List[int]) -> Tuple[List[float], List[int]]:
    times, hours = [], []
    for hour, count in enumerate(per_hour):
        for i in range(count):
            times.append(START + hour * HOUR + (i + 0.5) * HOUR / count)
            hours.append(hour)
    return times, hours


def _sampler(store: str, budget: int, clock: SimClock) -> BudgetSampler:
    return BudgetSampler(1.0, budget=budget, store=store, clock=clock)


def _serve(sampler: Any, clock: SimClock, worker: Worker, per_hour: List[int], counter: Any, kept: Any, seed: int) -> None:
    times, hours = request_times(per_hour)
    rng = random.Random(seed)
    start_index = sum(per_hour[: worker.first_hour])
    while counter.value < start_index:  # a worker that joins later (a recycled one) waits for its first hour
        os.sched_yield()
    stop_index = sum(per_hour[: worker.last_hour])
    kill_at = (start_index + stop_index) // 2 if worker.killed else None
    while True:
        # Claim and decide under the lock: requests are decided in time order
        # whichever process takes them, as real processes reading one clock do.
        with counter.get_lock():
            index = counter.value
            if index >= stop_index and kill_at is None:
                return
            # A process to be killed dies before claiming its next request, so
            # every request is decided (a lost one could leave its hour blind).
            if kill_at is None or index < min(kill_at, stop_index):
                counter.value = index + 1
                clock.now = times[index]
                if sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /").decision.is_sampled():
                    kept[hours[index]] += 1
                continue
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-month, without a goodbye


def _spawned(store: str, budget: int, worker: Worker, per_hour: List[int], counter: Any, kept: Any, seed: int) -> None:
    # A process that joins mid-month waits for its first hour, then builds its sampler (and attaches).
    start_index = sum(per_hour[: worker.first_hour])
    while counter.value < start_index:
        os.sched_yield()
    clock = SimClock(START)
    clock.now = START + worker.first_hour * HOUR
    _serve(_sampler(store, budget, clock), clock, worker, per_hour, counter, kept, seed)


def run_fleet_month(
    store: str, budget: int, demand: float, workers: List[Worker], mode: str = "spawn", seed: int = 1, timeout: float = 240.0
) -> FleetMonth:
    """Offer ``demand`` x ``budget`` requests over a month to ``workers`` sharing
    ``store``: ``mode`` "spawn" (each process builds its own sampler) or "fork"
    (one sampler built here, then the processes forked; all must serve from the first hour)."""
    per_hour = schedule(budget, demand)
    context = multiprocessing.get_context(mode)
    counter = context.Value("q", 0)
    kept = context.Array("q", HOURS, lock=False)  # written under the counter's lock
    if mode == "fork":
        clock = SimClock(START)
        sampler: Optional[BudgetSampler] = _sampler(store, budget, clock)
        processes = [
            context.Process(target=_serve, args=(sampler, clock, worker, per_hour, counter, kept, seed + i))
            for i, worker in enumerate(workers)
        ]
    else:
        sampler = None
        processes = [
            context.Process(target=_spawned, args=(store, budget, worker, per_hour, counter, kept, seed + i))
            for i, worker in enumerate(workers)
        ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            raise AssertionError(f"a worker did not finish within {timeout} s")
        expected = -signal.SIGKILL if workers[processes.index(process)].killed else 0
        assert process.exitcode == expected, f"worker exit code {process.exitcode}"
    observer_clock = SimClock(START)
    observer_clock.now = START + HOURS * HOUR - 1.0
    status = (sampler or _sampler(store, budget, observer_clock)).budget_status()
    return FleetMonth(
        budget=budget,
        offered=sum(per_hour),
        used=status["used_spans"],
        kept_by_hour=list(kept),
        offered_by_hour=per_hour,
        refused=status["refused_spans"],
    )


def hammer_budget(store: str, budget: int, day_start: float, threads: int, calls: int, results: Any) -> None:
    """``threads`` threads each making ``calls`` decisions against one shared
    day budget at the day's last second; puts (sampled as counted by the
    threads, decisions and sampled as the sampler counted them) on ``results``."""
    import threading

    clock = SimClock(day_start)
    sampler = BudgetSampler(1.0, budget=budget, period="day", store=store, clock=clock)
    clock.now = day_start + 86_400.0 - 1.0
    sampled = [0] * threads

    def run(slot: int) -> None:
        rng = random.Random(slot + 1000 * os.getpid())
        for _ in range(calls):
            if sampler.should_sample(None, rng.getrandbits(128) | 1, "job").decision.is_sampled():
                sampled[slot] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stats = sampler.stats()
    results.put((sum(sampled), stats["decisions"], stats["sampled"]))


def hammer_rate_limit(store: str, rate: float, start_at: float, seconds: float, results: Any) -> None:
    """Decide as fast as possible for ``seconds`` (real time, from ``start_at``
    on the monotonic clock) under a shared rate limit; puts the kept count."""
    import time

    from tracesieve import from_config

    sampler = from_config({"store": store, "probability": {"rate": 1.0}, "rate_limit": {"traces_per_second": rate}})
    rng = random.Random(os.getpid())
    while time.monotonic() < start_at:
        time.sleep(0.001)
    kept = 0
    while time.monotonic() < start_at + seconds:
        kept += sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /").decision.is_sampled()
    results.put(kept)


def boost_seen(store: str, errors: int, recorded: Any, results: Any) -> None:
    """One worker: record ``errors`` errors and say so, or (0) wait until another
    worker has; then report the boost this worker sees."""
    from tracesieve import AdaptiveSampler

    sampler = AdaptiveSampler(0.1, error_steps=[(5, 2.0), (10, 3.0)], store=store)
    if errors:
        sampler.record_error(errors)
        recorded.set()
    else:
        recorded.wait(30)
    results.put((errors, sampler.boost))


class _Counter(logging.Handler):
    """Counts the warnings a logger gives (a spawned worker reports them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def serve_through_fault(store: str, budget: int, ready: Any, faulted: Any, stop: Any, results: Any) -> None:
    """One worker on real time: decide as fast as it can until ``stop``,
    counting keeps before and after the parent sets ``faulted``; then put
    (keeps before, keeps after, store info, budget status, warnings logged)."""
    import time

    counter = _Counter()
    logging.getLogger("tracesieve.store").addHandler(counter)
    sampler = BudgetSampler(1.0, budget=budget, period="hour", store=store)
    rng = random.Random(os.getpid())
    kept = [0, 0]
    ready.put(os.getpid())
    while not stop.is_set():
        for _ in range(200):
            phase = 1 if faulted.is_set() else 0
            kept[phase] += sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /").decision.is_sampled()
    time.sleep(1.5)  # the store watcher checks every second
    results.put((kept[0], kept[1], sampler.stats()["store"], sampler.budget_status(), counter.messages))


def recycled(every_hours: int, slots: int = 4) -> List[Worker]:
    """``slots`` workers, each replaced by a new process every ``every_hours``
    (as gunicorn's ``max_requests`` recycles its workers)."""
    return [Worker(first, min(first + every_hours, HOURS)) for _ in range(slots) for first in range(0, HOURS, every_hours)]
