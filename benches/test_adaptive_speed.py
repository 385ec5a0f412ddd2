"""Adaptive sampling costs: recording an error, on_end for an ordinary span,
and should_sample with the boost against the unboosted base.

Run: pytest benches/test_adaptive_speed.py --benchmark-only
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from tracesieve import AdaptiveSampler, ErrorWindowProcessor, ProbabilitySampler
from tracesieve.reference import PythonErrorWindowProcessor, SeedErrorWindow

from workloads import BATCH, mix_runner

ERRORS_IN_WINDOW = 20_000


def seed_window_with_errors():
    """The seed's list window holding 20k errors from the last five minutes."""
    window = SeedErrorWindow()
    import time

    now = time.time()
    window._errors = [now - 299 + i * (298 / ERRORS_IN_WINDOW) for i in range(ERRORS_IN_WINDOW)]
    return window


RECORDERS = {
    "python reference: the seed's list window (20k errors in it), x10": lambda: seed_window_with_errors().record_error,
    "tracesieve ErrorWindowProcessor.record_error, x10": lambda: ErrorWindowProcessor().record_error,
}


@pytest.mark.benchmark(group="record one error, x10")
@pytest.mark.parametrize("impl", list(RECORDERS))
def test_record_error(benchmark, impl):
    record = RECORDERS[impl]()

    def run():
        for _ in range(10):
            record()

    benchmark(run)


def ended_spans():
    """Real SDK spans, ended, without errors: what on_end sees for ordinary traffic."""
    provider = TracerProvider(sampler=ALWAYS_ON)
    tracer = provider.get_tracer("bench")
    spans = []
    for i in range(BATCH):
        span = tracer.start_span("GET /api/order", attributes={"http.route": "/api/order", "n": i})
        span.end()
        spans.append(span)
    return spans


PROCESSORS = {
    "python reference processor (deque windows)": lambda: PythonErrorWindowProcessor(),
    "tracesieve ErrorWindowProcessor": lambda: ErrorWindowProcessor(),
    "tracesieve ErrorWindowProcessor with per-route thresholds": lambda: ErrorWindowProcessor(route_thresholds={"/api/order": 0.5}),
}


@pytest.mark.benchmark(group=f"on_end, ordinary spans, x{BATCH}")
@pytest.mark.parametrize("impl", list(PROCESSORS))
def test_on_end(benchmark, impl):
    on_end = PROCESSORS[impl]().on_end
    spans = ended_spans()

    def run():
        for span in spans:
            on_end(span)

    benchmark(run)


def boosted():
    sampler = AdaptiveSampler(ProbabilitySampler(0.1))
    sampler.record_error(6)  # x2 in force
    return sampler


SAMPLERS = {
    "tracesieve ProbabilitySampler(0.1), unboosted (baseline)": lambda: ProbabilitySampler(0.1),
    "tracesieve AdaptiveSampler(ProbabilitySampler(0.1)), x2 boost in force": boosted,
}


@pytest.mark.benchmark(group=f"should_sample with the boost, mix of root and child spans, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_boosted(benchmark, impl, mix_10pct):
    benchmark(mix_runner(SAMPLERS[impl]().should_sample, mix_10pct))
