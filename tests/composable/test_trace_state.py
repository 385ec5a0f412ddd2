"""`tracesieve.composable`'s `OtelTraceState`, the SDK's value class of the same
name: `th` and `rv` read by the specification's rules, every other member
carried as the SDK's class carries it, malformed ones included; while what
tracesieve's samplers pass on drops a malformed value whole."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace._sampling_experimental._trace_state import OtelTraceState as SdkTraceState
from opentelemetry.trace import TraceState

from tracesieve import ProbabilitySampler, _core
from tracesieve.composable._trace_state import OtelTraceState
from tracesieve.composable._util import INVALID_RANDOM_VALUE, INVALID_THRESHOLD

from helpers import ot_value, parent_context


def state(value: str) -> TraceState:
    return TraceState((("ot", value),))


def test_a_malformed_value_round_trips_in_the_class_but_not_through_a_sampler():
    for value in ["a", "#", "x:1;x:2"]:
        assert OtelTraceState.parse(state(value)).serialize() == SdkTraceState.parse(state(value)).serialize() == value
        kept = ProbabilitySampler(0.0).should_sample(parent_context(1, True, [("ot", value)]), 1, "child")
        assert kept.decision.is_sampled() and ot_value(kept.trace_state) is None, "a sampler drops it whole"


def test_nothing_is_read_from_a_malformed_value():
    # The SDK's class reads th:8 here (and would pass on "th:8;a"); a value that
    # breaks the grammar says nothing a sampler may use.
    parsed = OtelTraceState.parse(state("th:8;a"))
    assert (parsed.threshold, parsed.random_value, tuple(parsed.rest)) == (INVALID_THRESHOLD, INVALID_RANDOM_VALUE, ("a",))
    assert SdkTraceState.parse(state("th:8;a")).serialize() == "th:8;a"
    # Upper case is not hex the specification allows.
    assert OtelTraceState.parse(state("th:C;k:v")).serialize() == "k:v"


def test_values_over_the_length_limit_are_invalid_as_in_the_sdk():
    for value in ["a" * 257, "th:8;" + "k" * 252]:
        assert OtelTraceState.parse(state(value)) == OtelTraceState.invalid()
        assert SdkTraceState.parse(state(value)).serialize() == ""


MEMBERS = st.one_of(
    st.sampled_from(
        ["th:8", "th:c", "th:C", "th:", "th:123456789abcdef", "rv:0123456789abcd", "rv:123", "k:v", "x:1", "a", "#", "", "K:v", "k:v w"]
    ),
    st.text(alphabet="abcxyzABC0189:;#_.- ", max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(MEMBERS, min_size=1, max_size=6))
def test_the_rest_is_the_sdks_and_th_and_rv_are_the_specifications(members):
    value = ";".join(members)
    assume(value and len(value) <= 256 and state(value).get("ot") == value)  # what a TraceState holds
    ours = OtelTraceState.parse(state(value))
    th, rv, _ = _core.parse_ot(value)
    assert ours.threshold == (INVALID_THRESHOLD if th is None else th)
    assert ours.random_value == (INVALID_RANDOM_VALUE if rv is None else rv)
    # The SDK keeps an empty member (a trailing ';'); writing it back would make the value malformed.
    assert list(ours.rest) == [member for member in SdkTraceState.parse(state(value)).rest if member]
