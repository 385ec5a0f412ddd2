"""Differential test: tracesieve's native composite sampler against the SDK's
pure-Python one, on random trace ids, parents (none, local, remote; sampled or
not; with and without `th` and `rv`), span kinds and attributes, through a
dozen configurations including the specification's example: the same
decisions, the same `th` and `rv`, the same attributes (the SDK's own
composables add none; ours keep the span's start attributes, which the SDK's
composite sampler drops: see docs/composable.md)."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace import _sampling_experimental as sdk
from opentelemetry.sdk.trace._sampling_experimental import _rule_based as sdk_rules
from opentelemetry.sdk.trace._sampling_experimental._trace_state import OtelTraceState as SdkTraceState
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState, set_span_in_context

import tracesieve.composable as ours
from tracesieve.composable import _rule_based as our_rules

CASES_PER_CONFIGURATION = 9_000  # 12 configurations: 108,000 cases
THRESHOLDS = ["0", "8", "c", "fd70a4", "e6666666666666", "ff", "4"]
ROUTES = ["/health", "/checkout", "/checkout/cart", "/api/users", "/api/private/keys", "/API/users"]
KINDS = list(SpanKind)


def configurations(m, rules):
    """name -> a composable tree, built from module ``m`` (and its ``rules``)."""
    health = rules.AttributeValuesPredicate("http.route", ["/health"])
    checkout = rules.AttributePatternsPredicate("http.route", included=["/checkout*"])
    ten_rules = [(rules.AttributeValuesPredicate("http.route", [f"/r{i}"]), m.composable_traceid_ratio_based(i / 10)) for i in range(9)]
    ten_rules.append((rules.AlwaysMatchPredicate(), m.composable_traceid_ratio_based(0.05)))
    return {
        "always_on": m.composable_always_on(),
        "always_off": m.composable_always_off(),
        "ratio 0.1": m.composable_traceid_ratio_based(0.1),
        "ratio 0.5": m.composable_traceid_ratio_based(0.5),
        "parent threshold, ratio 0.25": m.composable_parent_threshold(m.composable_traceid_ratio_based(0.25)),
        "parent threshold, always off": m.composable_parent_threshold(m.composable_always_off()),
        # The specification's example configuration.
        "kitchen sink": m.composable_parent_threshold(
            m.composable_rule_based(
                [
                    (health, m.composable_always_off()),
                    (checkout, m.composable_always_on()),
                    (rules.AlwaysMatchPredicate(), m.composable_traceid_ratio_based(0.1)),
                ]
            )
        ),
        "patterns with exclusions": m.composable_rule_based(
            [(rules.AttributePatternsPredicate("http.route", ["/api/*"], ["/api/private/*"]), m.composable_always_on())]
        ),
        "span kinds and status": m.composable_rule_based(
            [
                (
                    rules.AllPredicate(
                        [
                            rules.SpanKindPredicate([SpanKind.SERVER, SpanKind.CLIENT]),
                            rules.AttributeValuesPredicate("status", ["404", "500"]),
                        ]
                    ),
                    m.composable_always_on(),
                ),
                (rules.SpanKindPredicate([SpanKind.SERVER]), m.composable_traceid_ratio_based(0.5)),
            ]
        ),
        "parents": m.composable_rule_based(
            [
                (rules.ParentPredicate(["remote"]), m.composable_parent_threshold(m.composable_always_off())),
                (rules.ParentPredicate(["local"]), m.composable_traceid_ratio_based(0.3)),
                (rules.ParentPredicate(["none"]), m.composable_traceid_ratio_based(0.7)),
            ]
        ),
        "sequence values": m.composable_rule_based(
            [(rules.AttributeValuesPredicate("http.request.method", ["POST"]), m.composable_always_on())]
        ),
        "ten rules": m.composable_parent_threshold(m.composable_rule_based(ten_rules)),
    }


def random_input(rng: random.Random):
    trace_id = rng.getrandbits(128) or 1
    attributes = {}
    if rng.random() < 0.8:
        attributes["http.route"] = rng.choice(ROUTES + [f"/r{i}" for i in range(10)])
    if rng.random() < 0.5:
        attributes["status"] = rng.choice([200, 404, 500, "404", True, 404.0])
    if rng.random() < 0.3:
        attributes["http.request.method"] = rng.choice([("GET", "POST"), ["GET"], "POST", ("PUT",)])
    kind = rng.choice([*KINDS, None])
    parent = rng.choice(["none", "local", "remote"])
    if parent == "none":
        return trace_id, None, None, kind, attributes
    ot = []
    if rng.random() < 0.5:
        ot.append(f"th:{rng.choice(THRESHOLDS)}")
    if rng.random() < 0.4:
        ot.append(f"rv:{rng.getrandbits(56):014x}")
    if rng.random() < 0.2:
        ot.append("k:v")
    entries = [("ot", ";".join(ot))] if ot else []
    if rng.random() < 0.3:
        entries.append(("vendor", "x1"))
    trace_state = TraceState(entries) if entries else None
    flags = TraceFlags(TraceFlags.SAMPLED if rng.random() < 0.5 else TraceFlags.DEFAULT)
    span_context = SpanContext(trace_id, rng.getrandbits(64) or 1, is_remote=parent == "remote", trace_flags=flags, trace_state=trace_state)
    return trace_id, set_span_in_context(NonRecordingSpan(span_context)), trace_state, kind, attributes


def fields(trace_state):
    state = SdkTraceState.parse(trace_state)
    return state.threshold, state.random_value


@pytest.mark.parametrize("name", list(configurations(ours, our_rules)))
def test_decisions_th_and_attributes_equal_the_sdks(name):
    theirs = sdk.composite_sampler(configurations(sdk, sdk_rules)[name])
    mine = ours.composite_sampler(configurations(ours, our_rules)[name])
    rng = random.Random(f"differential {name}")
    for _ in range(CASES_PER_CONFIGURATION):
        trace_id, context, trace_state, kind, attributes = random_input(rng)
        expected = theirs.should_sample(context, trace_id, "span", kind, attributes, None, trace_state)
        actual = mine.should_sample(context, trace_id, "span", kind, attributes, None, trace_state)
        case = (name, hex(trace_id), trace_state, kind, attributes)
        assert actual.decision == expected.decision, case
        if actual.decision.is_sampled():
            assert fields(actual.trace_state) == fields(expected.trace_state), case
            assert dict(actual.attributes) == {**attributes, **dict(expected.attributes or {})}, case
            if trace_state is not None:
                assert actual.trace_state.get("vendor") == trace_state.get("vendor"), case
        else:
            ours_th, ours_rv = fields(actual.trace_state)
            sdk_th, sdk_rv = fields(expected.trace_state)
            assert (ours_th, ours_rv) == (-1, sdk_rv), "a drop removes th and keeps rv"
            # The SDK leaves a dropped span's `th` behind when nothing else is in `ot`.
            if sdk_th != -1:
                assert trace_state.get("ot").startswith("th:") and ";" not in trace_state.get("ot"), case
    assert mine.stats()["decisions"] == CASES_PER_CONFIGURATION
    assert mine.stats()["input_errors"] == 0
