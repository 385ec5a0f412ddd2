"""XRayRemoteSampler against a local fake of X-Ray's sampling endpoints:
rule matching, reservoirs and fixed rates, the statistics it reports, quota
TTLs and intervals, composition, entry points and fork."""

from __future__ import annotations

import logging
import math
import multiprocessing
import random
import time
from typing import Any, Dict, List, Optional

import pytest
from opentelemetry.sdk._configuration import _import_sampler
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased

from test_remote import wait_for
from tracesieve import AdaptiveSampler, BudgetSampler, ConfigError, ProbabilitySampler, XRayRemoteSampler, from_config
from tracesieve.testing import SimClock
from xray_fake import FakeXRay, rule, target

T0 = 1_750_000_000.0


def shop(**extra: Any) -> Resource:
    return Resource.create({"service.name": "shop", **extra})


def sampler_with(rules: List[Dict[str, Any]], resource: Optional[Resource] = None, **kwargs: Any) -> XRayRemoteSampler:
    sampler = XRayRemoteSampler(resource or shop(), start=False, **kwargs)
    sampler.update_rules([{"SamplingRuleRecords": rules}])
    return sampler


def root_keeps(
    sampler: Any, clock: SimClock, seconds: float, per_second: int, attributes: Optional[dict] = None, seed: int = 1
) -> List[Any]:
    """Root decisions at an even rate on the simulated clock; the kept results."""
    rng = random.Random(seed)
    kept = []
    for _ in range(int(seconds * per_second)):
        clock.advance(1.0 / per_second)
        result = sampler.should_sample(None, rng.getrandbits(128), "GET /", attributes=attributes)
        if result.decision is Decision.RECORD_AND_SAMPLE:
            kept.append(result)
    return kept


def ot_of(result: Any) -> Optional[str]:
    return result.trace_state.get("ot") if result.trace_state is not None else None


# -- matching ------------------------------------------------------------------

MATCHING_RULES = [
    rule("post", 1, HTTPMethod="POST"),
    rule("pay", 2, URLPath="/pay/*"),
    rule("one-char-host", 3, Host="api.?.example.com"),
    rule("gold", 4, Attributes={"tier": "gold", "region": "eu-*"}),
    rule("billing-only", 5, ServiceName="billing"),
    rule("lambda-only", 6, ServiceType="AWS::Lambda::Function"),
    rule("ecs-arn", 7, ResourceARN="arn:aws:ecs:*:container/shop-*"),
    rule("shop-prefix", 8, ServiceName="sh?p", URLPath="/exact"),
    rule("Default", 10000, fixed_rate=0.05),
]


@pytest.mark.parametrize(
    "attributes, expected",
    [
        ({"http.request.method": "POST"}, "post"),
        ({"http.method": "POST"}, "post"),
        ({"http.request.method": "post"}, "Default"),  # case-sensitive, as the AWS samplers match
        ({"url.path": "/pay/card"}, "pay"),
        ({"http.target": "/pay/"}, "pay"),
        ({"url.full": "https://shop.example.com/pay/card?x=1#top"}, "pay"),
        ({"http.url": "http://shop.example.com:8080/pay/x"}, "pay"),
        ({"url.path": "/pays"}, "Default"),
        ({"url.path": "/other", "url.full": "https://x/pay/x"}, "Default"),  # url.path wins over the full URL
        ({"url.full": "shop.example.com/pay/x"}, "Default"),  # no scheme: not a full URL
        ({"server.address": "api.1.example.com"}, "one-char-host"),
        ({"http.host": "api.x.example.com"}, "one-char-host"),
        ({"server.address": "api.12.example.com"}, "Default"),
        ({"tier": "gold", "region": "eu-west-1"}, "gold"),
        ({"tier": "gold"}, "Default"),  # every rule attribute is needed
        ({"tier": "gold", "region": "us-east-1"}, "Default"),
        ({"tier": 7, "region": "eu-west-1"}, "Default"),  # a number matches only *
        ({"url.path": "/exact"}, "shop-prefix"),
        ({}, "Default"),
    ],
)
def test_each_rule_field_and_wildcard_matches_as_documented(attributes, expected):
    sampler = sampler_with(MATCHING_RULES)
    assert sampler.rule_for(attributes) == expected


