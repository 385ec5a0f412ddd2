"""The same plans with their state in this process (the local store) and in a
host store file shared by every process that names it: `should_sample` with
budget, rate limit and error windows, and `record_error`.

Run: pytest benches/test_store_speed.py --benchmark-only
"""

from __future__ import annotations

import pytest

from tracesieve import AdaptiveSampler, ErrorWindowProcessor, from_config

from workloads import BATCH, mix_runner


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
    "local store (baseline)": lambda folder: pipeline(None),
    "file store": lambda folder: pipeline(f"file://{folder}/should_sample.tracesieve"),
}


@pytest.mark.benchmark(group=f"should_sample, adaptive+budget+rate_limit, local vs file store, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_by_store(benchmark, impl, mix_10pct, tmp_path):
    benchmark(mix_runner(SAMPLERS[impl](tmp_path).should_sample, mix_10pct))


PROCESSORS = {
    "local store (baseline)": lambda folder: ErrorWindowProcessor(),
    "file store": lambda folder: ErrorWindowProcessor(store=f"file://{folder}/record_error.tracesieve"),
}


@pytest.mark.benchmark(group=f"record_error, local vs file store, x{BATCH}")
@pytest.mark.parametrize("impl", list(PROCESSORS))
def test_record_error_by_store(benchmark, impl, tmp_path):
    record = AdaptiveSampler(0.1, processor=PROCESSORS[impl](tmp_path)).record_error

    def run():
        for _ in range(BATCH):
            record()

    benchmark(run)
