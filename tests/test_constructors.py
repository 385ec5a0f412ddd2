"""Every public constructor, given any keyword values, either builds or raises
the one error type, ConfigError, naming the field: never a TypeError from deep
inside, an OverflowError or a half-built object. The cases in the table were
found by fuzzing the constructors (the law below is that fuzzer, bounded)."""

from __future__ import annotations

import inspect
import re
import threading
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
    st.text(alphabet=st.characters(exclude_categories=()), max_size=6),  # lone surrogates included (the default leaves them out)
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


#: Python's text for bytes that are not UTF-8 (in a file name, the environment):
#: a lone surrogate, which no UTF-8 string holds.
UNDECODABLE = "a\udcffb"


def _text_keywords() -> List[Any]:
    cases = []
    for name, cls in sorted(CLASSES.items()):
        for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY) and parameter.name not in NOT_DRAWN:
                for form in ("text", "list", "key"):
                    cases.append(pytest.param(name, parameter.name, form, id=f"{name}-{parameter.name}-{form}"))
    return cases


@pytest.mark.parametrize("name,keyword,form", _text_keywords())
def test_text_that_is_not_utf8_is_a_config_error_naming_the_field(tmp_path, name: str, keyword: str, form: str) -> None:
    """Regression: a lone surrogate in a period, a time zone, a store, a route, a tail
    kind, a dedup mode, a Jaeger service name or a pipeline's path raised
    UnicodeEncodeError from the native layer (and, in a path, from the scrubbing of the
    message that quoted it)."""
    value: Any = {"text": UNDECODABLE, "list": [UNDECODABLE], "key": {UNDECODABLE: 1}}[form]
    kwargs: Dict[str, Any] = {keyword: value}
    if name == "BudgetSampler":
        kwargs.setdefault("budget", 1000)
        kwargs.setdefault("store", "memory")
    if keyword == "state_path" and form == "text":
        kwargs[keyword] = str(tmp_path / UNDECODABLE)
    args: List[Any] = [InMemorySpanExporter()] if name in ("TailSamplingProcessor", "DedupSpanExporter", "RetryingSpanExporter") else []
    if name in ("JaegerRemoteSampler", "XRayRemoteSampler"):
        kwargs["start"] = False
        if keyword != "service_name":
            args = ["checkout"] if name == "JaegerRemoteSampler" else [Resource.create({"service.name": "checkout"})]
    try:
        built = CLASSES[name](*args, **kwargs)
    except ConfigError as error:
        assert UNDECODABLE not in str(error)
        if "not valid text" in str(error):
            assert str(error).startswith(keyword), str(error)
        return
    _close(built)


def test_a_pipeline_file_whose_name_is_not_utf8_is_read_or_refused_by_name(tmp_path) -> None:
    path = tmp_path / f"pipeline-{UNDECODABLE}.toml"
    with pytest.raises(ConfigError, match=r"pipeline-a\\udcffb\.toml: no such file"):
        tracesieve.PipelineSampler(str(path))
    path.write_text("[probability]\nrate = 0.25\n")
    assert tracesieve.PipelineSampler(str(path)).get_description() == "PipelineSampler{probability}"


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


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


#: Values a message must not repeat whole: a megabyte of text or bytes, a long
#: list or mapping, integers Python refuses to print (over 4,300 digits), and
#: an object whose repr raises.
ENORMOUS: Dict[str, Any] = {
    "text": "z" * 1_000_000,
    "bytes": b"z" * 1_000_000,
    "list": ["z" * 100] * 10_000,
    "mapping": {f"k{i}": "v" * 100 for i in range(10_000)},
    "integer": 10**5000,
    "negative integer": -(10**5000),
    "unprintable": _Unprintable(),
}
#: A message names a value by its first 80 characters; the rest is fixed text.
LONGEST_MESSAGE = 1_000


def _build_all_with(cls_name: str, value: Any) -> List[str]:
    """Each keyword of ``cls_name`` set to ``value`` in turn; what went wrong, if anything."""
    import atexit

    cls = CLASSES[cls_name]
    needs_exporter = cls_name in ("TailSamplingProcessor", "DedupSpanExporter", "RetryingSpanExporter")
    problems = []
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            continue
        # What each constructor needs besides the keyword under test, passed by keyword too.
        kwargs: Dict[str, Any] = {}
        if needs_exporter:
            kwargs["exporter"] = InMemorySpanExporter()
        if cls_name == "BudgetSampler":
            kwargs.update(budget=1000, store="memory")
        if cls_name == "JaegerRemoteSampler":
            kwargs["service_name"] = "checkout"
        if cls_name in ("JaegerRemoteSampler", "XRayRemoteSampler"):
            kwargs["start"] = False  # no poller thread, no network: every setting is checked all the same
        kwargs[parameter.name] = value
        handlers, threads = atexit._ncallbacks(), set(threading.enumerate())
        try:
            _close(cls(**kwargs))
        except ConfigError as error:
            if len(str(error)) > LONGEST_MESSAGE:
                problems.append(f"{parameter.name}: a message of {len(str(error)):,} characters: {str(error)[:120]}")
            if re.search(r"\d{40}", str(error)):
                problems.append(f"{parameter.name}: a number written out in full: {str(error)[:120]}")
            if atexit._ncallbacks() != handlers:
                problems.append(f"{parameter.name}: an exit handler registered by a constructor that failed")
            started = [thread.name for thread in set(threading.enumerate()) - threads]
            if started:
                problems.append(f"{parameter.name}: threads started by a constructor that failed: {started}")
        except Exception as error:
            problems.append(f"{parameter.name}: {type(error).__name__}: {str(error)[:120]}")
    return problems


