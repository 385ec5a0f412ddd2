"""``trust_incoming=False``: an edge service ignores what callers send. A
caller's ``rv`` of all ones used to make every span kept (adjusted counts 100x
too many); with the setting, spans with a remote parent are decided afresh, as
roots, the caller's ``th`` and ``rv`` are not passed on, and local parents are
followed as usual. For every sampler, and ``trust_incoming = false`` in documents."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import set_span_in_context

from tracesieve import (
    AdaptiveSampler,
    BudgetSampler,
    ConfigError,
    JaegerRemoteSampler,
    ProbabilitySampler,
    RuleSampler,
    TraceIdRatioSampler,
    from_config,
)

from helpers import ot_value, parent_context

HOSTILE = [("ot", "th:0;rv:ffffffffffffff"), ("congo", "t61rcWkgMzE")]
N = 20_000


def _decide(sampler, sampled=True, entries=HOSTILE, remote=True, n=N):
    rng = random.Random(5)
    results = []
    for _ in range(n):
        trace_id = rng.getrandbits(128) | 1
        results.append(sampler.should_sample(parent_context(trace_id, sampled, entries, remote=remote), trace_id, "GET /"))
    return results


def test_a_hostile_rv_forces_every_keep_unless_incoming_is_distrusted():
    trusting = ProbabilitySampler(0.01, respect_parent=False)
    assert sum(r.decision.is_sampled() for r in _decide(trusting)) == N, "the specification's behaviour: rv decides"
    edge = ProbabilitySampler(0.01, respect_parent=False, trust_incoming=False)
    kept = [r for r in _decide(edge) if r.decision.is_sampled()]
    # 1% of 20,000: 200, within 5 sigma (sigma = 14.1).
    assert 130 <= len(kept) <= 270, len(kept)
    for result in kept:
        assert ot_value(result.trace_state) == "th:fd70a4", "our own th, and no rv of the caller's"
        assert result.trace_state.get("congo") == "t61rcWkgMzE", "other vendors' entries pass through"
    dropped = next(r for r in _decide(edge, n=50) if not r.decision.is_sampled())
    assert ot_value(dropped.trace_state) is None, "a drop does not pass the caller's rv on either"
    assert edge.stats()["incoming_ignored"] == N + 50


def test_a_remote_parent_is_decided_as_a_root_and_a_local_one_is_followed():
    edge = ProbabilitySampler(0.0, trust_incoming=False)
    assert not any(r.decision.is_sampled() for r in _decide(edge, sampled=True, n=200)), "the caller's sampled flag is ignored"
    local = _decide(edge, sampled=True, entries=[("ot", "th:0")], remote=False, n=200)
    assert all(r.decision.is_sampled() for r in local), "a parent in this process is followed"
    assert edge.stats()["incoming_ignored"] == 200


@pytest.mark.parametrize(
    "make",
    [
        lambda: TraceIdRatioSampler(0.01, trust_incoming=False),
        lambda: RuleSampler([{"route": "/x", "rate": 1.0}], default_rate=0.01, trust_incoming=False),
        lambda: AdaptiveSampler(ProbabilitySampler(0.01), trust_incoming=False),
        lambda: BudgetSampler(ProbabilitySampler(0.01), budget=10**9, trust_incoming=False),
        lambda: BudgetSampler(ProbabilitySampler(0.01, trust_incoming=False), budget=10**9),
        lambda: JaegerRemoteSampler("svc", initial_rate=0.01, start=False, trust_incoming=False),
        lambda: from_config({"trust_incoming": False, "probability": {"rate": 0.01}}),
    ],
    ids=["trace_id_ratio", "rules", "adaptive", "budget", "budget-inherits", "jaeger", "document"],
)
def test_every_sampler_takes_the_setting(make):
    sampler = make()
    assert sampler.trust_incoming is False
    kept = sum(r.decision.is_sampled() for r in _decide(sampler))
    assert kept <= 400, f"{kept} of {N} kept: the caller decided"
    assert "trust_incoming=False" in sampler.get_description() or any("decided afresh" in line for line in sampler.description)


def test_spans_in_a_real_provider_start_afresh_at_the_edge():
    provider = TracerProvider(sampler=ProbabilitySampler(0.0, trust_incoming=False))
    tracer = provider.get_tracer("edge")
    span = tracer.start_span("request", context=parent_context(0xABC, True, HOSTILE))
    assert not span.get_span_context().trace_flags.sampled
    child = ProbabilitySampler(0.0, trust_incoming=False).should_sample(set_span_in_context(span), 0xABC, "child")
    assert not child.decision.is_sampled()


def test_a_bad_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="trust_incoming"):
        ProbabilitySampler(0.5, trust_incoming="no")
    with pytest.raises(ConfigError, match="trust_incoming"):
        from_config({"trust_incoming": "no", "probability": {"rate": 0.5}})