@pytest.mark.parametrize(
    "resource_attributes, attributes, expected",
    [
        ({"service.name": "billing"}, {}, "billing-only"),
        ({"service.name": "fn", "cloud.platform": "aws_lambda"}, {}, "lambda-only"),
        ({"service.name": "x", "aws.ecs.container.arn": "arn:aws:ecs:eu:container/shop-7"}, {}, "ecs-arn"),
        ({"service.name": "x", "aws.ecs.container.arn": "arn:aws:ecs:eu:container/cart-7"}, {}, "Default"),
    ],
)
def test_service_fields_come_from_the_resource(resource_attributes, attributes, expected):
    sampler = sampler_with(MATCHING_RULES, Resource.create(resource_attributes))
    assert sampler.rule_for(attributes) == expected


def test_a_lambda_arn_is_read_from_the_span_when_the_resource_has_none():
    rules = [rule("fn-arn", 1, ResourceARN="arn:aws:lambda:*:function:pay*"), rule("Default", 10000)]
    sampler = sampler_with(rules, Resource.create({"service.name": "fn", "cloud.platform": "aws_lambda"}))
    assert sampler.rule_for({"cloud.resource_id": "arn:aws:lambda:eu:function:payments"}) == "fn-arn"
    assert sampler.rule_for({"faas.id": "arn:aws:lambda:eu:function:payments"}) == "fn-arn"
    assert sampler.rule_for({}) == "Default"
    with_id = Resource.create({"service.name": "fn", "cloud.platform": "aws_lambda", "cloud.resource_id": "arn:aws:lambda:eu:function:pay"})
    assert sampler_with(rules, with_id).rule_for({}) == "fn-arn"


def test_rules_come_from_every_page_and_are_tried_by_priority_then_name():
    rules = [rule(f"r{i:02d}", 5, URLPath=f"/r{i:02d}") for i in range(7)] + [rule("b", 1), rule("a", 1), rule("Default", 10000)]
    fake = FakeXRay(rules, page_size=3)
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        names = [r["name"] for r in sampler.remote_status()["rules"]]
        assert names == ["a", "b"] + [f"r{i:02d}" for i in range(7)] + ["Default"]
        bodies = [r["body"] for r in fake.requests if r["path"] == "/GetSamplingRules"]
        assert bodies == [{}, {"NextToken": "3"}, {"NextToken": "6"}, {"NextToken": "9"}]
        assert sampler.rule_for({"url.path": "/r03"}) == "a", "priority 1 first"
    finally:
        sampler.shutdown()
        fake.stop()


# -- reservoirs and fixed rates ----------------------------------------------


@pytest.mark.parametrize("quota", [1, 5, 20, 60])
def test_a_reservoir_keeps_its_quota_within_ten_percent_over_30_simulated_seconds(quota):
    clock = SimClock(T0)
    sampler = sampler_with([rule("Default", 10000, fixed_rate=0.0, reservoir=5)], clock=clock)
    sampler.apply_targets({"SamplingTargetDocuments": [target("Default", 0.0, quota=quota, ttl=T0 + 3600)], "LastRuleModification": 0})
    kept = root_keeps(sampler, clock, seconds=30, per_second=200)
    assert abs(len(kept) - 30 * quota) <= 0.10 * 30 * quota, len(kept)
    assert all(ot_of(result) is None for result in kept), "a reservoir keep carries no th"


def test_before_targets_a_rule_borrows_one_trace_a_second_and_counts_it_as_borrowed():
    clock = SimClock(T0)
    sampler = sampler_with([rule("Default", 10000, fixed_rate=0.0, reservoir=50)], clock=clock)
    kept = root_keeps(sampler, clock, seconds=30, per_second=100)
    assert 29 <= len(kept) <= 31
    [(name, requests, sampled, borrowed)] = sampler.take_statistics()
    assert (name, requests, sampled, borrowed) == ("Default", 3000, len(kept), len(kept))


