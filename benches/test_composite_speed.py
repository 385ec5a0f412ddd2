"""A 10-rule rule-based composite sampler (under parent_threshold), natively
against the SDK's pure-Python composite sampler, on the same spans: half root
spans, half children, with routes, tiers, status codes and kinds that reach
every rule.

Run: pytest benches/test_composite_speed.py --benchmark-only
"""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace import _sampling_experimental as sdk
from opentelemetry.sdk.trace._sampling_experimental import _rule_based as sdk_rules
from opentelemetry.trace import SpanKind

import tracesieve.composable as ours
from tracesieve.composable import _rule_based as our_rules

from workloads import BATCH, sampling_mix


def ten_rules(m, rules):
    return m.composable_parent_threshold(
        m.composable_rule_based(
            [
                (rules.AttributeValuesPredicate("http.route", ["/health", "/metrics"]), m.composable_always_off()),
                (rules.AttributePatternsPredicate("http.route", ["/admin/*"]), m.composable_always_off()),
                (rules.AttributeValuesPredicate("user.tier", ["premium"]), m.composable_always_on()),
                (
                    rules.AllPredicate(
                        [rules.SpanKindPredicate([SpanKind.SERVER]), rules.AttributeValuesPredicate("http.route", ["/checkout"])]
                    ),
                    m.composable_always_on(),
                ),
                (rules.AttributeValuesPredicate("http.response.status_code", ["500", "503"]), m.composable_always_on()),
                (
                    rules.AttributePatternsPredicate("http.route", ["/api/v1/*"], ["/api/v1/internal/*"]),
                    m.composable_traceid_ratio_based(0.2),
                ),
                (rules.SpanKindPredicate([SpanKind.CLIENT]), m.composable_traceid_ratio_based(0.05)),
                (rules.ParentPredicate(["remote"]), m.composable_traceid_ratio_based(0.5)),
                (rules.AttributeValuesPredicate("http.route", ["/search"]), m.composable_traceid_ratio_based(0.01)),
                (rules.AlwaysMatchPredicate(), m.composable_traceid_ratio_based(0.1)),
            ]
        )
    )


SAMPLERS = {
    "SDK composite_sampler (pure Python, baseline)": lambda: sdk.composite_sampler(ten_rules(sdk, sdk_rules)),
    "tracesieve.composable composite_sampler": lambda: ours.composite_sampler(ten_rules(ours, our_rules)),
}

ROUTES = ["/health", "/admin/users", "/checkout", "/api/v1/orders", "/api/v1/internal/x", "/search", "/home", "/cart"]


@pytest.fixture(scope="session")
def composite_calls():
    rng = random.Random(5)
    calls = []
    for context, trace_id in sampling_mix(0.1):
        attributes = {"http.route": rng.choice(ROUTES), "user.tier": rng.choice(["free", "standard", "premium"])}
        if rng.random() < 0.2:
            attributes["http.response.status_code"] = rng.choice([200, 404, 500])
        calls.append((context, trace_id, rng.choice([SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL]), attributes))
    return calls


@pytest.mark.benchmark(group=f"should_sample, 10-rule composite sampler, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_composite_should_sample(benchmark, impl, composite_calls):
    should_sample = SAMPLERS[impl]().should_sample

    def run():
        for context, trace_id, kind, attributes in composite_calls:
            should_sample(context, trace_id, "GET", kind, attributes, ())

    benchmark(run)
