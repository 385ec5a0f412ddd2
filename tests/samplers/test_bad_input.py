"""Bad configuration fails at construction; bad span input never raises."""

from __future__ import annotations

import math

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.span import TraceState

from tracesieve import ProbabilitySampler, TraceIdRatioSampler

from helpers import parent_context

SAMPLERS = [ProbabilitySampler, TraceIdRatioSampler]


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("rate,shown", [(1.5, "1.5"), (-0.1, "-0.1"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_rate_out_of_range(cls, rate, shown):
    with pytest.raises(ValueError, match=rf"^rate: {shown} is out of range; expected a number in \[0, 1\]$"):
        cls(rate)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_rate_nan(cls):
    with pytest.raises(ValueError, match=r"^rate: NaN is not a probability; expected a number in \[0, 1\]$"):
        cls(float("nan"))


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("rate,type_name", [("0.1", "str"), (None, "NoneType"), (True, "bool"), ([0.1], "list")])
def test_rate_not_a_number(cls, rate, type_name):
    with pytest.raises(TypeError, match=rf"^rate: expected a number in \[0, 1\], got {type_name} "):
        cls(rate)


def test_numeric_types_are_accepted():
    from decimal import Decimal
    from fractions import Fraction

    assert ProbabilitySampler(1).rate == 1.0
    assert ProbabilitySampler(Fraction(1, 4)).threshold == "c"
    assert ProbabilitySampler(Decimal("0.5")).threshold == "8"


def test_other_settings_are_checked():
    with pytest.raises(ValueError, match=r"^precision: 0 is out of range; expected a whole number of hex digits from 1 to 12$"):
        ProbabilitySampler(0.1, precision=0)
    with pytest.raises(TypeError, match=r"^precision: expected a whole number"):
        ProbabilitySampler(0.1, precision=4.0)
    with pytest.raises(TypeError, match=r"^respect_parent: expected True or False, got str"):
        ProbabilitySampler(0.1, respect_parent="no")


ODD_TRACE_IDS = ["abc", 1.5, None, object(), b"\x01", -1, 1 << 200, -(1 << 200), True]


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("trace_id", ODD_TRACE_IDS, ids=repr)
def test_odd_trace_ids_give_a_defined_decision(cls, trace_id):
    sampler = cls(0.5)
    result = sampler.should_sample(None, trace_id, "s")
    assert result.decision in (Decision.DROP, Decision.RECORD_AND_SAMPLE)
    if not isinstance(trace_id, int):
        # Randomness is taken as zero: the consistent sampler drops (below rate 1),
        # the legacy one (keeps small values) keeps.
        expected = Decision.RECORD_AND_SAMPLE if cls is TraceIdRatioSampler else Decision.DROP
        assert result.decision is expected
        assert sampler.stats()["input_errors"] == 1


class Weird:
    def __eq__(self, other):
        raise RuntimeError("no comparisons")

    def __hash__(self):
        raise RuntimeError("no hashing")


ODD_ATTRIBUTES = [[1, 2], "text", 5, {"a": object()}, {1: 2}, {"a": [1, {"x"}]}, Weird()]


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("attributes", ODD_ATTRIBUTES, ids=repr)
def test_odd_attributes_never_raise(cls, attributes):
    result = cls(1.0).should_sample(None, 1, "s", None, attributes)
    assert result.decision is Decision.RECORD_AND_SAMPLE
    if isinstance(attributes, dict):
        assert dict(result.attributes) == attributes
    else:
        assert dict(result.attributes) == {}


class BrokenSpan(NonRecordingSpan):
    def get_span_context(self):
        raise RuntimeError("broken span")


class BrokenContext(dict):
    pass


ODD_CONTEXTS = [
    "not a context",
    42,
    [1, 2, 3],
    Context({_SPAN_KEY: "not a span"}),
    Context({_SPAN_KEY: object()}),
    Context({_SPAN_KEY: BrokenSpan(SpanContext(1, 2, False))}),
    Context({Weird(): 1}) if False else Context({"other": 1}),
    {_SPAN_KEY: NonRecordingSpan("not a span context")},
    {_SPAN_KEY: NonRecordingSpan(SpanContext(0, 0, False))},  # invalid parent
]


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("ctx", ODD_CONTEXTS, ids=repr)
def test_odd_parent_contexts_are_treated_as_root(cls, ctx):
    sampler = cls(1.0)
    result = sampler.should_sample(ctx, 1 << 127 | (1 << 56) - 1, "s")
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert sampler.stats()["root"] == 1


def span_context_with_state(state):
    sc = SpanContext(1 << 127 | (1 << 56) - 1, 2, True, TraceFlags(1), None)
    # Bypass TraceState validation, as a buggy propagator might.
    return set_span_in_context(NonRecordingSpan(tuple.__new__(SpanContext, (sc[0], sc[1], sc[2], sc[3], state, True))))


def raw_trace_state(entries: dict) -> TraceState:
    state = TraceState()
    state._dict = dict(entries)
    return state


MALFORMED_STATES = [
    raw_trace_state({"ot": "th:" + "f" * 5000}),
    raw_trace_state({"ot": ";" * 100_000}),
    raw_trace_state({"ot": "th:zz;rv:12"}),
    raw_trace_state({"ot": 12345}),
    raw_trace_state({"ot": "\udcff\x00th:8"}),
    raw_trace_state({f"k{i}": "v" for i in range(32)}),
    raw_trace_state({f"k{i}": "v" for i in range(500)}),
    {"ot": "th:8"},
    "ot=th:8",
    None,
    42,
]


@pytest.mark.parametrize("respect_parent", [True, False])
@pytest.mark.parametrize("state", MALFORMED_STATES, ids=lambda s: repr(s)[:40])
def test_malformed_or_oversized_tracestate_gives_a_decision(state, respect_parent):
    sampler = ProbabilitySampler(0.5, respect_parent=respect_parent)
    result = sampler.should_sample(span_context_with_state(state), 1 << 127 | (1 << 56) - 1, "s")
    assert result.decision is Decision.RECORD_AND_SAMPLE


def test_full_tracestate_is_not_truncated_to_add_th():
    entries = [(f"k{i}", "v") for i in range(32)]
    result = ProbabilitySampler(1.0, respect_parent=False).should_sample(parent_context(5, True, entries), 5, "s")
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert list(result.trace_state.items()) == entries


def test_parent_with_inconsistent_th_loses_it():
    # rv says 0: a parent kept "at th:8" cannot have been, so th is erased.
    ctx = parent_context(5, True, [("ot", "th:8;rv:00000000000000"), ("v", "1")])
    result = ProbabilitySampler(0.1).should_sample(ctx, 5, "s")
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert list(result.trace_state.items()) == [("ot", "rv:00000000000000"), ("v", "1")]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_a_clock_interrupted_by_the_user_is_not_swallowed(stop):
    """Regression: a KeyboardInterrupt or SystemExit raised inside a user clock
    was swallowed and counted as a clock error."""
    from tracesieve import AdaptiveSampler, RuleSampler

    armed = {"now": False}

    def clock():
        if armed["now"]:
            raise stop()
        return 1_767_225_600.0

    schedule = {"schedule": {"timezone": "UTC", "windows": [{"start": 0, "end": 24, "factor": 1.0}]}}
    sampler = RuleSampler([], default_rate=0.5, multipliers=[schedule], clock=clock)
    adaptive = AdaptiveSampler(0.5, clock=clock)
    armed["now"] = True
    with pytest.raises(stop):
        sampler.should_sample(None, 12345, "s")
    with pytest.raises(stop):
        adaptive.record_error()
    armed["now"] = False
    assert sampler.stats()["clock_errors"] == 0


def test_any_other_clock_failure_falls_back_to_system_time_and_is_counted():
    def broken():
        raise RuntimeError("clock source gone")

    schedule = {"schedule": {"timezone": "UTC", "windows": [{"start": 0, "end": 24, "factor": 1.0}]}}
    from tracesieve import RuleSampler

    sampler = RuleSampler([], default_rate=1.0, multipliers=[schedule], clock=broken)
    assert sampler.should_sample(None, 12345, "s").decision.is_sampled()
    assert sampler.stats()["clock_errors"] >= 1


@pytest.mark.parametrize(
    "now,shown",
    [(10**5000, "an integer of about 5001 digits"), ("noon", "str 'noon'"), (True, "bool True")],
    ids=["huge-integer", "text", "bool"],
)
def test_explain_takes_now_as_a_number_or_says_what_it_got(now, shown):
    """explain(now=10**5000) raised OverflowError and now="noon" TypeError."""
    from tracesieve import ConfigError, RuleSampler, from_config

    for explain in (RuleSampler(rules=[], default_rate=0.5).explain, from_config({"probability": {"rate": 0.5}}).explain):
        with pytest.raises(ConfigError, match=rf"^now: expected Unix seconds \(a number\), got {shown}$"):
            explain("GET /", {}, now=now)
        assert explain("GET /", {}, now=1.7e9) == explain("GET /", {}, now=1_700_000_000)