def binomial_bounds(n: int, p: float, sigmas: float = 5.0) -> tuple:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5, 0.9])
def test_fixed_rates_hold_within_five_sigma_over_20000_decisions_and_write_th(rate):
    clock = SimClock(T0)
    sampler = sampler_with([rule("Default", 10000, fixed_rate=rate, reservoir=0)], clock=clock)
    kept = root_keeps(sampler, clock, seconds=200, per_second=100, seed=int(rate * 1000))
    low, high = binomial_bounds(20_000, rate)
    assert low <= len(kept) <= high, len(kept)
    expected_th = ProbabilitySampler(rate).threshold
    assert {ot_of(result) for result in kept} == {f"th:{expected_th}"}


def test_the_fallback_keeps_one_a_second_then_five_percent_before_any_rules():
    clock = SimClock(T0)
    sampler = XRayRemoteSampler(shop(), start=False, clock=clock)
    kept = root_keeps(sampler, clock, seconds=100, per_second=100, seed=3)
    reservoir = [r for r in kept if ot_of(r) is None]
    rated = [r for r in kept if ot_of(r) is not None]
    assert 99 <= len(reservoir) <= 101
    low, high = binomial_bounds(10_000 - len(reservoir), 0.05)
    assert low <= len(rated) <= high
    assert sampler.remote_status()["fallback_decisions"] == 10_000


def test_rules_an_hour_stale_give_way_to_the_fallback():
    clock = SimClock(T0)
    sampler = sampler_with([rule("Default", 10000, fixed_rate=0.0, reservoir=0)], clock=clock)
    assert root_keeps(sampler, clock, seconds=10, per_second=10) == []
    clock.advance(3600)
    assert sampler.rule_for({}) is None
    assert "the rules are 36" in sampler.remote_status()["in_force"]
    assert len(root_keeps(sampler, clock, seconds=10, per_second=10)) >= 9


def test_quota_ttl_expiry_falls_back_to_the_fixed_rate():
    clock = SimClock(T0)
    sampler = sampler_with([rule("Default", 10000, fixed_rate=0.0, reservoir=5)], clock=clock)
    sampler.apply_targets({"SamplingTargetDocuments": [target("Default", 0.2, quota=50, ttl=T0 + 10)], "LastRuleModification": 0})
    during = root_keeps(sampler, clock, seconds=10, per_second=100, seed=5)
    after = root_keeps(sampler, clock, seconds=100, per_second=100, seed=6)
    assert sum(ot_of(r) is None for r in during) >= 450, "the quota while it lasts"
    assert all(ot_of(r) is not None for r in after), "after the TTL: only the fixed rate, with th"
    low, high = binomial_bounds(10_000, 0.2)
    assert low <= len(after) <= high
    # A target with no TTL has no reservoir at all.
    sampler.apply_targets({"SamplingTargetDocuments": [target("Default", 0.0, quota=50)], "LastRuleModification": 0})
    assert root_keeps(sampler, clock, seconds=5, per_second=100) == []


# -- the exchange with X-Ray ---------------------------------------------------


def traced(sampler: Any) -> tuple:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_reported_statistics_equal_the_decisions_made():
    rules = [rule("pay", 1, fixed_rate=0.3, reservoir=2, URLPath="/pay"), rule("Default", 10000, fixed_rate=0.1, reservoir=1)]
    fake = FakeXRay(rules)
    fake.targets = lambda statistics: [target(s["RuleName"], 0.25, quota=3, ttl=time.time() + 60) for s in statistics]
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60, report_interval=3600)
    provider, _ = traced(sampler)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        tracer = provider.get_tracer("test")
        expected = {"pay": [0, 0], "Default": [0, 0]}
        for _ in range(3):
            for i in range(400):
                path = "/pay" if i % 3 == 0 else "/home"
                with tracer.start_as_current_span("request", attributes={"url.path": path}) as span:
                    with tracer.start_as_current_span("child"):
                        pass  # children are not counted: X-Ray counts requests
                counts = expected["pay" if path == "/pay" else "Default"]
                counts[0] += 1
                counts[1] += span.get_span_context().trace_flags.sampled
            assert sampler.poller.report()  # type: ignore[union-attr]
        reported = fake.reported()
        for name, (requests, sampled) in expected.items():
            assert reported[name]["RequestCount"] == requests
            assert reported[name]["SampledCount"] == sampled
        assert reported["pay"]["BorrowCount"] > 0, "the first round borrowed"
        documents = fake.statistics
        assert {d["ClientID"] for d in documents} == {sampler.poller.client_id}  # type: ignore[union-attr]
        assert all(len(d["ClientID"]) == 24 for d in documents)
        assert sampler.remote_status()["reports"] == 3
    finally:
        sampler.shutdown()
        provider.shutdown()
        fake.stop()


