"""The same plans with their state in this process (the local store) and in a
host store file shared by every process that names it: `should_sample` with
budget, rate limit and error windows, and `record_error`.

Run: pytest benches/test_store_speed.py --benchmark-only
"""

from __future__ import annotations

import tempfile

import pytest

from tracesieve import AdaptiveSampler, ErrorWindowProcessor, from_config

from workloads import BATCH, mix_runner

_FOLDER = tempfile.mkdtemp(prefix="tracesieve-bench-")


def pipeline(store):
    """Probability, adaptive boost, a budget the run never reaches, and a rate limit."""
    return from_config(
        {
            "store": store,
            "adaptive": {"window": 300},
            "probability": {"rate": 0.1},
            "budget": {"budget": 10**15},
            "rate_limit": {"traces_per_second": 10**6},
        }
    )


SAMPLERS = {
    "local store (baseline)": lambda: pipeline(None),
    "file store": lambda: pipeline(f"file://{_FOLDER}/should_sample.tracesieve"),
}


@pytest.mark.benchmark(group=f"should_sample, adaptive+budget+rate_limit, local vs file store, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_by_store(benchmark, impl, mix_10pct):
    benchmark(mix_runner(SAMPLERS[impl]().should_sample, mix_10pct))


PROCESSORS = {
    "local store (baseline)": lambda: ErrorWindowProcessor(),
    "file store": lambda: ErrorWindowProcessor(store=f"file://{_FOLDER}/record_error.tracesieve"),
}


@pytest.mark.benchmark(group=f"record_error, local vs file store, x{BATCH}")
@pytest.mark.parametrize("impl", list(PROCESSORS))
def test_record_error_by_store(benchmark, impl):
    record = AdaptiveSampler(0.1, processor=PROCESSORS[impl]()).record_error

    def run():
        for _ in range(BATCH):
            record()

    benchmark(run)
