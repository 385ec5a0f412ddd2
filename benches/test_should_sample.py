"""`should_sample` per call over a mix of root spans and spans with a parent.

Run: pytest benches/test_should_sample.py --benchmark-only
Each benchmark round makes BATCH calls; divide the reported times by BATCH
(benches/ratios.py does that and prints ratios against the SDK baseline).
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tracesieve import ProbabilitySampler, TraceIdRatioSampler
from tracesieve.reference import ReferenceProbabilitySampler

from workloads import BATCH, mix_runner

ATTRIBUTES = {"http.route": "/api/order", "http.request.method": "GET"}

SAMPLERS = {
    "sdk TraceIdRatioBased(0.1)": lambda: TraceIdRatioBased(0.1),
    "sdk ParentBased(TraceIdRatioBased(0.1))": lambda: ParentBased(TraceIdRatioBased(0.1)),
    "python reference ProbabilitySampler(0.1)": lambda: ReferenceProbabilitySampler(0.1),
    "tracesieve ProbabilitySampler(0.1)": lambda: ProbabilitySampler(0.1),
    "tracesieve TraceIdRatioSampler(0.1)": lambda: TraceIdRatioSampler(0.1),
}


@pytest.mark.benchmark(group=f"should_sample, mix of root and child spans, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_mix(benchmark, impl, mix_10pct):
    benchmark(mix_runner(SAMPLERS[impl]().should_sample, mix_10pct, ATTRIBUTES))
