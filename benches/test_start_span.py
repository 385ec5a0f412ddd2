"""`start_span` + `end` through a TracerProvider with no span processor: what a
sampler costs the application per span, including the span it creates or skips.

Run: pytest benches/test_start_span.py --benchmark-only
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

from tracesieve import ProbabilitySampler, TraceIdRatioSampler

from workloads import BATCH

RATE_10 = {
    "sdk ParentBased(TraceIdRatioBased(0.1))": lambda: ParentBased(TraceIdRatioBased(0.1)),
    "sdk TraceIdRatioBased(0.1)": lambda: TraceIdRatioBased(0.1),
    "tracesieve ProbabilitySampler(0.1)": lambda: ProbabilitySampler(0.1),
    "tracesieve TraceIdRatioSampler(0.1)": lambda: TraceIdRatioSampler(0.1),
    "tracesieve ProbabilitySampler(0.1, defer=True): drops recorded": lambda: ProbabilitySampler(0.1, defer=True),
}

DROP_ALL = {
    "sdk ALWAYS_OFF": lambda: ALWAYS_OFF,
    "tracesieve ProbabilitySampler(0.0)": lambda: ProbabilitySampler(0.0),
}


def spans_loop(sampler):
    tracer = TracerProvider(sampler=sampler).get_tracer("bench")
    start_span = tracer.start_span

    def run():
        for _ in range(BATCH):
            start_span("GET /api/order").end()

    return run


def traces_loop(sampler):
    """A root span with two children, the children started under the root's context."""
    from opentelemetry.trace import set_span_in_context

    tracer = TracerProvider(sampler=sampler).get_tracer("bench")
    start_span = tracer.start_span

    def run():
        for _ in range(BATCH // 3):
            root = start_span("GET /api/order")
            ctx = set_span_in_context(root)
            start_span("db.query", context=ctx).end()
            start_span("cache.get", context=ctx).end()
            root.end()

    return run


@pytest.mark.benchmark(group=f"start_span+end at 10%, x{BATCH}")
@pytest.mark.parametrize("impl", list(RATE_10))
def test_start_span_10pct(benchmark, impl):
    benchmark(spans_loop(RATE_10[impl]()))


@pytest.mark.benchmark(group=f"start_span+end dropping everything, x{BATCH}")
@pytest.mark.parametrize("impl", list(DROP_ALL))
def test_start_span_drop_all(benchmark, impl):
    benchmark(spans_loop(DROP_ALL[impl]()))


@pytest.mark.benchmark(group=f"3-span traces at 10%, x{BATCH // 3} traces")
@pytest.mark.parametrize("impl", ["sdk ParentBased(TraceIdRatioBased(0.1))", "tracesieve ProbabilitySampler(0.1)"])
def test_traces_10pct(benchmark, impl):
    benchmark(traces_loop(RATE_10[impl]()))
