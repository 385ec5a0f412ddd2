"""Native span recording (``tracesieve.TracerProvider``) beside the SDK's provider.

Run (three runs, then the medians of within-run ratios):

    for run in 1 2 3; do pytest benches/test_provider_speed.py --benchmark-only --benchmark-json=provider-$run.json; done
    python benches/ratios.py provider-*.json

Every row runs the same application code; the baseline of each group is the
SDK with ``ALWAYS_OFF`` (what recording nothing costs). Kept spans are
exported to a null exporter through an unchanged ``BatchSpanProcessor``; the
tail's worker and the batch processor's run on their own threads, as in
production.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import pytest
from opentelemetry.sdk.trace import TracerProvider as SdkProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from tracesieve import ProbabilitySampler, TailSamplingProcessor, TracerProvider

from workloads import BATCH

ATTRIBUTES = {"http.request.method": "GET", "http.route": "/api/order", "customer.tier": "silver"}


class NullExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def sdk(sampler: Any, batch: bool = False) -> Callable[[], Any]:
    def make() -> Any:
        provider = SdkProvider(sampler=sampler, shutdown_on_exit=False)
        if batch:
            provider.add_span_processor(BatchSpanProcessor(NullExporter()))
        return provider

    return make


def deferred_tail_processor() -> Any:
    provider = SdkProvider(sampler=ProbabilitySampler(0.01, defer=True), shutdown_on_exit=False)
    provider.add_span_processor(TailSamplingProcessor(NullExporter(), decision_wait=0.05, max_traces=100_000))
    return provider


def native(sampler: Any) -> Callable[[], Any]:
    def make() -> Any:
        provider = TracerProvider(sampler=sampler, decision_wait=0.05, max_traces=100_000, shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(NullExporter()))
        return provider

    return make


DEFERRED: Dict[str, Callable[[], Any]] = {
    "sdk ALWAYS_OFF": sdk(ALWAYS_OFF),
    "sdk ALWAYS_ON, no processor": sdk(ALWAYS_ON),
    "sdk ALWAYS_ON + BatchSpanProcessor": sdk(ALWAYS_ON, batch=True),
    "ProbabilitySampler(0.01, defer=True) + TailSamplingProcessor": deferred_tail_processor,
    "tracesieve.TracerProvider, deferred 1% + tail decisions": native(ProbabilitySampler(0.01, defer=True)),
}

DROPS: Dict[str, Callable[[], Any]] = {
    "sdk ALWAYS_OFF": sdk(ALWAYS_OFF),
    "ProbabilitySampler(0.01) on the SDK's provider": sdk(ProbabilitySampler(0.01)),
    "tracesieve.TracerProvider, ProbabilitySampler(0.01)": native(ProbabilitySampler(0.01)),
}


def per_span(provider: Any) -> Callable[[], None]:
    tracer = provider.get_tracer("bench")

    def run() -> None:
        for _ in range(BATCH):
            tracer.start_span("GET /api/order", attributes=ATTRIBUTES).end()

    return run


def requests(provider: Any) -> Callable[[], None]:
    """3-span requests: a root and two children with context managers, 3
    attributes each, one event."""
    tracer = provider.get_tracer("bench")
    start = tracer.start_as_current_span

    def run() -> None:
        for _ in range(BATCH // 3):
            with start("GET /api/order", attributes=ATTRIBUTES):
                with start("SELECT orders", attributes=ATTRIBUTES) as query:
                    query.add_event("rows fetched")
                with start("cache.get", attributes=ATTRIBUTES):
                    pass

    return run


@pytest.mark.benchmark(group=f"per span: start_span with 3 attributes, end, x{BATCH}")
@pytest.mark.parametrize("impl", list(DEFERRED))
def test_per_span(benchmark: Any, impl: str) -> None:
    provider = DEFERRED[impl]()
    benchmark(per_span(provider))
    provider.shutdown()


@pytest.mark.benchmark(group=f"per span: 3-span requests with context managers and an event, x{BATCH - BATCH % 3}")
@pytest.mark.parametrize("impl", list(DEFERRED))
def test_requests(benchmark: Any, impl: str) -> None:
    provider = DEFERRED[impl]()
    benchmark(requests(provider))
    provider.shutdown()


@pytest.mark.benchmark(group=f"per span: head-sampled drops (1% kept), x{BATCH}")
@pytest.mark.parametrize("impl", list(DROPS))
def test_drops(benchmark: Any, impl: str) -> None:
    provider = DROPS[impl]()
    benchmark(per_span(provider))
    provider.shutdown()
