"""The same X-Ray rules and targets through the AWS distribution's own
sampler and through ours: the same rule for 10,000 random requests, and the
same keep rates per rule (reservoir and fixed rate) on one simulated clock."""

from __future__ import annotations

import math
import random
from typing import Any, Dict, List

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import Decision

import aws_reference
from tracesieve import XRayRemoteSampler
from tracesieve.testing import SimClock
from xray_fake import rule, target

T0 = 1_750_000_000.0

RULES = [
    rule("pay-post", 10, fixed_rate=0.5, reservoir=5, HTTPMethod="POST", URLPath="/pay/*"),
    rule("pay", 20, fixed_rate=0.2, reservoir=2, URLPath="/pay*"),
    rule("admin-host", 20, fixed_rate=1.0, reservoir=0, Host="admin.*.example.com"),
    rule("gold", 30, fixed_rate=0.3, reservoir=1, Attributes={"tier": "gold", "region": "eu-?"}),
    rule("health", 5, fixed_rate=0.0, reservoir=0, URLPath="/health"),
    rule("other-service", 1, fixed_rate=1.0, reservoir=9, ServiceName="billing"),
    rule("ec2-only", 40, fixed_rate=0.1, reservoir=1, ServiceType="AWS::EC2::Instance", HTTPMethod="G?T"),
    rule("lambda-only", 3, fixed_rate=1.0, reservoir=0, ServiceType="AWS::Lambda::Function"),
    rule("search", 50, fixed_rate=0.05, reservoir=3, URLPath="/search?q=*"),
    rule("api-v", 60, fixed_rate=0.15, reservoir=1, URLPath="/api/v?/*"),
    rule("Default", 10000, fixed_rate=0.05, reservoir=1),
]
RESOURCE = Resource.create({"service.name": "checkout", "cloud.platform": "aws_ec2"})


def random_request(rng: random.Random) -> Dict[str, Any]:
    """Attributes the way instrumentations set them: old and new HTTP names, full URLs, extras."""
    path = rng.choice(["/pay/card", "/pay", "/payments", "/health", "/api/v1/items", "/api/v12/x", "/search?q=shoes", "/", "/pay/"])
    attributes: Dict[str, Any] = {}
    style = rng.randrange(4)
    if style == 0:
        attributes["url.path"] = path
    elif style == 1:
        attributes["http.target"] = path
    elif style == 2:
        attributes["url.full"] = f"https://{rng.choice(['shop', 'admin.eu'])}.example.com{path}"
    if rng.random() < 0.8:
        attributes[rng.choice(["http.request.method", "http.method"])] = rng.choice(["GET", "POST", "post", "PUT", "GOT"])
    if rng.random() < 0.5:
        attributes[rng.choice(["server.address", "http.host"])] = rng.choice(
            ["admin.eu.example.com", "shop.example.com", "admin.example.com"]
        )
    if rng.random() < 0.4:
        attributes["tier"] = rng.choice(["gold", "silver"])
    if rng.random() < 0.4:
        attributes["region"] = rng.choice(["eu-1", "eu-12", "us-1"])
    return attributes


@pytest.fixture(scope="module")
def aws() -> Any:
    return aws_reference.load()


def both(aws: Any, clock: SimClock, resource: Resource = RESOURCE) -> tuple:
    theirs = aws_reference.rule_cache(aws, resource, aws_reference.sim_clock_for(aws, clock), RULES)
    ours = XRayRemoteSampler(resource, start=False, clock=clock, respect_parent=True)
    ours.update_rules([{"SamplingRuleRecords": RULES}])
    return theirs, ours


@pytest.mark.parametrize(
    "resource",
    [RESOURCE, Resource.create({"service.name": "billing"}), Resource.create({"service.name": "fn", "cloud.platform": "aws_lambda"})],
)
def test_the_same_rule_decides_10000_random_requests(aws, resource):
    clock = SimClock(T0)
    theirs, ours = both(aws, clock, resource)
    rng = random.Random(2026)
    chosen: Dict[str, int] = {}
    for _ in range(10_000):
        attributes = random_request(rng)
        expected = theirs.should_sample(None, rng.getrandbits(128), "request", attributes=attributes)._sampling_rule_name
        assert ours.rule_for(attributes) == expected, attributes
        chosen[expected] = chosen.get(expected, 0) + 1
    if resource is RESOURCE:
        assert len(chosen) >= 8, f"the requests exercise most rules: {chosen}"


def test_the_same_rates_per_rule_with_targets(aws):
    clock = SimClock(T0)
    theirs, ours = both(aws, clock)
    documents = [
        target("pay-post", 0.4, quota=3, ttl=T0 + 3600),
        target("pay", 0.1, quota=1, ttl=T0 + 3600),
        target("gold", 0.25, quota=0, ttl=T0 + 3600),
        target("api-v", 0.6, quota=5, ttl=T0 + 30),  # the quota ends halfway
        target("Default", 0.05, quota=2, ttl=T0 + 3600),
    ]
    theirs.update_sampling_targets(aws.SamplingTargetResponse(LastRuleModification=0, SamplingTargetDocuments=documents))
    ours.apply_targets({"SamplingTargetDocuments": documents, "LastRuleModification": 0})
    requests = {
        "pay-post": {"url.path": "/pay/card", "http.request.method": "POST"},
        "pay": {"url.path": "/payments"},
        "gold": {"url.path": "/x", "tier": "gold", "region": "eu-1"},
        "api-v": {"url.path": "/api/v1/items"},
        "Default": {"url.path": "/home"},
        "ec2-only": {"url.path": "/home", "http.method": "GET"},
    }
    rng = random.Random(7)
    kept: Dict[str, List[int]] = {name: [0, 0] for name in requests}
    seconds, per_second = 60, 100
    for _ in range(seconds * per_second):
        clock.advance(1.0 / per_second)
        for name, attributes in requests.items():
            for index, sampler in enumerate((theirs, ours)):
                result = sampler.should_sample(None, rng.getrandbits(128), "request", attributes=attributes)
                kept[name][index] += result.decision is Decision.RECORD_AND_SAMPLE
    n = seconds * per_second
    for name, (aws_kept, our_kept) in kept.items():
        # Each keeps about reservoir + rate x the rest; ours starts its bucket
        # full and theirs empty (at most one quota apart), and the draws differ.
        document = next((d for d in documents if d["RuleName"] == name), None)
        quota = document.get("ReservoirQuota", 0) if document else 1
        rate = (
            document["FixedRate"]
            if document
            else next(r["SamplingRule"]["FixedRate"] for r in RULES if r["SamplingRule"]["RuleName"] == name)
        )
        spread = 5 * math.sqrt(2 * n * rate * (1 - rate)) + quota + 2
        assert abs(aws_kept - our_kept) <= spread, (name, aws_kept, our_kept, spread)