def test_the_interval_x_ray_names_paces_the_reports():
    fake = FakeXRay([rule("Default", 10000, fixed_rate=1.0, reservoir=0)])
    fake.targets = lambda statistics: [target("Default", 1.0, interval=1)]
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60, report_interval=0.2)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            sampler.should_sample(None, random.getrandbits(128), "x")
            time.sleep(0.01)
        times = [r["at"] for r in fake.requests if r["path"] == "/SamplingTargets"]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(times) >= 4 and all(0.95 <= gap <= 1.5 for gap in gaps), gaps
        assert sampler.remote_status()["target_interval"] == 1
    finally:
        sampler.shutdown()
        fake.stop()


def test_newer_rules_at_x_ray_are_fetched_after_a_report():
    fake = FakeXRay([rule("Default", 10000, fixed_rate=0.0, reservoir=0)])
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=3600)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        fake.rules = [rule("new", 1), rule("Default", 10000)]
        fake.last_rule_modification = time.time() + 1
        sampler.should_sample(None, 1, "x")
        assert sampler.poller.report()  # type: ignore[union-attr]
        assert [r["name"] for r in sampler.remote_status()["rules"]] == ["new", "Default"]
    finally:
        sampler.shutdown()
        fake.stop()


@pytest.mark.parametrize(
    "fault, error",
    [
        ("garbage", "JSONDecodeError"),
        ("status", "HTTP 500"),
        ("huge", "over"),
        ("wrong shape", "missing; expected the list"),
        ("slow", "timed out"),
    ],
)
def test_a_failing_x_ray_keeps_the_last_good_rules_and_targets(fault, error, caplog):
    good = [rule("pay", 1, fixed_rate=0.5, URLPath="/pay"), rule("Default", 10000, fixed_rate=0.0)]
    fake = FakeXRay(good)
    fake.targets = lambda statistics: [target("pay", 0.75, quota=7, ttl=time.time() + 600)]
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60, timeout=1.0)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        sampler.should_sample(None, 1, "x", attributes={"url.path": "/pay"})
        assert sampler.poller.report()  # type: ignore[union-attr]
        in_force = sampler.remote_status()["rules"]
        if fault == "garbage":
            fake.raw = b"{not json"
        elif fault == "status":
            fake.status = 500
        elif fault == "huge":
            fake.raw = b'{"SamplingRuleRecords": [' + b" " * (5 * 1024 * 1024) + b"]}"
        elif fault == "wrong shape":
            fake.raw = b'{"SamplingRules": []}'
        else:
            fake.delay = 3.0
        with caplog.at_level(logging.WARNING, logger="tracesieve.xray"):
            started = time.monotonic()
            assert not sampler.poller.fetch_rules()  # type: ignore[union-attr]
            assert time.monotonic() - started < 2.0, "one fetch ends within its timeout, pages and all"
            sampler.should_sample(None, 2, "x", attributes={"url.path": "/pay"})
            assert not sampler.poller.report()  # type: ignore[union-attr]
            logged = caplog.text.count("cannot use X-Ray's sampling endpoint")
            sampler.should_sample(None, 3, "x", attributes={"url.path": "/home"})
            assert not sampler.poller.report()  # type: ignore[union-attr]
        status = sampler.remote_status()
        assert status["rules"][0]["fixed_rate"] == 0.75 and status["rules"][0]["reservoir_per_second"] == 7
        assert [r["name"] for r in status["rules"]] == [r["name"] for r in in_force]
        assert status["fetch_failures"] == 1 and status["report_failures"] == 2
        assert error in status["last_error"]
        assert 1 <= logged <= 2 and caplog.text.count("cannot use X-Ray's sampling endpoint") == logged, "once per problem until it answers"
        # X-Ray answers again: the statistics of the failed report go out with the next one.
        fake.raw, fake.status, fake.delay = None, 200, 0.0
        assert sampler.poller.report()  # type: ignore[union-attr]
        reported = fake.reported()
        assert reported["pay"]["RequestCount"] == 2 and reported["Default"]["RequestCount"] == 1
        assert sampler.remote_status()["last_error"] is None
    finally:
        sampler.shutdown()
        fake.stop()


