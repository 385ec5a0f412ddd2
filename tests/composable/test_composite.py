"""The composite sampler through real TracerProviders: parents read from the
context, start attributes kept, annotations, composables and predicates
written in Python (and what they raise), the tracestate rules, tracesieve's
own nodes, bad input."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.trace import _sampling_experimental as sdk
from opentelemetry.trace import SpanKind, TraceState

from tracesieve import ConfigError, from_config
from tracesieve.composable import (
    CompositeSampler,
    SamplingIntent,
    composable_always_off,
    composable_always_on,
    composable_annotating,
    composable_any_of,
    composable_parent_threshold,
    composable_pipeline,
    composable_rate_limited,
    composable_rule_based,
    composable_traceid_ratio_based,
    composite_sampler,
)
from tracesieve.composable._rule_based import AlwaysMatchPredicate, AttributePatternsPredicate, AttributeValuesPredicate, ParentPredicate

from helpers import ot_value, parent_context

ALL_ONES = (1 << 128) - 1
C = 0xC0000000000000  # randomness that clears th:c exactly


def test_in_a_tracer_provider_children_keep_the_parents_th_and_start_attributes(provider_factory):
    """The SDK's TracerProvider passes samplers no tracestate. Ours reads the
    parent's from the context (as the specification intends); the SDK's
    composite then sees none, erases the parent's th and drops the start attributes."""
    tree = composable_parent_threshold(composable_traceid_ratio_based(0.5))
    provider, exporter = provider_factory(composite_sampler(tree))
    parent = parent_context(C, True, [("ot", "th:c"), ("vendor", "v")])
    provider.get_tracer("t").start_span("child", context=parent, attributes={"http.route": "/a"}).end()
    (span,) = exporter.get_finished_spans()
    assert ot_value(span.context.trace_state) == "th:c"
    assert span.context.trace_state.get("vendor") == "v"
    assert dict(span.attributes) == {"http.route": "/a"}

    sdk_provider, sdk_exporter = provider_factory(
        sdk.composite_sampler(sdk.composable_parent_threshold(sdk.composable_traceid_ratio_based(0.5)))
    )
    sdk_provider.get_tracer("t").start_span("child", context=parent, attributes={"http.route": "/a"}).end()
    (sdk_span,) = sdk_exporter.get_finished_spans()
    assert ot_value(sdk_span.context.trace_state) is None and "vendor" not in sdk_span.context.trace_state
    assert dict(sdk_span.attributes) == {}


def test_annotating_adds_attributes_to_kept_spans_only(provider_factory):
    tree = composable_rule_based(
        [
            (AttributeValuesPredicate("tier", ["gold"]), composable_annotating(composable_always_on(), {"sampled.by": "gold", "n": 2})),
            (AlwaysMatchPredicate(), composable_annotating(composable_always_off(), {"never": True})),
        ]
    )
    provider, exporter = provider_factory(composite_sampler(tree))
    tracer = provider.get_tracer("t")
    tracer.start_span("a", attributes={"tier": "gold"}).end()
    tracer.start_span("b", attributes={"tier": "free"}).end()
    (kept,) = exporter.get_finished_spans()
    assert dict(kept.attributes) == {"tier": "gold", "sampled.by": "gold", "n": 2}
    intent = tree.sampling_intent(None, "a", None, {"tier": "gold"}, None, None)
    assert intent == SamplingIntent(0, True, {"sampled.by": "gold", "n": 2})


class Sticky:
    """A composable written in Python: keeps premium users, says so, and adds
    a vendor tracestate entry (trying, and failing, to change `ot` too)."""

    def sampling_intent(self, parent_ctx, name, span_kind, attributes, links, trace_state):
        premium = (attributes or {}).get("tier") == "premium"

        def update(state: TraceState) -> TraceState:
            return state.add("sticky", "1").update("ot", "th:fff") if "ot" in state else state.add("sticky", "1")

        return sdk.SamplingIntent(0 if premium else -1, True, {"sticky": premium}, update)

    def get_description(self):
        return "Sticky"


def test_composables_and_predicates_written_in_python(provider_factory):
    calls = []

    def is_client(parent_ctx, name, span_kind, attributes, links, trace_state):
        calls.append(name)
        return span_kind is SpanKind.CLIENT

    tree = composable_rule_based([(is_client, composable_always_off()), (AlwaysMatchPredicate(), Sticky())])
    provider, exporter = provider_factory(composite_sampler(tree))
    tracer = provider.get_tracer("t")
    tracer.start_span("premium", attributes={"tier": "premium"}).end()
    tracer.start_span("free", attributes={"tier": "free"}).end()
    tracer.start_span("client", kind=SpanKind.CLIENT, attributes={"tier": "premium"}).end()
    (span,) = exporter.get_finished_spans()
    assert span.name == "premium" and dict(span.attributes) == {"tier": "premium", "sticky": True}
    assert span.context.trace_state.get("sticky") == "1"
    assert ot_value(span.context.trace_state) == "th:0", "composables never change the ot entry"
    assert calls == ["premium", "free", "client"]


