"""Every sampler reports its counts as OpenTelemetry metrics, as a pipeline
does: a BudgetSampler's spending was seen only through ``from_config``."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tracesieve import AdaptiveSampler, BudgetSampler, ConfigError, ProbabilitySampler, RuleSampler, TraceIdRatioSampler
from tracesieve.composable import CompositeSampler, composable_traceid_ratio_based

from helpers import metric_points

RULES = [{"name": "checkout", "route": "/api/payment", "rate": 1.0}]


def _decide(sampler, count, seed):
    rng = random.Random(seed)
    for number in range(count):
        route = "/api/payment" if number % 4 == 0 else "/api/orders"
        sampler.should_sample(None, rng.getrandbits(128), "GET", None, {"http.route": route})


def test_a_budget_sampler_reports_its_decisions_rules_and_spending(provider_factory):
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    sampler = BudgetSampler(RuleSampler(RULES, default_rate=0.2), budget=10**9, name="checkout", meter_provider=meters)
    provider, exporter = provider_factory(sampler)
    tracer = provider.get_tracer("t")
    for number in range(200):
        with tracer.start_as_current_span("GET", attributes={"http.route": "/api/payment" if number % 4 == 0 else "/api/orders"}):
            pass
    points = metric_points(reader)
    stats, status = sampler.stats(), sampler.budget_status()
    assert points[("tracesieve.sampler.decisions", (("outcome", "sampled"),))] == stats["sampled"] == len(exporter.get_finished_spans())
    assert points[("tracesieve.sampler.decisions", (("outcome", "dropped"),))] == stats["dropped"]
    assert points[("tracesieve.sampler.rule_decisions", (("outcome", "sampled"), ("rule", "checkout")))] == 50
    assert points[("tracesieve.budget.spans", (("state", "used"),))] == status["used_spans"] == status["assumed_spans"] + stats["sampled"]
    assert points[("tracesieve.budget.spans", (("state", "remaining"),))] == status["remaining_spans"]
    meters.shutdown()


def test_a_budget_that_refuses_says_how_many_and_at_what_pace():
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    mid_december = 1_797_292_800.0  # 15 December 2026, 00:00 UTC; a fixed clock, so the pace is read twice alike
    payments = RuleSampler([{"name": "payments", "match": {"business.event": "payment"}, "action": "keep"}], default_rate=0.1)
    sampler = BudgetSampler(payments, budget=1_000, clock=lambda: mid_december, cap_forced_keeps=True, meter_provider=meters)
    rng = random.Random(1)
    for _ in range(2_000):  # keep-rule spans, refused once the budget has no room left
        sampler.should_sample(None, rng.getrandbits(128), "charge", None, {"business.event": "payment"})
    points = metric_points(reader)
    refused = sampler.stats()["budget_refused"]
    assert refused == 2_000 - sampler.stats()["sampled"] > 1_000
    assert points[("tracesieve.budget.refused", ())] == refused
    assert points[("tracesieve.sampler.decisions", (("outcome", "dropped"),))] == refused
    assert points[("tracesieve.budget.pacing", ())] == sampler.budget_status()["pacing_probability"] == 0.0
    meters.shutdown()


def test_every_sampler_on_one_meter_provider_is_counted_once():
    """Inner samplers count nothing of their own (the outer one decides), so
    summing the instrument counts each decision once; the boost is the highest."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    adaptive = AdaptiveSampler(ProbabilitySampler(0.1, meter_provider=meters), meter_provider=meters)
    samplers = [
        ProbabilitySampler(0.5, meter_provider=meters),
        TraceIdRatioSampler(0.3, meter_provider=meters),
        RuleSampler(RULES, default_rate=0.1, meter_provider=meters),
        adaptive,
        BudgetSampler(0.5, budget=10**9, store="memory", meter_provider=meters),
        CompositeSampler(composable_traceid_ratio_based(0.25), meter_provider=meters),
        CompositeSampler.from_spec({"probability": {"ratio": 0.75}}, meter_provider=meters),
    ]
    adaptive.record_error(6)  # more than 5 errors in the window: x2
    for seed, sampler in enumerate(samplers):
        _decide(sampler, 300 + 100 * seed, seed)
    points = metric_points(reader)
    for outcome in ("sampled", "dropped"):
        assert points[("tracesieve.sampler.decisions", (("outcome", outcome),))] == sum(s.stats()[outcome] for s in samplers)
    assert points[("tracesieve.sampler.rule_decisions", (("outcome", "sampled"), ("rule", "checkout")))] == 125  # every fourth of 500
    assert points[("tracesieve.adaptive.boost", ())] == 2.0
    meters.shutdown()