def test_endless_pages_of_rules_are_refused_and_the_rules_in_force_stay():
    fake = FakeXRay([rule("Default", 10000)])
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        fake.rules = [rule(f"r{i}", i) for i in range(60)]
        fake.page_size = 1
        assert not sampler.poller.fetch_rules()  # type: ignore[union-attr]
        assert "more than 50 pages" in sampler.remote_status()["last_error"]
        fake.raw = b'{"SamplingRuleRecords": [], "NextToken": "same"}'
        assert not sampler.poller.fetch_rules()  # type: ignore[union-attr]
        assert "does not lead anywhere" in sampler.remote_status()["last_error"]
        assert [r["name"] for r in sampler.remote_status()["rules"]] == ["Default"]
    finally:
        sampler.shutdown()
        fake.stop()


def test_an_unreachable_x_ray_leaves_the_fallback_and_decisions_never_wait():
    fake = FakeXRay([rule("Default", 10000)])
    fake.delay = 3.0
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60, timeout=2.5)
    try:
        time.sleep(0.2)  # the first fetch is in flight
        slowest = 0.0
        for _ in range(2000):
            started = time.perf_counter()
            sampler.should_sample(None, random.getrandbits(128), "x")
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 0.05, slowest
        assert sampler.remote_status()["in_force"].startswith("the fallback")
    finally:
        sampler.shutdown()
        fake.stop()
    closed = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60, timeout=1)
    try:
        wait_for(lambda: closed.remote_status()["fetch_failures"] >= 1)
        assert closed.remote_status()["rules"] == []
    finally:
        closed.shutdown()


def _decide_in_child(sampler: Any, queue: Any) -> None:
    wait_for(lambda: sampler.remote_status()["fetches"] >= 1, timeout=10)
    kept = sum(sampler.should_sample(None, i << 64 | i, "x").decision is Decision.RECORD_AND_SAMPLE for i in range(100))
    queue.put((kept, sampler.poller.client_id, sampler.poller._thread.alive))


def test_a_forked_child_polls_on_its_own_as_another_client():
    fake = FakeXRay([rule("Default", 10000, fixed_rate=1.0, reservoir=0)])
    sampler = XRayRemoteSampler(shop(), endpoint=fake.endpoint, polling_interval=60)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_decide_in_child, args=(sampler, queue))
        child.start()
        kept, client_id, alive = queue.get(timeout=20)
        child.join(10)
        assert child.exitcode == 0
        assert kept == 100 and alive
        assert client_id != sampler.poller.client_id  # type: ignore[union-attr]
    finally:
        sampler.shutdown()
        fake.stop()


# -- composition, entry points, configuration ------------------------------------


def test_it_composes_under_budget_adaptive_and_parent_based():
    clock = SimClock(T0)
    xray = sampler_with([rule("Default", 10000, fixed_rate=1.0, reservoir=0)], clock=clock)
    budget = BudgetSampler(xray, budget=10**9, period="day", clock=clock, store="memory")
    adaptive = AdaptiveSampler(xray, clock=clock)
    for sampler in (budget, adaptive, ParentBased(xray)):
        assert sampler.should_sample(None, random.getrandbits(128), "x").decision is Decision.RECORD_AND_SAMPLE
    # New rules reach the composed samplers (they share the X-Ray state).
    xray.update_rules([{"SamplingRuleRecords": [rule("Default", 10000, fixed_rate=0.0, reservoir=0)]}])
    for sampler in (budget, adaptive):
        assert all(sampler.should_sample(None, random.getrandbits(128), "x").decision is Decision.DROP for _ in range(50))
    assert "XRayRemoteSampler" in budget.get_description()


