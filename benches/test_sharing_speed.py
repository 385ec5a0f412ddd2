"""The tail processor's ``on_end`` with decisions shared through Redis, beside
the same processor deciding alone, on the same traffic (3-span deferred
traces, a tenth of them failing, so every tenth trace is announced).

Run: pytest benches/test_sharing_speed.py --benchmark-only
"""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tracesieve import TailSamplingProcessor
from tracesieve.local_redis import RedisServer

from workloads import BATCH, deferred_traces


class NullExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


@pytest.fixture(scope="module")
def redis_url():
    server = RedisServer().start()
    yield server.url + "#bench"
    server.stop()


IMPLS = ("per-process tail: TailSamplingProcessor.on_end", "shared tail: TailSamplingProcessor(share=redis://...).on_end")


@pytest.mark.benchmark(group=f"on_end with decisions shared through Redis (3-span traces, 10% failing), x{BATCH}")
@pytest.mark.parametrize("impl", IMPLS)
def test_on_end_with_sharing(benchmark, impl, redis_url):
    bench_on_end(benchmark, impl, redis_url)


@pytest.mark.benchmark(group=f"on_end with sharing, roots judged for latency (3-span traces, 10% failing), x{BATCH}")
@pytest.mark.parametrize("impl", IMPLS)
def test_on_end_with_sharing_and_latency(benchmark, impl, redis_url):
    bench_on_end(benchmark, impl, redis_url, latency_threshold=0.5)


def bench_on_end(benchmark, impl, redis_url, **settings):
    share = redis_url if impl.startswith("shared") else None
    # Traces are decided and exported as the rounds go (a steady heap, as in a live service).
    tail = TailSamplingProcessor(NullExporter(), max_traces=100_000, decision_wait=0.05, schedule_delay=0.05, share=share, **settings)
    if share:
        deadline = time.monotonic() + 10
        while not tail.stats()["share_connected"] and time.monotonic() < deadline:
            time.sleep(0.02)
    on_end = tail.on_end

    def run(spans):
        for span in spans:
            on_end(span)

    benchmark.pedantic(run, setup=lambda: ((deferred_traces(failing_every=10),), {}), rounds=40)
    tail.shutdown()
