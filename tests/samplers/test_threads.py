"""Many threads sampling through one sampler: counts stay exact."""

from __future__ import annotations

import random
import threading

from tracesieve import ProbabilitySampler

from helpers import parent_context

THREADS = 8
PER_THREAD = 20_000


def test_stats_are_exact_under_concurrent_sampling():
    sampler = ProbabilitySampler(0.3)
    kept_counts = [0] * THREADS
    barrier = threading.Barrier(THREADS)
    parent = parent_context(7, True, [("ot", "th:0")])

    def hammer(index: int) -> None:
        rng = random.Random(index)
        barrier.wait()
        kept = 0
        for i in range(PER_THREAD):
            ctx = parent if i % 4 == 0 else None
            kept += sampler.should_sample(ctx, rng.getrandbits(128), "s").decision.is_sampled()
        kept_counts[index] = kept

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = sampler.stats()
    assert stats["decisions"] == THREADS * PER_THREAD
    assert stats["sampled"] == sum(kept_counts)
    assert stats["dropped"] == THREADS * PER_THREAD - sum(kept_counts)
    assert stats["parent_sampled"] == THREADS * PER_THREAD // 4
    assert stats["root"] == THREADS * PER_THREAD * 3 // 4


def test_stats_can_be_read_while_threads_sample():
    sampler = ProbabilitySampler(0.5)
    stop = threading.Event()
    snapshots = []

    def reader() -> None:
        while not stop.is_set():
            snapshots.append(sampler.stats())

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(50_000):
        sampler.should_sample(None, i * 0x9E3779B97F4A7C15, "s")
    stop.set()
    thread.join()
    for snap in snapshots:
        assert snap["sampled"] + snap["dropped"] == snap["decisions"]
        assert snap["dropped"] >= 0
    previous = 0
    for snap in snapshots:
        assert snap["decisions"] >= previous
        previous = snap["decisions"]
    assert sampler.stats()["decisions"] == 50_000