def test_a_configuration_document_has_an_xray_remote_stage(tmp_path):
    fake = FakeXRay([rule("pay", 1, fixed_rate=1.0, reservoir=0, URLPath="/pay"), rule("Default", 10000, fixed_rate=0.0, reservoir=0)])
    path = tmp_path / "sampling.json"
    import json

    document = {
        "xray_remote": {"endpoint": fake.endpoint, "polling_interval": 60, "service_name": "shop"},
        "budget": {"budget": 10**9, "period": "day"},
    }
    path.write_text(json.dumps(document))
    sampler = from_config(path)
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        assert sampler.should_sample(None, 5, "x", attributes={"url.path": "/pay"}).decision is Decision.RECORD_AND_SAMPLE
        assert sampler.should_sample(None, 5, "x", attributes={"url.path": "/home"}).decision is Decision.DROP
        assert any("xray_remote: AWS X-Ray's sampling rules for service 'shop'" in line for line in sampler.description)
        poller = sampler._xray_poller
        path.write_text(json.dumps({**document, "budget": {"budget": 10**8, "period": "day"}}))
        assert sampler.reload()
        assert sampler._xray_poller is poller and len(sampler.remote_status()["rules"]) == 2, "a reload keeps the rules in force"
    finally:
        sampler.close()
        fake.stop()
    with pytest.raises(ConfigError, match="give either probability or xray_remote"):
        from_config({"probability": {"rate": 0.5}, "xray_remote": {}})
    with pytest.raises(ConfigError, match=r"xray_remote\.endpoint"):
        from_config({"xray_remote": {"endpoint": "ftp://x"}})
    with pytest.raises(ConfigError, match=r"xray_remote\.polling_intervl.*did you mean"):
        from_config({"xray_remote": {"polling_intervl": 5}})


def test_a_tracer_provider_from_a_document_with_only_an_xray_remote_stage_samples_by_x_ray(tmp_path):
    """Regression: tracesieve.TracerProvider.from_config counted a document's
    stages from a list that lacked xray_remote, so a document with that stage
    alone got the SDK's sampler (every trace kept)."""
    import tracesieve

    fake = FakeXRay([rule("pay", 1, fixed_rate=1.0, reservoir=0, URLPath="/pay"), rule("Default", 10000, fixed_rate=0.0, reservoir=0)])
    path = tmp_path / "sampling.yaml"
    path.write_text(f"xray_remote:\n  endpoint: {fake.endpoint}\n  polling_interval: 60\n  service_name: shop\n")
    provider = tracesieve.TracerProvider.from_config(path, shutdown_on_exit=False)
    try:
        sampler = provider.sampler
        assert sampler.get_description() == "PipelineSampler{xray_remote}"
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        assert sampler.should_sample(None, 5, "x", attributes={"url.path": "/home"}).decision is Decision.DROP
        assert sampler.should_sample(None, 5, "x", attributes={"url.path": "/pay"}).decision is Decision.RECORD_AND_SAMPLE
    finally:
        provider.shutdown()
        provider.sampler.close()
        fake.stop()