def test_with_the_sdks_global_meter_provider_a_budget_sampler_reports_with_no_argument():
    script = """
import random
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tracesieve import BudgetSampler
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
sampler = BudgetSampler(1.0, budget=10**9, name="checkout")
for _ in range(100):
    sampler.should_sample(None, random.getrandbits(128), "GET")
points = {
    (metric.name, tuple(point.attributes.items())): point.value
    for resource in reader.get_metrics_data().resource_metrics
    for scope in resource.scope_metrics
    for metric in scope.metrics
    for point in metric.data.data_points
}
print(points[("tracesieve.sampler.decisions", (("outcome", "sampled"),))], sampler.stats()["sampled"])
print(points[("tracesieve.budget.spans", (("state", "used"),))] == sampler.budget_status()["used_spans"])
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["100", "100", "True"]


#: One sampler given the provider, one reporting to the global provider, in
#: either order around making that provider the global one.
ONE_PROVIDER_TWO_WAYS = """
import sys
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from tracesieve import ProbabilitySampler
reader = InMemoryMetricReader()
meters = MeterProvider(metric_readers=[reader])
if sys.argv[1] == "given-first":
    samplers = [ProbabilitySampler(1.0, meter_provider=meters)]
    metrics.set_meter_provider(meters)
    samplers.append(ProbabilitySampler(0.0))
else:
    samplers = [ProbabilitySampler(0.0), ProbabilitySampler(1.0, meter_provider=meters)]
    metrics.set_meter_provider(meters)
for sampler in samplers:
    tracer = TracerProvider(sampler=sampler).get_tracer("checkout")
    for _ in range(10):
        tracer.start_span("GET").end()
for resource in reader.get_metrics_data().resource_metrics:
    for scope in resource.scope_metrics:
        for metric in scope.metrics:
            if metric.name == "tracesieve.sampler.decisions":
                print(sorted((point.attributes["outcome"], point.value) for point in metric.data.data_points))
"""


@pytest.mark.parametrize("order", ["given-first", "global-first"])
def test_a_provider_given_to_one_sampler_and_global_to_another_counts_both(order):
    """Regression: both made tracesieve's instruments on the provider's one
    meter, which kept the first and dropped the second's callbacks, so the
    second sampler's decisions went uncounted."""
    run = subprocess.run([sys.executable, "-c", ONE_PROVIDER_TWO_WAYS, order], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[('dropped', 10), ('sampled', 10)]", run.stdout + run.stderr


@pytest.mark.parametrize(
    "build",
    [
        ProbabilitySampler,
        TraceIdRatioSampler,
        RuleSampler,
        AdaptiveSampler,
        lambda **options: CompositeSampler(composable_traceid_ratio_based(0.5), **options),
        lambda **options: CompositeSampler.from_spec({"always_on": {}}, **options),
    ],
)
def test_a_meter_provider_that_is_no_provider_is_refused_at_construction(build):
    with pytest.raises(ConfigError, match=r"^meter_provider: expected an OpenTelemetry MeterProvider, got str \(no get_meter\(\)\)$"):
        build(meter_provider="x")


def test_a_budget_given_a_meter_provider_that_is_no_provider_makes_no_record(private_state_dir):
    with pytest.raises(ConfigError, match=r"^meter_provider: expected an OpenTelemetry MeterProvider"):
        BudgetSampler(1.0, budget=1_000, name="checkout", meter_provider=object())
    assert list(private_state_dir.iterdir()) == [], "refused before its record was made"


ZERO_CODE = """
import sys
from opentelemetry import metrics, trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
_OTelSDKConfigurator().configure()  # builds the sampler, then sets the SDK's meter provider
tracer = trace.get_tracer("t")
for number in range(200):
    with tracer.start_as_current_span("GET", attributes={"http.route": "/api/order"}):
        pass
metrics.get_meter_provider().force_flush()
print(trace.get_tracer_provider().sampler.stats()["sampled"], file=sys.stderr)
"""


def test_zero_code_samplers_report_once_the_sdk_sets_its_meter_provider(tmp_path):
    """The SDK's configurator builds the sampler before it sets the global
    meter provider, so a zero-code sampler used to report no metric at all."""
    import json
    import os
    from pathlib import Path

    env = {
        **os.environ,
        "OTEL_TRACES_SAMPLER": "tracesieve",
        "OTEL_TRACES_SAMPLER_ARG": str(Path(__file__).parents[2] / "examples" / "example_pipeline.toml"),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        "OTEL_LOGS_EXPORTER": "none",
    }
    run = subprocess.run([sys.executable, "-c", ZERO_CODE], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    decoder, text, exports = json.JSONDecoder(), run.stdout.strip(), []
    while text:
        export, end = decoder.raw_decode(text)
        exports.append(export)
        text = text[end:].strip()
    first = exports[0]["resource_metrics"][0]["scope_metrics"]
    (scope,) = [scope for scope in first if scope["scope"]["name"] == "tracesieve"]
    metrics = {metric["name"]: metric["data"]["data_points"] for metric in scope["metrics"]}
    assert set(metrics) >= {"tracesieve.sampler.decisions", "tracesieve.budget.spans", "tracesieve.adaptive.boost"}
    sampled = [p["value"] for p in metrics["tracesieve.sampler.decisions"] if p["attributes"] == {"outcome": "sampled"}]
    assert sampled == [int(run.stderr.split()[-1])]
