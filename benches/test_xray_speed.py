"""`should_sample` under 50 X-Ray sampling rules (served by a local fake of
X-Ray's endpoints to both samplers), beside the AWS distribution's own
`AwsXRayRemoteSampler` on the same calls, and the SDK's plain ratio sampler
(no rules at all) for scale. The request matches the 50th rule
(`Default`), so every rule is tried; reservoirs spent, fixed rates decide.

Run: pytest benches/test_xray_speed.py --benchmark-enable --benchmark-only
     (the AWS sampler: pip install --no-deps --target .reference/aws aws-opentelemetry-distro==0.21.0)
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tracesieve import RuleSampler, XRayRemoteSampler

from workloads import BATCH

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
import aws_reference
from xray_fake import FakeXRay, rule

RULES = [
    rule(f"route-{i:02d}", i + 1, fixed_rate=0.1, reservoir=1, URLPath=f"/api/v1/route-{i:02d}/*", HTTPMethod="GET") for i in range(49)
]
RULES.append(rule("Default", 10000, fixed_rate=0.05, reservoir=1))
ATTRIBUTES = {
    "http.request.method": "GET",
    "url.path": "/api/v2/orders/123",
    "server.address": "shop.example.com",
    "http.route": "/api/v2/orders/{id}",
}
RESOURCE = Resource.create({"service.name": "shop", "cloud.platform": "aws_ec2"})


@pytest.fixture(scope="module")
def fake():
    server = FakeXRay(RULES)
    yield server
    server.stop()


def aws_sampler(endpoint: str):
    logging.getLogger("amazon").setLevel(logging.CRITICAL)
    sampler = aws_reference.load().AwsXRayRemoteSampler(RESOURCE, endpoint=endpoint, polling_interval=300)
    time.sleep(0.5)  # its first rules fetch runs on a timer thread
    return sampler


def our_sampler(endpoint: str):
    sampler = XRayRemoteSampler(RESOURCE, endpoint=endpoint, polling_interval=300)
    deadline = time.monotonic() + 5
    while sampler.remote_status()["fetches"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    return sampler


def sdk_sampler(endpoint: str):
    return ParentBased(TraceIdRatioBased(0.05))


def rule_sampler(endpoint: str):
    """What reading these attributes costs any tracesieve sampler that matches on them."""
    return RuleSampler([{"name": "orders", "route": "/api/v1/orders/*", "rate": 0.1}], default_rate=0.05)


SAMPLERS = {
    "sdk ParentBased(TraceIdRatioBased(0.05)), no rules": sdk_sampler,
    "tracesieve RuleSampler, 1 route rule": rule_sampler,
    "aws AwsXRayRemoteSampler, 50 rules": aws_sampler,
    "tracesieve XRayRemoteSampler, 50 rules": our_sampler,
}


@pytest.mark.benchmark(group=f"should_sample, X-Ray rules (50), root spans matching the last rule, x{BATCH}")
@pytest.mark.parametrize("impl", list(SAMPLERS))
def test_should_sample_xray(benchmark, impl, fake, mix_10pct):
    sampler = SAMPLERS[impl](fake.endpoint)
    probe = sampler.should_sample(None, 1, "GET /api/v2/orders/{id}", attributes=ATTRIBUTES)
    assert probe is not None
    should_sample = sampler.should_sample
    trace_ids = [trace_id for _, trace_id in mix_10pct]

    def run():
        for trace_id in trace_ids:
            should_sample(None, trace_id, "GET /api/v2/orders/{id}", None, ATTRIBUTES, ())

    benchmark(run)
    if hasattr(sampler, "shutdown"):
        sampler.shutdown()