def test_force_keep_rules_go_first_and_x_ray_decides_the_rest():
    sampler = from_config(
        {
            "force_keep": {"rules": [{"name": "vip", "match": {"tier": "gold"}}]},
            "xray_remote": {"endpoint": "http://127.0.0.1:9", "polling_interval": 3600, "service_name": "shop"},
        }
    )
    try:
        sampler._native.xray_update_rules(
            [
                {
                    "SamplingRuleRecords": [
                        rule("pay", 1, fixed_rate=1.0, reservoir=0, URLPath="/pay", HTTPMethod="POST"),
                        rule("Default", 10000, fixed_rate=0.0, reservoir=0),
                    ]
                }
            ]
        )
        decide = lambda attributes: sampler.should_sample(None, random.getrandbits(128), "x", attributes=attributes).decision  # noqa: E731
        assert decide({"tier": "gold", "url.path": "/home"}) is Decision.RECORD_AND_SAMPLE
        assert decide({"url.path": "/pay", "http.request.method": "POST"}) is Decision.RECORD_AND_SAMPLE
        assert decide({"url.path": "/pay", "http.request.method": "GET"}) is Decision.DROP
        assert decide({"url.full": "https://shop/pay?x", "http.method": "POST", "tier": "silver"}) is Decision.RECORD_AND_SAMPLE
        assert sampler._native.xray_rule_for({"url.path": "/pay", "http.method": "POST"}) == "pay"
    finally:
        sampler.close()


def test_the_sdk_configurator_builds_both_entry_points(monkeypatch):
    fake = FakeXRay([rule("Default", 10000)])
    monkeypatch.setenv("OTEL_SERVICE_NAME", "payments")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", f"endpoint={fake.endpoint},polling_interval=30")
    try:
        for name, respect_parent in (("xray_remote", False), ("parentbased_xray_remote", True)):
            sampler = _import_sampler(name)
            assert isinstance(sampler, XRayRemoteSampler)
            assert sampler.respect_parent is respect_parent and sampler.service_name == "payments"
            assert sampler.poller is not None and sampler.poller.interval == 30
            wait_for(lambda s=sampler: s.remote_status()["fetches"] >= 1)
            sampler.shutdown()
    finally:
        fake.stop()


def test_a_bad_entry_point_argument_falls_back_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "endpoint=http://127.0.0.1:2000,interval=5")
    with caplog.at_level(logging.ERROR):
        sampler = _import_sampler("xray_remote")
    assert isinstance(sampler, ProbabilitySampler)
    assert "'interval=5' is not a setting" in caplog.text


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"endpoint": "ftp://x"}, "endpoint: 'ftp://x' is not an X-Ray sampling endpoint"),
        ({"endpoint": "http://user:hunter2@127.0.0.1:2000"}, "carries credentials"),
        ({"polling_interval": 0}, "polling_interval"),
        ({"timeout": -1}, "timeout"),
        ({"resource": {"service.name": "x"}}, "resource: expected an OpenTelemetry Resource"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, expected):
    with pytest.raises(ConfigError, match=expected) as raised:
        XRayRemoteSampler(**{"resource": shop(), "start": False, **kwargs})
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "field,value,expected",
    [
        ("Priority", 1e22, r"Priority: 1e\+22 is out of range; expected a whole number within ±9e15$"),
        ("Priority", 2.5, r"Priority: 2.5 is not a whole number$"),
        ("ReservoirSize", 1e308, r"ReservoirSize: 1e\+308 is out of range"),
        ("FixedRate", -5e-324, r"FixedRate: -5e-324 is out of range; expected a rate in \[0, 1\]$"),
    ],
)
def test_a_rule_with_a_number_out_of_range_is_refused_in_a_short_message(field: str, value: float, expected: str) -> None:
    """X-Ray's numbers are read as floats: 1e22 was "not a whole number" and 1e308
    was written out as 309 digits in the warning."""
    sampler = sampler_with([rule("Default", 10000)])
    with pytest.raises(ConfigError, match=expected) as raised:
        sampler.update_rules([{"SamplingRuleRecords": [rule("r", 1, **{field: value}), rule("Default", 10000)]}])
    assert len(str(raised.value)) < 200
    assert sampler.remote_status()["in_force"] == "1 rule, 1 for this service"