def test_what_python_parts_raise_is_counted_never_raised(provider_factory):
    def broken(*args, **kwargs):
        raise RuntimeError("predicate bug")

    class BrokenComposable:
        def sampling_intent(self, *args):
            raise RuntimeError("composable bug")

        def get_description(self):
            return "Broken"

    sampler = composite_sampler(
        composable_any_of(
            composable_rule_based([(broken, composable_always_on())]), BrokenComposable(), composable_traceid_ratio_based(1.0)
        )
    )
    provider, exporter = provider_factory(sampler)
    provider.get_tracer("t").start_span("x").end()
    assert len(exporter.get_finished_spans()) == 1, "the working delegate still keeps it"
    assert sampler.stats()["input_errors"] == 1


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("part", ["predicate", "composable", "update_trace_state"])
def test_ctrl_c_or_an_exit_in_a_python_part_goes_through(part, stop):
    """Found by giving the Python parts odd failures: a KeyboardInterrupt (the
    user's Ctrl-C arriving while a predicate runs) or a SystemExit was counted as
    an input error and the program went on, as it would for a bug in the part."""

    def interrupted(*args, **kwargs):
        raise stop()

    class Interrupted:
        def sampling_intent(self, *args):
            raise stop()

        def get_description(self):
            return "Interrupted"

    class Updating:
        def sampling_intent(self, *args):
            return SamplingIntent(threshold=0, threshold_reliable=True, update_trace_state=interrupted)

        def get_description(self):
            return "Updating"

    tree = {
        "predicate": lambda: composable_rule_based([(interrupted, composable_always_on())]),
        "composable": Interrupted,
        "update_trace_state": Updating,
    }[part]()
    sampler = composite_sampler(tree)
    with pytest.raises(stop):
        sampler.should_sample(None, 0x1234, "GET /")
    assert sampler.stats()["input_errors"] == 0


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_attribute_interrupted_while_read_as_text_is_not_swallowed(stop):
    """An attribute predicate reads a value that is no string by its str(), as
    the SDK's does: one interrupted there (the user's Ctrl-C) was taken as no match."""

    class Tier:
        def __str__(self) -> str:
            raise stop()

    sampler = composite_sampler(composable_rule_based([(AttributeValuesPredicate("tier", ["premium"]), composable_always_on())]))
    with pytest.raises(stop):
        sampler.should_sample(None, 0x1234, "GET /", attributes={"tier": Tier()})
    assert sampler.should_sample(None, 0x1234, "GET /", attributes={"tier": "premium"}).decision.is_sampled()


def test_a_drop_removes_th_and_keeps_the_rest_of_ot():
    sampler = composite_sampler(composable_always_off())
    result = sampler.should_sample(parent_context(ALL_ONES, True, [("ot", "th:8;rv:ffffffffffffff;k:v")]), ALL_ONES, "x")
    assert not result.decision.is_sampled()
    assert ot_value(result.trace_state) == "rv:ffffffffffffff;k:v"


def test_trust_incoming_false_decides_remote_children_as_roots():
    tree = composable_rule_based([(ParentPredicate(["none"]), composable_always_on()), (AlwaysMatchPredicate(), composable_always_off())])
    remote_child = parent_context(ALL_ONES, False, [("ot", "th:8")])
    assert not composite_sampler(tree).should_sample(remote_child, ALL_ONES, "x").decision.is_sampled()
    edge = CompositeSampler(tree, trust_incoming=False)
    kept = edge.should_sample(remote_child, ALL_ONES, "x")
    assert kept.decision.is_sampled() and ot_value(kept.trace_state) == "th:0"
    assert edge.stats()["incoming_ignored"] == 1


