"""OTEP 250's use case, as the Java contrib's UseCaseTest replays it:

    S = RateLimited(AnyOf(
          ParentThreshold(RuleBased(ROOT, {
              http.target == /healthCheck => AlwaysOff,
              http.target == /checkout    => AlwaysOn,
              true                        => Probability(0.25)})),
          RuleBased(CLIENT, {http.url == /foo => AlwaysOn})),
        1000 traces per second)

on a simulated clock, with our own assertions for the rate limit (the
contrib's limiter smooths differently; ours keeps about its rate)."""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from tracesieve.composable import (
    CompositeSampler,
    composable_always_off,
    composable_always_on,
    composable_any_of,
    composable_parent_threshold,
    composable_rate_limited,
    composable_rule_based,
    composable_traceid_ratio_based,
)
from tracesieve.composable._rule_based import (
    AllPredicate,
    AlwaysMatchPredicate,
    AttributeValuesPredicate,
    ParentPredicate,
    SpanKindPredicate,
)

from helpers import ot_value


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def use_case(clock):
    root = ParentPredicate(["none"])
    tree = composable_rate_limited(
        composable_any_of(
            composable_parent_threshold(
                composable_rule_based(
                    [
                        (AllPredicate([root, AttributeValuesPredicate("http.target", ["/healthCheck"])]), composable_always_off()),
                        (AllPredicate([root, AttributeValuesPredicate("http.target", ["/checkout"])]), composable_always_on()),
                        (AlwaysMatchPredicate(), composable_traceid_ratio_based(0.25)),
                    ]
                )
            ),
            composable_rule_based(
                [
                    (
                        AllPredicate([SpanKindPredicate([SpanKind.CLIENT]), AttributeValuesPredicate("http.url", ["/foo"])]),
                        composable_always_on(),
                    )
                ]
            ),
        ),
        1000.0,
    )
    return tree, CompositeSampler(tree, clock=clock)


def test_the_use_cases_intents():
    clock = Clock()
    tree, _ = use_case(clock)
    intent = lambda kind, attributes: tree.sampling_intent(None, "A", kind, attributes, None, None)  # noqa: E731
    assert intent(SpanKind.SERVER, {"http.target": "/healthCheck"}).threshold == -1, "health checks are dropped"
    assert intent(SpanKind.SERVER, {"http.target": "/checkout"}).threshold == 0, "checkouts are kept"
    assert intent(SpanKind.CLIENT, {"http.url": "/foo"}).threshold == 0, "client calls to /foo are kept"
    assert intent(SpanKind.SERVER, {}).threshold == 0xC0000000000000, "other roots at 25%"


def test_the_rate_limit_kicks_in_above_1000_traces_a_second():
    clock = Clock()
    tree, sampler = use_case(clock)
    kept = 0
    for i in range(30_000):  # three seconds of checkouts at 10,000 a second
        clock.now += 0.0001
        result = sampler.should_sample(
            None, (i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1), "B", SpanKind.SERVER, {"http.target": "/checkout"}
        )
        kept += result.decision.is_sampled()
    # At most the bucket's burst (a second's worth) plus the rate for three seconds.
    assert 2_700 <= kept <= 1_000 + 3 * 1_000, kept
    intent = tree.sampling_intent(None, "B", SpanKind.SERVER, {"http.target": "/checkout"}, None, None)
    assert 0 < intent.threshold < 1 << 56, "above its rate the limit lowers the probability, reliably"
    assert intent.threshold_reliable
    late = sampler.should_sample(None, (1 << 56) - 1, "B", SpanKind.SERVER, {"http.target": "/checkout"})
    assert late.decision.is_sampled() and ot_value(late.trace_state) != "th:0", "keeps carry the lowered probability"
