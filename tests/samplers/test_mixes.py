"""Which mixes of samplers keep traces whole across two services (the table in
docs/samplers.md, from benches/mixes.py): consistent samplers, and anything
that follows its parent, always do; deciding afresh by another rule does not."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tracesieve import ProbabilitySampler, TraceIdRatioSampler
from tracesieve.testing import whole_traces

WHOLE = [
    (lambda: ProbabilitySampler(0.1), lambda: ProbabilitySampler(0.1, respect_parent=False)),
    (lambda: ProbabilitySampler(0.1), lambda: ParentBased(TraceIdRatioBased(0.1))),
    (lambda: ParentBased(TraceIdRatioBased(0.1)), lambda: ProbabilitySampler(0.1)),
    (lambda: TraceIdRatioSampler(0.1), lambda: TraceIdRatioBased(0.1)),
]
BROKEN = [
    (lambda: ParentBased(TraceIdRatioBased(0.1)), lambda: ProbabilitySampler(0.1, respect_parent=False)),
    (lambda: TraceIdRatioSampler(0.1), lambda: ProbabilitySampler(0.1, respect_parent=False)),
    (lambda: ProbabilitySampler(0.1), lambda: TraceIdRatioBased(0.1)),
]


@pytest.mark.parametrize("upstream,downstream", WHOLE)
def test_consistent_or_parent_following_mixes_keep_every_trace_whole(upstream, downstream):
    result = whole_traces(upstream(), downstream(), traces=5000)
    assert result.kept_upstream > 300
    assert result.whole == result.kept_upstream and result.orphans == 0


def test_a_stricter_consistent_downstream_keeps_a_subset_and_no_orphans():
    result = whole_traces(ProbabilitySampler(0.1), ProbabilitySampler(0.05, respect_parent=False), traces=20_000)
    assert result.orphans == 0, "every trace kept downstream is kept upstream too"
    # Half of the upstream traces, within five standard deviations.
    assert abs(result.whole_fraction - 0.5) <= 5 * (0.25 / result.kept_upstream) ** 0.5


@pytest.mark.parametrize("upstream,downstream", BROKEN)
def test_deciding_afresh_by_another_rule_breaks_traces(upstream, downstream):
    """The mix the docs warn about: a consistent sampler ignoring its parent next
    to a legacy trace-id-ratio one agree only by chance (about p of the time)."""
    result = whole_traces(upstream(), downstream(), traces=5000)
    assert result.whole_fraction < 0.2
    assert result.orphans > result.kept_upstream * 0.7
