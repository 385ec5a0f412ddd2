"""Many threads sampling through one sampler: counts stay exact."""

from __future__ import annotations

import logging
import random
import sys
import threading
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracesieve import ProbabilitySampler, RuleSampler

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


class _Finalized:
    """An attribute value whose finaliser runs Python code and yields the GIL."""

    def __del__(self):
        time.sleep(0)


# The open files are left for the garbage collector on purpose: their close is the test.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("kind", ["plain values", "values with __del__", "open files"])
@pytest.mark.parametrize(
    "make",
    [lambda: ProbabilitySampler(1.0), lambda: RuleSampler([{"route": "/x", "rate": 1.0}], default_rate=1.0)],
    ids=["probability", "rules"],
)
def test_a_span_never_carries_another_requests_attributes(kind, make, tmp_path):
    """Regression: a reused kept result was refilled after its reference-count
    check, and freeing the previous call's attributes (a __del__, a file's close)
    let another thread refill it too: 3,809 of 8,000 spans carried another
    thread's attributes. The SDK's own samplers give 0, and so must we."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=make())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    barrier = threading.Barrier(4)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def work(index: int) -> None:
        barrier.wait()
        for seq in range(2000):
            attributes = {"thread": index, "seq": seq, "http.route": "/x"}
            if kind == "values with __del__":
                attributes["blob"] = _Finalized()
            elif kind == "open files":
                attributes["blob"] = open(tmp_path / f"f{index}", "w")
            tracer.start_span("s", attributes=attributes).end()

    logging.disable(logging.WARNING)  # the SDK warns about the invalid blob values
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        logging.disable(logging.NOTSET)
        sys.setswitchinterval(previous)
    seen = {(span.attributes["thread"], span.attributes["seq"]) for span in exporter.get_finished_spans()}
    assert len(exporter.get_finished_spans()) == 8000
    assert seen == {(t, s) for t in range(4) for s in range(2000)}, "every span carries exactly its own request's attributes"
    provider.shutdown()
