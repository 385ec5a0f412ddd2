"""The SDK relies on these properties of every Sampler; ours must keep them."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.span import TraceState

from tracesieve import ProbabilitySampler, TraceIdRatioSampler

from helpers import ot_value, parent_context

SAMPLERS = [ProbabilitySampler, TraceIdRatioSampler]
ALL_ONES = (1 << 128) - 1


@pytest.mark.parametrize("cls", SAMPLERS)
def test_is_a_truthy_sdk_sampler(cls):
    sampler = cls(0.5)
    assert isinstance(sampler, Sampler)
    assert bool(sampler)
    assert TracerProvider(sampler=sampler).sampler is sampler


@pytest.mark.parametrize("cls", SAMPLERS)
def test_description_names_class_and_rate(cls):
    assert cls(0.25).get_description() == f"{cls.__name__}{{0.25}}"
    assert cls(0.25, respect_parent=False).get_description() == f"{cls.__name__}{{0.25,respect_parent=False}}"
    assert repr(cls(1)) == f"{cls.__name__}{{1}}"


@pytest.mark.parametrize("cls", SAMPLERS)
def test_start_attributes_are_echoed_on_keep(cls):
    attributes = {"http.route": "/api/order", "n": 3, "flags": (True, False)}
    result = cls(1.0).should_sample(None, ALL_ONES, "span", SpanKind.SERVER, attributes, ())
    assert isinstance(result, SamplingResult)
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert dict(result.attributes) == attributes


@pytest.mark.parametrize("cls", SAMPLERS)
def test_dropped_spans_carry_no_attributes(cls):
    result = cls(0.0).should_sample(None, ALL_ONES, "span", None, {"a": 1})
    assert result.decision is Decision.DROP
    assert dict(result.attributes) == {}
    assert result.trace_state is None


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("sampled", [True, False])
def test_parent_tracestate_is_carried_through(cls, sampled):
    entries = [("vendor", "abc"), ("other", "x:1")]
    ctx = parent_context(ALL_ONES, sampled, entries)
    result = cls(0.5).should_sample(ctx, ALL_ONES, "child")
    assert result.decision is (Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP)
    assert list(result.trace_state.items()) == entries


@pytest.mark.parametrize("cls", SAMPLERS)
def test_positional_and_keyword_arguments(cls):
    sampler = cls(1.0)
    by_position = sampler.should_sample(None, 5, "n", SpanKind.CLIENT, {"a": 1}, [], None)
    by_keyword = sampler.should_sample(
        parent_context=None, trace_id=5, name="n", kind=SpanKind.CLIENT, attributes={"a": 1}, links=[], trace_state=None
    )
    minimal = sampler.should_sample(None, 5, "n")
    for result in (by_position, by_keyword, minimal):
        assert result.decision is Decision.RECORD_AND_SAMPLE
    assert dict(by_keyword.attributes) == {"a": 1}
    # The class-level method works too (as a plain Sampler subclass would).
    assert type(sampler).should_sample(sampler, None, 5, "n").decision is Decision.RECORD_AND_SAMPLE


def test_passed_trace_state_is_ignored_like_the_sdk():
    # The SDK never passes trace_state; the parent's comes from the context.
    result = ProbabilitySampler(0.0).should_sample(None, 5, "n", trace_state=TraceState([("k", "v")]))
    assert result.trace_state is None


def test_kept_root_carries_th_for_its_rate():
    result = ProbabilitySampler(0.25).should_sample(None, ALL_ONES, "root")
    assert ot_value(result.trace_state) == "th:c"
    assert ProbabilitySampler(0.01).threshold == "fd70a4"
    assert ProbabilitySampler(1.0).threshold == "0"
    assert ProbabilitySampler(0.0).threshold is None


def test_precision_controls_th_digits():
    assert ProbabilitySampler(0.1, precision=3).threshold == "e66"
    assert ProbabilitySampler(0.1, precision=4).threshold == "e666"
    assert ProbabilitySampler(0.1).threshold == "e6666"


def test_legacy_sampler_writes_no_th_and_erases_a_stale_one():
    ctx = parent_context(ALL_ONES, False, [("ot", "th:8;rv:00000000000001"), ("v", "1")])
    result = TraceIdRatioSampler(1.0, respect_parent=False).should_sample(ctx, ALL_ONES, "child")
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert list(result.trace_state.items()) == [("ot", "rv:00000000000001"), ("v", "1")]


def test_stats_counts_paths():
    sampler = ProbabilitySampler(0.5)
    sampler.should_sample(None, ALL_ONES, "root")
    sampler.should_sample(None, 0, "root")
    sampler.should_sample(parent_context(1, True), 1, "child")
    sampler.should_sample(parent_context(1, False), 1, "child")
    assert sampler.stats() == {
        "decisions": 4,
        "sampled": 2,
        "dropped": 2,
        "root": 2,
        "parent_sampled": 1,
        "parent_not_sampled": 1,
        "child_independent": 0,
        "forced_keep": 0,
        "input_errors": 0,
        "incoming_ignored": 0,
    }


def test_same_decision_as_sdk_for_a_few_fixed_ids():
    for rate in (0.0, 0.1, 0.5, 1.0):
        sdk = TraceIdRatioBased(rate)
        ours = TraceIdRatioSampler(rate)
        for trace_id in (0, 1, 2**63, 2**64 - 1, 2**64, ALL_ONES, 0x0AF7651916CD43DD8448EB211C80319C):
            assert ours.should_sample(None, trace_id, "n").decision is sdk.should_sample(None, trace_id, "n").decision


@pytest.mark.parametrize("cls", SAMPLERS)
def test_results_held_by_the_caller_are_never_changed_by_later_decisions(cls):
    sampler = cls(1.0)
    first = sampler.should_sample(None, ALL_ONES, "a", None, {"n": 1})
    second = sampler.should_sample(parent_context(ALL_ONES, True, [("v", "1")]), ALL_ONES, "b", None, {"n": 2})
    third = sampler.should_sample(None, ALL_ONES, "c", None, {"n": 3})
    assert dict(first.attributes) == {"n": 1}
    assert dict(second.attributes) == {"n": 2} and second.trace_state.get("v") == "1"
    assert dict(third.attributes) == {"n": 3}
    assert len({id(first), id(second), id(third)}) == 3
