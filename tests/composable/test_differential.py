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


def same_decision(theirs, mine, rng: random.Random, label):
    """One random span through both samplers, which must decide it alike:
    (its trace state, its attributes, the SDK's result, ours, the case to show)."""
    trace_id, context, trace_state, kind, attributes = random_input(rng)
    expected = theirs.should_sample(context, trace_id, "span", kind, attributes, None, trace_state)
    actual = mine.should_sample(context, trace_id, "span", kind, attributes, None, trace_state)
    case = (label, hex(trace_id), trace_state, kind, attributes)
    assert actual.decision == expected.decision, case
    return trace_state, attributes, expected, actual, case


@pytest.mark.parametrize("name", list(configurations(ours, our_rules)))
def test_decisions_th_and_attributes_equal_the_sdks(name):
    theirs = sdk.composite_sampler(configurations(sdk, sdk_rules)[name])
    mine = ours.composite_sampler(configurations(ours, our_rules)[name])
    rng = random.Random(f"differential {name}")
    for _ in range(CASES_PER_CONFIGURATION):
        trace_state, attributes, expected, actual, case = same_decision(theirs, mine, rng, name)
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


RATIOS = [0, 1e-9, 0.001, 0.05, 0.1, 0.25, 0.5, 0.7, 0.999, 1]


def random_tree(rng: random.Random, depth: int = 0) -> tuple:
    """A composable tree as plain data: leaves, parent thresholds and rule lists nested
    three deep, with every predicate kind (empty lists and no rules included)."""
    shapes = ["always_on", "always_off", "ratio"] + (["parent", "rules"] if depth < 3 else [])
    shape = rng.choice(shapes)
    if shape == "ratio":
        return ("ratio", rng.choice(RATIOS))
    if shape == "parent":
        return ("parent", random_tree(rng, depth + 1))
    if shape != "rules":
        return (shape,)
    rules = []
    for _ in range(rng.randint(0, 4)):
        kind = rng.choice(["always", "values", "patterns", "kinds", "parents", "all"])
        if kind == "values":
            predicate: tuple = ("values", tuple(rng.sample(["/health", "/checkout", "/api/users", "/r1", "/r2"], rng.randint(0, 2))))
        elif kind == "patterns":
            included = tuple(rng.sample(["/api/*", "/checkout*", "*", "/r?", "[!/]*"], rng.randint(0, 2)))
            predicate = ("patterns", included, tuple(rng.sample(["/api/private/*", "*users"], rng.randint(0, 1))))
        elif kind == "kinds":
            predicate = ("kinds", tuple(rng.sample(KINDS, rng.randint(0, 2))))
        elif kind == "parents":
            predicate = ("parents", tuple(rng.sample(["none", "local", "remote"], rng.randint(0, 2))))
        else:
            predicate = (kind,)
        rules.append((predicate, random_tree(rng, depth + 1)))
    return ("rules", tuple(rules))


def predicate_of(rules, spec: tuple):
    kind = spec[0]
    if kind == "values":
        return rules.AttributeValuesPredicate("http.route", list(spec[1]))
    if kind == "patterns":
        return rules.AttributePatternsPredicate("http.route", list(spec[1]) or None, list(spec[2]) or None)
    if kind == "kinds":
        return rules.SpanKindPredicate(list(spec[1]))
    if kind == "parents":
        return rules.ParentPredicate(list(spec[1]))
    if kind == "all":
        return rules.AllPredicate([rules.AttributeValuesPredicate("status", ["404", "500"]), rules.SpanKindPredicate([SpanKind.SERVER])])
    return rules.AlwaysMatchPredicate()


def tree_of(m, rules, spec: tuple):
    shape = spec[0]
    if shape == "always_on":
        return m.composable_always_on()
    if shape == "always_off":
        return m.composable_always_off()
    if shape == "ratio":
        return m.composable_traceid_ratio_based(spec[1])
    if shape == "parent":
        return m.composable_parent_threshold(tree_of(m, rules, spec[1]))
    return m.composable_rule_based([(predicate_of(rules, p), tree_of(m, rules, s)) for p, s in spec[1]])


def test_random_trees_decide_as_the_sdks():
    """400 random trees (nested rules, parent thresholds, every predicate), 300 random
    inputs each: the same decisions and the same `th` as the SDK's composite sampler."""
    rng = random.Random("random trees")
    for _ in range(400):
        spec = random_tree(rng)
        theirs = sdk.composite_sampler(tree_of(sdk, sdk_rules, spec))
        mine = ours.composite_sampler(tree_of(ours, our_rules, spec))
        for _ in range(300):
            _, _, expected, actual, case = same_decision(theirs, mine, rng, spec)
            if actual.decision.is_sampled():
                assert fields(actual.trace_state)[0] == fields(expected.trace_state)[0], case
