"""The tail processor's ``on_end`` with decisions shared through Redis, beside
the same processor deciding alone, on the same traffic (3-span deferred
traces, a tenth of them failing, so every tenth trace is announced).

Run: pytest benches/test_sharing_speed.py --benchmark-only
"""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from tracesieve import ProbabilitySampler, TailSamplingProcessor
from tracesieve.local_redis import RedisServer

from workloads import BATCH


class NullExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


@pytest.fixture(scope="module")
def redis_url():
    server = RedisServer().start()
    yield server.url + "#bench"
    server.stop()


def failing_traces():
    """333 fresh 3-span traces recorded but not sampled; every tenth has a failing child."""
    tracer = TracerProvider(sampler=ProbabilitySampler(0.0, defer=True)).get_tracer("bench")
    spans = []
    for index in range(BATCH // 3):
        root = tracer.start_span("GET /api/order", attributes={"http.route": "/api/order"})
        context = set_span_in_context(root)
        for name in ("db.query", "cache.get"):
            child = tracer.start_span(name, context=context)
            if index % 10 == 0 and name == "db.query":
                child.set_status(Status(StatusCode.ERROR))
            child.end()
            spans.append(child)
        root.end()
        spans.append(root)
    return spans


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

    benchmark.pedantic(run, setup=lambda: ((failing_traces(),), {}), rounds=40)
    tail.shutdown()