@pytest.mark.parametrize("kind", sorted(ENORMOUS))
@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_an_enormous_or_unprintable_value_is_a_short_config_error(cls_name: str, kind: str) -> None:
    """Found by setting every keyword of every constructor to such values: an
    integer of 5,000 digits raised ValueError from the message's own repr (the
    integer is described instead), a meter_provider that was no provider raised
    AttributeError, a megabyte string came back in a megabyte message, and a
    TracerProvider that failed a check of its own left the SDK's exit handler
    registered, which then raised at exit."""
    assert _build_all_with(cls_name, ENORMOUS[kind]) == []


#: Floats whose plain decimal form runs to hundreds of digits (1e308 takes 309).
EXTREME_FLOATS: Dict[str, float] = {"1e308": 1e308, "-1e308": -1e308, "5e-324": 5e-324, "-5e-324": -5e-324, "1e22": 1e22}


@pytest.mark.parametrize("kind", sorted(EXTREME_FLOATS))
@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_an_extreme_float_is_refused_in_a_short_message_or_works_through_shutdown(cls_name: str, kind: str) -> None:
    """Found by setting every keyword to such floats: messages wrote 1e308 as 309
    digits (in 60 keywords), a window of 1e22 s was "18446744073709551615 buckets",
    and a shutdown_timeout of 1e22 s was taken, then shutdown raised OverflowError
    into the application (a thread cannot wait that long)."""
    assert _build_all_with(cls_name, EXTREME_FLOATS[kind]) == []


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda v: TailSamplingProcessor(InMemorySpanExporter(), shutdown_timeout=v), id="tail-shutdown_timeout"),
        pytest.param(lambda v: tracesieve.TracerProvider(shutdown_timeout=v), id="provider-shutdown_timeout"),
        pytest.param(lambda v: tracesieve.JaegerRemoteSampler("s", endpoint="http://127.0.0.1:9", polling_interval=v), id="jaeger-poll"),
        pytest.param(lambda v: tracesieve.JaegerRemoteSampler("s", endpoint="http://127.0.0.1:9", timeout=v), id="jaeger-timeout"),
        pytest.param(lambda v: tracesieve.XRayRemoteSampler(endpoint="http://127.0.0.1:9", polling_interval=v), id="xray-poll"),
        pytest.param(lambda v: tracesieve.XRayRemoteSampler(endpoint="http://127.0.0.1:9", timeout=v), id="xray-timeout"),
        pytest.param(lambda v: RetryingSpanExporter(InMemorySpanExporter(), max_backoff=v), id="retry-max_backoff"),
    ],
)
def test_seconds_up_to_the_longest_wait_work_and_longer_are_refused(build: Callable[[float], Any]) -> None:
    """A setting in seconds is waited on: the longest wait a thread can make is
    taken (and shutdown still returns at once), one second more is a ConfigError."""
    longest = threading.TIMEOUT_MAX
    with pytest.raises(ConfigError, match=r"is out of range; expected a number of seconds .* and at most 9,223,372,036 \(about 292"):
        build(longest + 2048)  # the next float up
    threads = set(threading.enumerate())
    built = build(longest)
    _close(built)
    started = set(threading.enumerate()) - threads
    for thread in started:
        thread.join(timeout=2.0)  # a fetch's watchdog timer ends just after its cancel
    assert not [thread.name for thread in started if thread.is_alive()]


@pytest.mark.parametrize("kind", sorted(set(ENORMOUS) - {"mapping"}))
def test_a_configuration_source_that_is_no_mapping_or_path_is_a_config_error(kind: str) -> None:
    for build in (tracesieve.load_config, tracesieve.from_config, tracesieve.PipelineSampler, tracesieve.TracerProvider.from_config):
        with pytest.raises(ConfigError, match=r"^source: ") as raised:
            build(ENORMOUS[kind])
        assert len(str(raised.value)) < LONGEST_MESSAGE


def test_messages_quote_the_start_of_a_long_value_and_describe_a_huge_integer() -> None:
    with pytest.raises(
        ConfigError, match=r"^period: unknown period \"z{80}\"\.\.\. \(1,000,000 characters\); expected one of hour, day, week, month$"
    ):
        BudgetSampler(budget=1000, store="memory", period="z" * 1_000_000)
    with pytest.raises(ConfigError, match=r"^name: expected a non-empty string .*, got an integer of about 5001 digits$"):
        BudgetSampler(budget=1000, store="memory", name=10**5000)
    with pytest.raises(ConfigError, match=r"^clock: expected a callable .*, got list \['z{78}\.\.\. \(1,004 characters\)$"):
        BudgetSampler(budget=1000, store="memory", clock=["z" * 1000])
    with pytest.raises(ConfigError, match=r"^state_path: a path of 5,000 characters; expected at most 4,096$"):
        BudgetSampler(budget=1000, store="memory", state_path="z" * 5000)
    with pytest.raises(ConfigError, match=r"^store: a URL of 1,000,011 bytes; expected at most 8,192$"):
        BudgetSampler(budget=1000, store="redis://:" + "z" * 1_000_000 + "@h")
    with pytest.raises(ConfigError, match=r"^meter_provider: expected an OpenTelemetry MeterProvider, got str \(no get_meter\(\)\)$"):
        tracesieve.RetryingSpanExporter(InMemorySpanExporter(), meter_provider="x")


def test_tail_kinds_are_checked_without_a_budget_too() -> None:
    """A misspelt kind was accepted while no budget was attached, and failed only once one was."""
    with pytest.raises(ConfigError, match=r'^budget_exempt: "erorr" is no tail reason'):
        TailSamplingProcessor(InMemorySpanExporter(), budget_exempt=["erorr"], start=False)
    with pytest.raises(ConfigError, match=r"^budget_priorities: .* must name each of"):
        tracesieve.TracerProvider(budget_priorities=["error"], start=False)