def test_metrics_report_rule_decisions_and_fetches():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    sampler = XRayRemoteSampler(shop(), start=False, meter_provider=MeterProvider(metric_readers=[reader]))
    sampler.update_rules([{"SamplingRuleRecords": [rule("Default", 10000)]}])
    for i in range(5):
        sampler.should_sample(None, i, "x")
    points = {
        (metric.name, tuple(sorted(point.attributes.items()))): point.value
        for resource_metrics in reader.get_metrics_data().resource_metrics
        for scope in resource_metrics.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    }
    assert points[("tracesieve.remote.operation_decisions", (("operation", "Default"),))] == 5
    assert points[("tracesieve.remote.fetches", (("outcome", "rejected"),))] == 0


def test_it_decides_for_tracesieves_own_provider_too():
    import tracesieve

    sampler = sampler_with(
        [rule("pay", 1, fixed_rate=1.0, reservoir=0, URLPath="/pay"), rule("Default", 10000, fixed_rate=0.0, reservoir=0)]
    )
    provider = tracesieve.TracerProvider(sampler=sampler)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    try:
        for path in ("/pay", "/home", "/pay"):
            with tracer.start_as_current_span("request", attributes={"url.path": path}):
                with tracer.start_as_current_span("child"):
                    pass
        provider.force_flush()
        kept = [(span.name, span.attributes.get("url.path")) for span in exporter.get_finished_spans()]
        assert sorted(kept) == [("child", None), ("child", None), ("request", "/pay"), ("request", "/pay")]
        assert [rule["requests"] for rule in sampler.remote_status()["rules"]] == [2, 1]
    finally:
        provider.shutdown()


def test_threads_deciding_while_rules_and_targets_change_lose_no_count():
    import threading

    sampler = sampler_with([rule("pay", 1, URLPath="/pay"), rule("Default", 10000)])
    per_thread = 20_000
    kept = [0] * 4

    def decide(index: int) -> None:
        rng = random.Random(index)
        for i in range(per_thread):
            attributes = {"url.path": "/pay" if i % 2 else "/home"}
            kept[index] += sampler.should_sample(None, rng.getrandbits(128), "x", attributes=attributes).decision.is_sampled()

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    reported = {"pay": [0, 0], "Default": [0, 0]}
    while any(thread.is_alive() for thread in threads):
        sampler.apply_targets({"SamplingTargetDocuments": [target("pay", 0.5, quota=100, ttl=time.time() + 60)], "LastRuleModification": 0})
        sampler.update_rules([{"SamplingRuleRecords": [rule("pay", 1, URLPath="/pay"), rule("Default", 10000)]}])
        for name, requests, sampled, _ in sampler.take_statistics():
            reported[name][0] += requests
            reported[name][1] += sampled
        time.sleep(0.001)
    for thread in threads:
        thread.join()
    for name, requests, sampled, _ in sampler.take_statistics():
        reported[name][0] += requests
        reported[name][1] += sampled
    assert reported["pay"][0] == reported["Default"][0] == 2 * per_thread
    assert reported["pay"][1] + reported["Default"][1] == sum(kept)


def test_explain_walks_the_rules_x_ray_sends_not_the_fallback(tmp_path, capsys):
    """Regression: explain walked a document's xray_remote stage as soon as it
    was built, so against a server slower than the walk it answered with the
    start-up fallback (1 a second, then 5%) whatever the rules said; it now
    waits for the first fetch and says where the rules came from."""
    from tracesieve.cli import main

    fake = FakeXRay([rule("pay", 1, fixed_rate=1.0, reservoir=0, URLPath="/pay"), rule("Default", 10000, fixed_rate=0.0, reservoir=0)])
    fake.delay = 0.5
    try:
        config = tmp_path / "xray.toml"
        config.write_text(f'[xray_remote]\nendpoint = "{fake.endpoint}"\n')
        assert main(["explain", str(config), "--name", "POST", "--attr", "url.path=/pay"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith('X-Ray rule "pay" (priority 1)') and "kept with probability 1" in out[-2], out
        assert out[-1] == f"fetched from {fake.endpoint} now: the service decides so once it has fetched the same"
    finally:
        fake.stop()
    assert main(["explain", str(config), "--name", "POST", "--attr", "url.path=/pay"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "the fallback" in out[0] and out[-1].startswith(f"{fake.endpoint} could not be fetched now ("), out
