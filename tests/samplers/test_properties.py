"""Laws that hold for every input (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from tracesieve import ProbabilitySampler, TraceIdRatioSampler, _core
from tracesieve.reference import ReferenceProbabilitySampler, probability_to_th

from helpers import parent_context

trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)
rates = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 0.1, 0.01, 1e-6, 2.0**-56, 1 - 2.0**-53]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
positive_rates = st.floats(min_value=2.0**-56, max_value=1.0, allow_nan=False)


@settings(max_examples=2000)
@given(trace_id=st.integers(min_value=-(1 << 130), max_value=1 << 130), rate=rates)
def test_traceidratio_equals_sdk_for_all_ids_and_rates(trace_id, rate):
    ours = TraceIdRatioSampler(rate).should_sample(None, trace_id, "span").decision
    sdk = TraceIdRatioBased(rate).should_sample(None, trace_id, "span").decision
    assert ours is sdk


@settings(max_examples=300)
@given(trace_id=trace_ids, rate=rates, sampled=st.booleans())
def test_traceidratio_with_parent_equals_sdk_parent_based(trace_id, rate, sampled):
    from opentelemetry.sdk.trace.sampling import ParentBased

    ctx = parent_context(trace_id, sampled)
    ours = TraceIdRatioSampler(rate).should_sample(ctx, trace_id, "span").decision
    sdk = ParentBased(TraceIdRatioBased(rate)).should_sample(ctx, trace_id, "span").decision
    assert ours is sdk


@settings(max_examples=1000)
@given(trace_id=trace_ids, low=rates, high=rates)
def test_kept_at_p_means_kept_at_every_higher_p(trace_id, low, high):
    low, high = sorted((low, high))
    kept_low = ProbabilitySampler(low).should_sample(None, trace_id, "s").decision.is_sampled()
    kept_high = ProbabilitySampler(high).should_sample(None, trace_id, "s").decision.is_sampled()
    assert kept_high or not kept_low


@settings(max_examples=1000)
@given(rate=positive_rates, precision=st.integers(min_value=1, max_value=12))
def test_th_matches_the_spec_reference_and_round_trips(rate, precision):
    threshold = _core.threshold_for_probability(rate, precision)
    th = _core.encode_th(threshold)
    assert th == probability_to_th(rate, precision)
    assert _core.decode_th(th) == threshold
    assert _core.encode_th(_core.decode_th(th)) == th
    assert math.isclose(_core.adjusted_count(threshold), 1 / _core.probability_for_threshold(threshold))


@settings(max_examples=500)
@given(threshold=st.integers(min_value=0, max_value=(1 << 56) - 1))
def test_any_threshold_round_trips(threshold):
    assert _core.decode_th(_core.encode_th(threshold)) == threshold


@settings(max_examples=1000)
@given(
    trace_id=trace_ids,
    rate=rates,
    parent=st.sampled_from(["root", "sampled", "unsampled"]),
    respect_parent=st.booleans(),
    ot=st.one_of(
        st.none(),
        st.sampled_from(
            [
                "th:8",
                "th:0",
                "th:fd70a4",
                "rv:00000000000000",
                "rv:ffffffffffffff",
                "th:c;rv:abcdef01234567",
                "th:C;rv:D29D6A7215CED0",
                "th:c;rv:D29D6A7215CED0;k:v",
                "th:1;",
                "th:8;th:c",
                "rv:123;k:v",
                "X:1;th:8",
            ]
        ),
        st.from_regex(r"\A((th|rv|x[0-9]?|X):[0-9a-fA-F.]{0,15};){0,3}(th|rv):[0-9a-fA-F]{0,15};?\Z"),
    ),
)
def test_decision_and_tracestate_equal_the_pure_python_reference(trace_id, rate, parent, respect_parent, ot):
    entries = [("ot", ot)] if ot else []
    entries.append(("vendor", "keep-me"))
    ctx = None if parent == "root" else parent_context(trace_id, parent == "sampled", entries)
    ours = ProbabilitySampler(rate, respect_parent=respect_parent).should_sample(ctx, trace_id, "s", None, {"a": 1})
    ref = ReferenceProbabilitySampler(rate, respect_parent=respect_parent).should_sample(ctx, trace_id, "s", None, {"a": 1})
    assert ours.decision is ref.decision
    assert dict(ours.attributes) == dict(ref.attributes or {})
    ours_state = None if ours.trace_state is None else list(ours.trace_state.items())
    ref_state = None if ref.trace_state is None else list(ref.trace_state.items())
    assert ours_state == ref_state


@settings(max_examples=300)
@given(value=st.text(max_size=300))
def test_ot_parsing_never_fails_and_rewrite_stays_well_formed(value):
    th, rv = _core.read_ot(value)
    assert th is None or 0 <= th < 1 << 56
    assert rv is None or 0 <= rv < 1 << 56
    rewritten = _core.rewrite_ot(value, 0)
    assert rewritten is not None and rewritten.startswith("th:0")
    assert len(rewritten) <= 256
    assert all(0x20 < ord(c) < 0x7F and c not in ",=" for c in rewritten)
    assert _core.read_ot(rewritten)[0] == 0
