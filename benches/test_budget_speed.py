"""`should_sample` with budget pacing against the inner sampler alone (the
budget's record on the host, its default, and in this process's memory).

Run: pytest benches/test_budget_speed.py --benchmark-only
"""

from __future__ import annotations

import pytest

from tracesieve import BudgetSampler, ProbabilitySampler

from workloads import BATCH, mix_runner


def paced(store=None):
    """Far more demand than budget: pacing is in force, few spans are kept."""
    return BudgetSampler(ProbabilitySampler(0.1), budget=1_000_000, store=store)


def unpaced(store=None):
    """A budget the benchmark never reaches: pacing sits at 1, every kept span reserves budget."""
    return BudgetSampler(ProbabilitySampler(0.1), budget=10**15, store=store)


SAMPLERS = {
    "tracesieve ProbabilitySampler(0.1) alone (baseline)": lambda: ProbabilitySampler(0.1),
    "tracesieve BudgetSampler(ProbabilitySampler(0.1)), budget never reached": unpaced,
    "tracesieve BudgetSampler(ProbabilitySampler(0.1)), pacing in force": paced,
    "tracesieve BudgetSampler(ProbabilitySampler(0.1)), pacing in force, store=memory": lambda: paced("memory"),
}


@pytest.mark.benchmark(group=f"should_sample with budget pacing, mix of root and child spans, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_paced(benchmark, impl, mix_10pct):
    benchmark(mix_runner(SAMPLERS[impl]().should_sample, mix_10pct))
