"""The specification's tracestate rules (tracestate-handling.md), through real
samplers and a real TracerProvider: `th` and `rv` are lowercase hex only; an
invalid `th` or `rv` is neither used nor passed on (the rest of `ot` is kept);
a value that breaks the grammar is dropped whole."""

from __future__ import annotations

import pytest

from tracesieve import ProbabilitySampler, RuleSampler

from helpers import ot_value, parent_context

ALL_ONES = (1 << 128) - 1
LOW_TRACE_ID = 1  # randomness 1: dropped at any rate below 1 when read from the trace id


def child(sampler, ot, sampled=True, trace_id=ALL_ONES):
    return sampler.should_sample(parent_context(trace_id, sampled, [("ot", ot), ("vendor", "v1")]), trace_id, "child")


@pytest.mark.parametrize(
    ("ot", "inherited"),
    [
        ("th:C", None),  # upper-case th: invalid, removed
        ("th:FD70A4;k:v", "k:v"),
        ("rv:D29D6A7215CED0;k:v", "k:v"),  # upper-case rv: invalid, removed
        ("th:c;rv:D29D6A7215CED0", "th:c"),  # the invalid rv does not take the valid th with it
        ("th:x;rv:0123456789abcd", "rv:0123456789abcd"),
        ("th:123456789abcdef", None),  # 15 digits
        ("th:;k:v", "k:v"),  # empty th
        ("rv:123;k:v", "k:v"),
        ("th:1;", None),  # trailing ';': malformed, dropped whole
        ("k:v;th:8;th:c", None),  # repeated key: malformed
        ("K:v;th:8", None),  # upper-case key: malformed
        ("th:8;k:v w", None),  # a space: malformed
        ("th:8;k:v", "th:8;k:v"),  # sound: passed on as it is
    ],
)
def test_what_a_parent_based_child_passes_on(ot, inherited):
    result = child(ProbabilitySampler(0.0), ot)  # respects the parent: kept, inherits
    assert result.decision.is_sampled()
    assert ot_value(result.trace_state) == inherited
    assert result.trace_state.get("vendor") == "v1", "other vendors' entries are always kept"
    dropped = child(ProbabilitySampler(1.0), ot, sampled=False)
    assert not dropped.decision.is_sampled()
    assert ot_value(dropped.trace_state) == inherited, "a dropped span's context is inherited too"


def test_an_invalid_rv_is_not_used_as_randomness():
    # A valid rv of all ones would keep at any rate; upper case makes it invalid,
    # so the trace id's randomness (1) decides: dropped at 25%.
    upper = child(ProbabilitySampler(0.25, respect_parent=False), "rv:FFFFFFFFFFFFFF", trace_id=LOW_TRACE_ID)
    assert not upper.decision.is_sampled()
    lower = child(ProbabilitySampler(0.25, respect_parent=False), "rv:ffffffffffffff", trace_id=LOW_TRACE_ID)
    assert lower.decision.is_sampled() and ot_value(lower.trace_state) == "th:c;rv:ffffffffffffff"


def test_an_invalid_th_is_not_checked_for_consistency_nor_kept():
    # th:C would be inconsistent with randomness 1 (and erased); being invalid, it is simply gone.
    result = child(ProbabilitySampler(0.0), "th:C;k:v", trace_id=LOW_TRACE_ID)
    assert result.decision.is_sampled() and ot_value(result.trace_state) == "k:v"


def test_a_kept_root_decision_writes_th_then_rv_then_the_rest():
    sampler = ProbabilitySampler(1.0, respect_parent=False)
    result = child(sampler, "k:v;rv:ffffffffffffff;th:8")
    assert ot_value(result.trace_state) == "th:0;rv:ffffffffffffff;k:v"
    assert list(result.trace_state.keys()) == ["ot", "vendor"]


def test_malformed_ot_is_replaced_by_our_own_on_a_fresh_decision():
    result = child(ProbabilitySampler(1.0, respect_parent=False), "th:8;")
    assert ot_value(result.trace_state) == "th:0"


def test_rule_samplers_follow_the_same_rules():
    sampler = RuleSampler([{"name": "all", "span_name": "child", "action": "keep"}], default_rate=0.0)
    result = child(sampler, "th:C;rv:0123456789abcd")
    assert ot_value(result.trace_state) == "th:0;rv:0123456789abcd"


def test_through_a_tracer_provider_the_invalid_th_never_reaches_exported_children(provider_factory):
    provider, exporter = provider_factory(ProbabilitySampler(0.5))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("child", context=parent_context(ALL_ONES, True, [("ot", "th:C;rv:ffffffffffffff")])):
        with tracer.start_as_current_span("grandchild"):
            pass
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert {ot_value(span.context.trace_state) for span in spans} == {"rv:ffffffffffffff"}
