"""Every public constructor, given any keyword values, either builds or raises
the one error type, ConfigError, naming the field: never a TypeError from deep
inside, an OverflowError or a half-built object. The cases in the table were
found by fuzzing the constructors (the law below is that fuzzer, bounded)."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracesieve
from tracesieve import (
    AdaptiveSampler,
    BudgetSampler,
    ConfigError,
    ErrorWindowProcessor,
    RetryingSpanExporter,
    TailSamplingProcessor,
)

HUGE = 10**400  # no float holds it


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: AdaptiveSampler(route_thresholds=0), r"^route_thresholds: expected a mapping of route to seconds"),
        (lambda: ErrorWindowProcessor(route_thresholds=["/api/search"]), r"^route_thresholds: expected a mapping .*got list"),
        (lambda: TailSamplingProcessor(InMemorySpanExporter(), rules=-9), r"^rules: expected a list of rules, got int -9"),
        (lambda: TailSamplingProcessor(InMemorySpanExporter(), rules=[1]), r"^rules\[0\]: expected a rule: a mapping"),
        (lambda: TailSamplingProcessor(InMemorySpanExporter(), budget_exempt=None), r"^budget_exempt: expected a list of kinds"),
        (
            lambda: TailSamplingProcessor(InMemorySpanExporter(), budget_priorities="error"),
            r"^budget_priorities: expected a list of kinds .*got str 'error'",
        ),
        (lambda: RetryingSpanExporter(InMemorySpanExporter(), seed={"a": 1}), r"^seed: expected a whole number or None, got dict"),
        (
            lambda: RetryingSpanExporter(InMemorySpanExporter(), initial_backoff=HUGE),
            r"^initial_backoff: an integer of about 401 digits is out",
        ),
        (lambda: BudgetSampler(budget=1000, store="memory", state_path=1.5), r"^state_path: expected a file path .*got float 1.5"),
        (lambda: BudgetSampler(budget=1000, store="memory", state_path=""), r"^state_path: expected a file path"),
        # Checked only when the poller started: start=False took any timeout.
        (lambda: tracesieve.JaegerRemoteSampler("a", timeout="x", start=False), r"^timeout: expected a number of seconds"),
        (lambda: tracesieve.JaegerRemoteSampler("a", polling_interval=0, start=False), r"^polling_interval: 0 is out of range"),
        # The SDK provider's own arguments, which it takes unchecked and fails on at span time.
        (
            lambda: tracesieve.TracerProvider(id_generator="x"),
            r"^id_generator: expected an IdGenerator, got str \(no generate_span_id\(\)\)$",
        ),
        (lambda: tracesieve.TracerProvider(sampler="x"), r"^sampler: expected an OpenTelemetry Sampler, got str"),
        (lambda: tracesieve.TracerProvider(resource={"service.name": "x"}), r"^resource: expected an opentelemetry.sdk.resources.Resource"),
        (lambda: tracesieve.TracerProvider(span_limits=True), r"^span_limits: expected an opentelemetry.sdk.trace.SpanLimits, got bool"),
        (lambda: tracesieve.TracerProvider(active_span_processor=1.5), r"^active_span_processor: expected a multi-span processor"),
        (lambda: tracesieve.TracerProvider(shutdown_on_exit="no"), r"^shutdown_on_exit: expected True or False, got str"),
    ],
)
def test_a_wrong_type_is_a_config_error_naming_the_field(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_none_is_the_default_where_the_native_layer_reads_it_so() -> None:
    """Regression: the native layer took cost_per_span=None as its default, 1.0, and the
    Python layer then raised TypeError converting None to a float."""
    sampler = BudgetSampler(budget=1000, cost_per_span=None, store="memory")
    assert sampler.cost_per_span == 1.0 and sampler.budget_status()["budget_spans"] == 1000


#: Arguments a generated value must not replace: callables, objects and what starts I/O.
NOT_DRAWN = {"clock", "meter_provider", "exporter", "inner", "base", "processor", "sampler", "resource", "sleep", "start", "share"}
CLASSES: Dict[str, Any] = {
    name: getattr(tracesieve, name)
    for name in (
        "ProbabilitySampler",
        "TraceIdRatioSampler",
        "RuleSampler",
        "BudgetSampler",
        "AdaptiveSampler",
        "ErrorWindowProcessor",
        "TailSamplingProcessor",
        "DedupSpanExporter",
        "RetryingSpanExporter",
        "TracerProvider",
        "JaegerRemoteSampler",
        "XRayRemoteSampler",
    )
}
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**30),
    st.sampled_from([HUGE, float("inf"), float("nan"), 0.5, 1, 0, -1, "memory", "month", "UTC", "x"]),
    st.floats(allow_nan=True),
    st.text(max_size=6),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS, max_size=3))


def _close(built: Any) -> None:
    for method in ("shutdown", "close"):
        if callable(getattr(built, method, None)):
            getattr(built, method)()
            return


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(CLASSES)), data=st.data())
def test_any_keyword_values_build_or_raise_config_error(tmp_path_factory: pytest.TempPathFactory, name: str, data: Any) -> None:
    cls = CLASSES[name]
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    drawable = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in NOT_DRAWN]
    chosen = data.draw(st.lists(st.sampled_from(drawable), unique=True, max_size=5)) if drawable else []
    kwargs = {parameter: data.draw(VALUES, label=parameter) for parameter in chosen}
    if name == "BudgetSampler":
        kwargs.setdefault("budget", 1000)
        kwargs.setdefault("store", "memory")
    if "state_path" in kwargs and isinstance(kwargs["state_path"], str) and kwargs["state_path"]:
        kwargs["state_path"] = str(tmp_path_factory.mktemp("state") / "budget.json")  # never a file in the checkout
    args: List[Any] = [InMemorySpanExporter()] if name in ("TailSamplingProcessor", "DedupSpanExporter", "RetryingSpanExporter") else []
    if name in ("JaegerRemoteSampler", "XRayRemoteSampler"):
        args = ["checkout"] if name == "JaegerRemoteSampler" else [Resource.create({"service.name": "checkout"})]
        kwargs.pop("service_name", None)
        kwargs["start"] = False  # no poller thread, no network: every setting is checked all the same
    try:
        built = cls(*args, **kwargs)
    except ConfigError:
        return
    _close(built)


def _composable_factories() -> Dict[str, Callable[..., Any]]:
    from tracesieve import composable
    from tracesieve.composable import _rule_based

    always_on = composable.composable_always_on()
    return {
        "ratio": composable.composable_traceid_ratio_based,
        "parent_threshold": composable.composable_parent_threshold,
        "rule_based": composable.composable_rule_based,
        "annotating": lambda a, b: composable.composable_annotating(always_on, b),
        "any_of": lambda a, b: composable.composable_any_of(a, b),
        "rate_limited": lambda a, b: composable.composable_rate_limited(always_on, a, b),
        "pipeline": composable.composable_pipeline,
        "composite": composable.composite_sampler,
        "values": lambda a, b: _rule_based.AttributeValuesPredicate("k", a),
        "patterns": lambda a, b: _rule_based.AttributePatternsPredicate("k", a, b),
    }


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_composable_factories())), first=VALUES, second=VALUES)
def test_any_arguments_to_the_composable_factories_build_or_raise_config_error(name: str, first: Any, second: Any) -> None:
    """The same law for tracesieve.composable (the SDK's names): a huge ratio, rules that
    are a number, a delegate that is a list raised OverflowError, TypeError, AttributeError."""
    factory = _composable_factories()[name]
    try:
        built = factory(first) if name in ("ratio", "parent_threshold", "rule_based", "pipeline", "composite") else factory(first, second)
    except ConfigError:
        return
    _close(built)
