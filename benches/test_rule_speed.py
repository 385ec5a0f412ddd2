"""The seed's full policy (5 routes, 3 tiers, 3 schedule windows, 5 force-keep
conditions) per `should_sample`, beside a pure-Python interpreter of the same
policy and the SDK's TraceIdRatioBased.

Run: pytest benches/test_rule_speed.py --benchmark-only
"""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import SpanKind

from tracesieve import RuleSampler
from tracesieve.policies import seed_policy
from tracesieve.reference import ReferenceRuleSampler

from workloads import BATCH

ROUTES = ["/api/payment", "/api/order", "/api/user/login", "/api/health", "/api/metrics", "/api/catalog", "/api/search"]
ROUTE_WEIGHTS = [5, 15, 10, 20, 10, 25, 15]
TIERS = ["premium", "standard", "free"]


def seed_traffic(seed: int = 4):
    """Root spans as an HTTP server starts them: route, method, tier; 2% carry a business event."""
    rng = random.Random(seed)
    calls = []
    for _ in range(BATCH):
        route = rng.choices(ROUTES, ROUTE_WEIGHTS)[0]
        attributes = {"http.route": route, "http.request.method": "GET", "user.tier": rng.choice(TIERS)}
        if rng.random() < 0.02:
            attributes["business.event"] = rng.choice(["payment", "order.created"])
            attributes["payment.amount"] = rng.choice([20, 2500])
        calls.append((rng.getrandbits(128), "GET " + route, attributes))
    return calls


SAMPLERS = {
    "sdk TraceIdRatioBased(0.1)": lambda: TraceIdRatioBased(0.1),
    "python reference of the seed policy": lambda: ReferenceRuleSampler(**seed_policy()),
    "tracesieve RuleSampler(seed policy)": lambda: RuleSampler(**seed_policy()),
}


def seed_runner(should_sample):
    """One benchmark round: the seed traffic's root spans through `should_sample`."""
    calls = seed_traffic()
    server = SpanKind.SERVER

    def run():
        for trace_id, name, attributes in calls:
            should_sample(None, trace_id, name, server, attributes, ())

    return run


@pytest.mark.benchmark(group=f"should_sample, seed policy, root spans, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_seed_policy(benchmark, impl):
    benchmark(seed_runner(SAMPLERS[impl]().should_sample))
