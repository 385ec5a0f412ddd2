"""Tail sampling, dedup and the export path.

Run: pytest benches/test_tail_speed.py --benchmark-only
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from tracesieve import DedupSpanExporter, ProbabilitySampler, TailSamplingProcessor
from tracesieve.reference import seed_dedup_key

from workloads import BATCH, deferred_traces


class NullExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def ended_spans(count=BATCH):
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("bench")
    spans = []
    for i in range(count):
        span = tracer.start_span("GET /api/order", attributes={"http.route": "/api/order", "http.request.method": "GET", "n": i})
        span.end()
        spans.append(span)
    return spans


class NoopProcessor:
    def on_end(self, span):
        pass


PROCESSORS = {
    "baseline: a Python on_end that does nothing": NoopProcessor,
    "tracesieve TailSamplingProcessor.on_end (default settings)": lambda: TailSamplingProcessor(NullExporter(), max_traces=100_000),
}


@pytest.mark.benchmark(group=f"on_end of ordinary deferred spans (3-span traces), x{BATCH}")
@pytest.mark.parametrize("impl", list(PROCESSORS))
def test_tail_on_end(benchmark, impl):
    """Fresh spans every round (made outside the timing), as live traffic brings."""
    on_end = PROCESSORS[impl]().on_end

    def run(spans):
        for span in spans:
            on_end(span)

    benchmark.pedantic(run, setup=lambda: ((deferred_traces(),), {}), rounds=40)


DEDUP = {
    "python reference: the seed's md5 of sorted JSON": lambda spans: [seed_dedup_key(s) for s in spans],
    "tracesieve DedupSpanExporter, identity": lambda: DedupSpanExporter(NullExporter()).export,
    "tracesieve DedupSpanExporter, content": lambda: DedupSpanExporter(NullExporter(), mode="content").export,
}


@pytest.mark.benchmark(group=f"dedup hashing per span, x{BATCH}")
@pytest.mark.parametrize("impl", list(DEDUP))
def test_dedup(benchmark, impl):
    spans = ended_spans()
    if impl.startswith("python"):
        benchmark(DEDUP[impl], spans)
    else:
        export = DEDUP[impl]()
        benchmark(export, spans)


def traffic(provider):
    tracer = provider.get_tracer("bench")
    start = tracer.start_as_current_span

    def run():
        for _ in range(BATCH // 3):
            with start("GET /api/order"):
                with start("db.query"):
                    pass
                with start("cache.get"):
                    pass

    return run


def sdk_batch():
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    return provider


def deferred_tail():
    provider = TracerProvider(sampler=ProbabilitySampler(0.1, defer=True))
    provider.add_span_processor(TailSamplingProcessor(NullExporter(), decision_wait=0.05, schedule_delay=0.2))
    return provider


END_TO_END = {"sdk BatchSpanProcessor with ALWAYS_ON": sdk_batch, "tracesieve deferred head (10%) + TailSamplingProcessor": deferred_tail}


@pytest.mark.benchmark(group=f"3-span traces end to end, x{BATCH}")
@pytest.mark.parametrize("impl", list(END_TO_END))
def test_end_to_end(benchmark, impl):
    benchmark(traffic(END_TO_END[impl]()))
