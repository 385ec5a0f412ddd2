"""The seed's full pipeline (force-keep, adaptive, rules with tiers and a
schedule, budget) per `should_sample` and per `start_span` + `end`.

Run: pytest benches/test_pipeline_speed.py --benchmark-only
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tracesieve import from_config, load_config
from tracesieve.policies import seed_policy
from tracesieve.reference import SeedPipelineSampler

from test_rule_speed import seed_runner
from workloads import BATCH

SEED_PIPELINE = Path(__file__).resolve().parent.parent / "examples" / "example_pipeline.toml"


def seed_pipeline():
    document = load_config(SEED_PIPELINE)
    document["budget"]["budget"] = 1e9  # a bill the benchmark never reaches
    document["record_rule"] = False
    return from_config(document)


SAMPLERS = {
    "sdk ParentBased(TraceIdRatioBased(0.1))": lambda: ParentBased(TraceIdRatioBased(0.1)),
    "python reference of the seed's multi-stage decision": lambda: SeedPipelineSampler(seed_policy()),
    "tracesieve from_config(example_pipeline.toml)": seed_pipeline,
}


@pytest.mark.benchmark(group=f"should_sample, seed's full pipeline, root spans, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_pipeline_should_sample(benchmark, impl):
    benchmark(seed_runner(SAMPLERS[impl]().should_sample))


def ten_percent_pipeline():
    """The full pipeline (force-keep, adaptive, rules, budget) where the traffic
    falls to the default rate of 10%."""
    document = load_config(SEED_PIPELINE)
    document["rules"]["multipliers"] = []
    document["budget"]["budget"] = 1e9
    document["record_rule"] = False
    return from_config(document)


START = {
    "sdk ParentBased(TraceIdRatioBased(0.1))": lambda: ParentBased(TraceIdRatioBased(0.1)),
    "tracesieve full pipeline at 10%": ten_percent_pipeline,
}


@pytest.mark.benchmark(group=f"start_span+end, full pipeline at 10%, x{BATCH}")
@pytest.mark.parametrize("impl", list(START))
def test_pipeline_start_span(benchmark, impl):
    tracer = TracerProvider(sampler=START[impl]()).get_tracer("bench")
    start_span = tracer.start_span
    attributes = {"http.route": "/api/catalog", "http.request.method": "GET"}

    def run():
        for _ in range(BATCH):
            start_span("GET /api/catalog", attributes=attributes).end()

    benchmark(run)