def test_a_pipeline_node_decides_as_the_same_pipeline_does_alone():
    """A tracesieve pipeline inside a tree: the spans that reach it are paced
    to its budget exactly as the pipeline alone paces them; the others (here
    kept by always_on) never spend it."""
    now = 1_767_225_600.0 + 20 * 60  # 1 January 2026, 00:20 UTC

    def clock():
        return now

    document = {"probability": {"rate": 1.0}, "budget": {"budget": 100_000, "period": "hour"}}
    alone = from_config(dict(document, store="memory"), clock=clock)
    tree = composable_rule_based(
        [
            (AttributeValuesPredicate("http.route", ["/checkout"]), composable_always_on()),
            (AlwaysMatchPredicate(), composable_pipeline(document)),
        ]
    )
    composite = CompositeSampler(tree, clock=clock)
    ids = [(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1) for i in range(1, 5_001)]
    kept = 0
    for i, trace_id in enumerate(ids):
        if i % 10 == 0:
            assert composite.should_sample(None, trace_id, "s", None, {"http.route": "/checkout"}).decision.is_sampled()
        ours = composite.should_sample(None, trace_id, "s", None, {"http.route": "/other"})
        expected = alone.should_sample(None, trace_id, "s", None, {"http.route": "/other"})
        assert ours.decision == expected.decision and ot_value(ours.trace_state) == ot_value(expected.trace_state)
        kept += ours.decision.is_sampled()
    assert 0 < kept < len(ids), "pacing is in force: some kept, not all"


def test_threads_hammering_one_composite_sampler():
    seen = []

    def counting(parent_ctx, name, span_kind, attributes, links, trace_state):
        seen.append(1)
        return True

    sampler = composite_sampler(composable_rule_based([(counting, composable_traceid_ratio_based(0.5))]))
    ids = [(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1) for i in range(1, 2_001)]
    expected = sum(1 for i in ids if (i & ((1 << 56) - 1)) >= 1 << 55)
    kept = []

    def run():
        kept.append(sum(sampler.should_sample(None, i, "x").decision.is_sampled() for i in ids))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kept == [expected] * 8
    assert len(seen) == 8 * len(ids) and sampler.stats()["decisions"] == 8 * len(ids)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: composable_traceid_ratio_based(2), "ratio: 2 is out of range"),
        (lambda: ParentPredicate(["remot"]), "'remot' is not a parent"),
        (
            lambda: composable_rule_based([(AlwaysMatchPredicate(), object())]),
            r"rules\[0\]: <object object at .*> is not a composable sampler",
        ),
        (lambda: composable_rate_limited(composable_always_on(), "fast"), "traces_per_second: expected a number"),
        (lambda: composite_sampler(composable_rate_limited(composable_always_on(), -1)), "traces_per_second: -1"),
        (lambda: composite_sampler(composable_pipeline({"probabilty": {"rate": 1}})), 'did you mean "probability"'),
        (lambda: composite_sampler(composable_any_of()), "expected at least one"),
        # Found by fuzzing: these raised OverflowError, TypeError or AttributeError.
        (lambda: composable_traceid_ratio_based(10**400), "ratio: an integer of about 401 digits is out of range"),
        (lambda: composable_rate_limited(composable_always_on(), 10**400), "traces_per_second: an integer of about 401 digits"),
        (lambda: composable_rule_based(5), "rules: expected a list of (predicate, sampler) pairs, got int"),
        (lambda: composite_sampler([]), "delegate: [] is not a composable sampler"),
        (lambda: AttributeValuesPredicate("http.route", 5), "values: expected a list of strings, got int"),
        (lambda: AttributeValuesPredicate("http.route", "/health"), "values: expected a list of strings, got str"),
        (lambda: AttributePatternsPredicate("http.route", included=True), "included: expected a list of strings, got bool"),
    ],
)
def test_bad_input_fails_at_construction_with_a_config_error(build, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?").replace("[]", r"\[\]")):
        build()


def test_pipeline_nodes_get_their_strategy_poller_and_span_processor(tmp_path):
    import json
    import time

    from tracesieve import ErrorWindowProcessor

    strategy = tmp_path / "strategy.json"
    strategy.write_text(json.dumps({"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.0}}))
    tree = composable_rule_based(
        [
            (
                AttributeValuesPredicate("http.route", ["/remote"]),
                composable_pipeline({"jaeger_remote": {"service_name": "shop", "endpoint": f"file://{strategy}", "initial_rate": 1.0}}),
            ),
            (AlwaysMatchPredicate(), composable_pipeline({"adaptive": {}, "probability": {"rate": 0.1}})),
        ]
    )
    sampler = composite_sampler(tree)
    try:
        assert isinstance(sampler.processor, ErrorWindowProcessor)
        deadline = time.monotonic() + 10
        while sampler.remote_status(0)["updates"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.remote_status(0)["probability"] == 0.0
        assert not sampler.should_sample(None, ALL_ONES, "s", None, {"http.route": "/remote"}).decision.is_sampled()
    finally:
        sampler.close()


def test_an_xray_remote_pipeline_node_is_refused_with_what_to_use_instead():
    with pytest.raises(ConfigError, match="xray_remote: is not supported inside a composite sampler; use XRayRemoteSampler"):
        composite_sampler(composable_pipeline({"xray_remote": {"service_name": "shop"}}))
