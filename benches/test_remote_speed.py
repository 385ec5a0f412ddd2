"""`should_sample` under a remote (Jaeger) per-operation strategy of 100
operations, beside the SDK's `ParentBased(TraceIdRatioBased)` on the same calls.

Run: pytest benches/test_remote_speed.py --benchmark-only
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tracesieve import JaegerRemoteSampler

from workloads import BATCH

OPERATIONS = [f"GET /api/v1/resource-{i}" for i in range(100)]
STRATEGY = {
    "strategyType": "PROBABILISTIC",
    "operationSampling": {
        "defaultSamplingProbability": 0.1,
        "defaultLowerBoundTracesPerSecond": 0.1,
        "perOperationStrategies": [
            {"operation": name, "probabilisticSampling": {"samplingRate": 0.05 + 0.001 * i}} for i, name in enumerate(OPERATIONS)
        ],
    },
}


def remote_sampler():
    sampler = JaegerRemoteSampler("bench", start=False)
    sampler.update(STRATEGY)
    return sampler


SAMPLERS = {
    "sdk ParentBased(TraceIdRatioBased(0.1))": lambda: ParentBased(TraceIdRatioBased(0.1)),
    "tracesieve JaegerRemoteSampler, 100 operations": remote_sampler,
}


@pytest.mark.benchmark(group=f"should_sample, per-operation remote strategy (100 operations), mix of root and child spans, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_remote(benchmark, impl, mix_10pct):
    should_sample = SAMPLERS[impl]().should_sample
    calls = [(ctx, trace_id, OPERATIONS[i % len(OPERATIONS)]) for i, (ctx, trace_id) in enumerate(mix_10pct)]

    def run():
        for ctx, trace_id, name in calls:
            should_sample(ctx, trace_id, name, None, None, ())

    benchmark(run)


@pytest.mark.benchmark(group=f"should_sample, per-operation remote strategy (100 operations), root spans only, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_remote_roots(benchmark, impl, mix_10pct):
    """Every call consults the strategy: the per-operation lookup's whole cost."""
    should_sample = SAMPLERS[impl]().should_sample
    calls = [(trace_id, OPERATIONS[i % len(OPERATIONS)]) for i, (_, trace_id) in enumerate(mix_10pct)]

    def run():
        for trace_id, name in calls:
            should_sample(None, trace_id, name, None, None, ())

    benchmark(run)
