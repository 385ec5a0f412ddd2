"""tracesieve.TracerProvider: tail decisions on native spans, span processors
on kept traces only, capture after the fact within the retention horizon,
accounting under threads, shutdown with a hung exporter, fork, zero-code
setup, metrics, bad input."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from typing import Any, List, Tuple

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, Status, StatusCode

from tracesieve import BudgetSampler, ConfigError, PipelineSampler, ProbabilitySampler, TailSamplingProcessor, TracerProvider
from tracesieve.provider import Capture
from tracesieve.tail import LATE, REASON, TAIL_KEPT
from tracesieve.testing import SimClock

from helpers import ROOT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording(SpanProcessor):
    """Every call a processor gets, in order."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str]] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.calls.append(("start", span.name))

    def on_end(self, span: Any) -> None:
        self.calls.append(("end", span.name))


def stepped(rate: float = 0.0, **options: Any) -> Tuple[TracerProvider, Any, InMemorySpanExporter, Clock]:
    clock = Clock()
    options.setdefault("decision_wait", 1.0)
    provider = TracerProvider(sampler=ProbabilitySampler(rate, defer=True), clock=clock, start=False, shutdown_on_exit=False, **options)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, provider.get_tracer("test"), exporter, clock


def balanced(stats: dict) -> None:
    """The accounting identities ``TracerProvider.stats`` documents."""
    assert stats["spans_recorded"] == stats["spans_ended"]
    ended = stats["spans_buffered"] + stats["spans_kept"] + stats["spans_dropped"] + stats["late_dropped"] + stats["lost_undecided"]
    assert ended + stats["spans_after_shutdown"] == stats["spans_ended"], stats
    kept = stats["spans_kept"] + stats["retained_kept"]
    delivered = (
        stats["spans_queued"]
        + stats["queue_full_dropped"]
        + stats["spans_exported"]
        + stats["spans_export_failed"]
        + stats["spans_in_flight"]
        + stats["lost_unexported"]
    )
    assert kept == delivered, stats


def request(tracer: Any, name: str, *, error: bool = False, slow: float = 0.0, attributes: Any = None) -> int:
    with tracer.start_as_current_span(name, kind=SpanKind.SERVER, attributes=attributes) as root:
        with tracer.start_as_current_span(f"{name} db") as db:
            if error:
                db.set_status(Status(StatusCode.ERROR, "db down"))
        tracer.start_span(f"{name} cache").end()
        if slow:
            time.sleep(slow)
    return root.get_span_context().trace_id


def test_errors_slow_roots_and_rules_keep_whole_traces_and_nothing_else_reaches_a_processor() -> None:
    provider, tracer, exporter, clock = stepped(latency_threshold=0.05, rules=[{"name": "vip", "match": {"customer.tier": "gold"}}])
    seen = Recording()
    provider.add_span_processor(seen)
    failing = request(tracer, "failing", error=True)
    slow = request(tracer, "slow", slow=0.06)
    gold = request(tracer, "gold", attributes={"customer.tier": "gold"})
    plain = [request(tracer, f"plain {i}") for i in range(20)]
    clock.now += 2
    provider.step()
    spans = exporter.get_finished_spans()
    by_trace: dict = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    assert set(by_trace) == {failing, slow, gold}
    assert all(len(group) == 3 for group in by_trace.values()), "kept whole"
    reasons = {trace_id: {s.attributes[REASON] for s in group} for trace_id, group in by_trace.items()}
    assert reasons == {failing: {"error"}, slow: {"latency"}, gold: {"rule:vip"}}
    assert all(s.attributes[TAIL_KEPT] is True and s.context.trace_flags.sampled for s in spans)
    assert not set(plain) & set(by_trace)
    assert len(seen.calls) == 2 * len(spans), "processors only see kept spans"
    stats = provider.stats()
    assert (stats["kept_error"], stats["kept_latency"], stats["kept_rule"], stats["traces_dropped"]) == (1, 1, 1, 20)
    assert stats["retained_spans"] == 60
    balanced(stats)


def test_each_processor_sees_on_start_then_on_end_span_by_span_in_end_order() -> None:
    provider, tracer, _, clock = stepped(rate=1.0)
    seen = Recording()
    provider.add_span_processor(seen)
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("child"):
            tracer.start_span("grandchild").end()
    clock.now += 2
    provider.step()
    assert seen.calls == [
        ("start", "grandchild"),
        ("end", "grandchild"),
        ("start", "child"),
        ("end", "child"),
        ("start", "root"),
        ("end", "root"),
    ]


@pytest.mark.parametrize("max_attributes", [None, 3])
def test_a_baggage_processor_sets_in_on_start_what_it_sets_on_the_sdks_spans(max_attributes: Any) -> None:
    """``BaggageSpanProcessor`` reads the context a span started in, in
    ``on_start``, and copies baggage into attributes: replayed spans carry
    the same attributes (and dropped counts, at a limit) as the SDK's."""
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor

    limits = sdk_trace.SpanLimits(max_span_attributes=max_attributes)

    def run(provider: Any) -> List[Any]:
        exporter = InMemorySpanExporter()
        provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("baggage")
        token = context.attach(baggage.set_baggage("region", "eu", baggage.set_baggage("customer.tier", "gold")))
        try:
            with tracer.start_as_current_span("checkout", attributes={"a": 1, "b": 2}) as checkout:
                with tracer.start_as_current_span("charge"):
                    pass
                checkout.set_attributes({"c": 3, "a": 4, "d": 5})
        finally:
            context.detach(token)
        provider.force_flush()
        provider.shutdown()
        return sorted((s.name, dict(s.attributes), s.dropped_attributes) for s in exporter.get_finished_spans())

    ours = run(TracerProvider(sampler=ALWAYS_ON, span_limits=limits, decision_wait=0.01, shutdown_on_exit=False))
    assert ours == run(sdk_trace.TracerProvider(sampler=ALWAYS_ON, span_limits=limits, shutdown_on_exit=False))
    assert ours[0][1] == {"customer.tier": "gold", "region": "eu"}


def test_an_unchanged_batch_span_processor_exports_kept_traces() -> None:
    provider = TracerProvider(sampler=ProbabilitySampler(0.0, defer=True), decision_wait=0.05, shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("batch")
    kept = [request(tracer, f"failing {i}", error=True) for i in range(5)]
    for i in range(20):
        request(tracer, f"plain {i}")
    provider.shutdown()
    assert {s.context.trace_id for s in exporter.get_finished_spans()} == set(kept)
    assert len(exporter.get_finished_spans()) == 15
    balanced(provider.stats())


def test_a_trace_captured_after_the_fact_is_exported_whole() -> None:
    provider, tracer, exporter, clock = stepped()
    trace_id = request(tracer, "checkout")
    clock.now += 2
    provider.step()
    assert exporter.get_finished_spans() == ()
    assert provider.capture(f"{trace_id:032x}") == Capture("retained", 3)
    provider.step()
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["checkout", "checkout cache", "checkout db"]
    assert {s.attributes[REASON] for s in spans} == {"captured"}
    assert not any(LATE in s.attributes for s in spans)
    assert provider.capture(trace_id) == Capture("kept", 0), "already kept"
    stats = provider.stats()
    assert (stats["kept_captured"], stats["captures"], stats["retained_kept"]) == (1, 2, 3)
    balanced(stats)


def test_a_capture_of_a_trace_still_running_keeps_its_spans_to_come() -> None:
    provider, tracer, exporter, clock = stepped()
    with tracer.start_as_current_span("root") as root:
        tracer.start_span("first").end()
        assert provider.capture(root.get_span_context().trace_id) == Capture("pending", 0)
        tracer.start_span("second").end()
    clock.now += 2
    provider.step()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["first", "root", "second"]


def test_retention_is_bounded_by_bytes_and_a_capture_beyond_the_horizon_says_so() -> None:
    provider, tracer, _exporter, clock = stepped(retention_bytes=20_000)
    traces = [request(tracer, f"request {i}", attributes={"i": i}) for i in range(300)]
    clock.now += 2
    provider.step()
    stats = provider.stats()
    assert 0 < stats["retained_bytes"] <= 20_000 and stats["retention_evicted"] > 0
    assert provider.capture(traces[0]) == Capture("beyond_horizon", 0)
    assert provider.capture(traces[-1]) == Capture("retained", 3)
    assert provider.stats()["captures_beyond_horizon"] == 1
    with pytest.raises(ValueError, match="trace_id"):
        provider.capture("not a trace id")
    with pytest.raises(ValueError, match="trace_id"):
        provider.capture(0)


@pytest.mark.parametrize("exempt", [(), ("rule",)])
def test_a_capture_the_budget_cannot_cover_is_refused_and_stays_retained(exempt: Tuple[str, ...]) -> None:
    """Regression: a capture the budget refused took the trace's spans out of
    the ring and lost them, answered "beyond_horizon", and "kept" when asked
    again. Captures spend the budget as tail rules do (exempt with them)."""
    clock = Clock()
    budget = BudgetSampler(ProbabilitySampler(0.0), budget=10, store="memory", defer=True)
    provider = TracerProvider(sampler=budget, clock=clock, start=False, shutdown_on_exit=False, decision_wait=1.0, budget_exempt=exempt)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    plain = request(tracer, "plain")
    for i in range(4):
        request(tracer, f"failing {i}", error=True)  # error traces spend what the budget has
    clock.now += 2
    provider.step()
    assert budget.budget_status()["remaining_spans"] < 3, budget.budget_status()
    exported = len(exporter.get_finished_spans())
    if exempt:
        assert provider.capture(plain) == Capture("retained", 3)
        provider.step()
        assert len(exporter.get_finished_spans()) == exported + 3
        assert budget.budget_status()["over_budget_spans"] > 0
        return
    retained = provider.stats()["retained_spans"]
    assert provider.capture(plain) == Capture("refused", 3)
    assert provider.capture(plain) == Capture("refused", 3), "still retained, still not kept"
    provider.step()
    stats = provider.stats()
    assert len(exporter.get_finished_spans()) == exported
    assert (stats["captures_refused"], stats["captures_beyond_horizon"], stats["retained_spans"]) == (2, 0, retained)
    assert budget.budget_status()["tail"]["rule"]["refused_spans"] == 6
    balanced(stats)


def test_spans_that_end_after_their_trace_was_decided_are_kept_late() -> None:
    provider, tracer, exporter, clock = stepped()
    with tracer.start_as_current_span("root") as root:
        straggler = tracer.start_span("straggler")
        root.set_status(Status(StatusCode.ERROR))
    clock.now += 2
    provider.step()
    straggler.end()
    provider.step()
    late = [s for s in exporter.get_finished_spans() if s.name == "straggler"]
    assert len(late) == 1 and late[0].attributes[LATE] is True


def test_threads_hammering_one_provider_keep_every_span_accounted_for() -> None:
    provider = TracerProvider(sampler=ProbabilitySampler(0.1, defer=True), decision_wait=0.02, shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("hammer")

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(150):
            trace_id = request(tracer, f"worker {seed}", error=rng.random() < 0.05)
            if rng.random() < 0.05:
                provider.capture(trace_id)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert provider.force_flush(10_000)
    stats = provider.stats()
    assert stats["spans_ended"] == 8 * 150 * 3
    balanced(stats)
    exported = exporter.get_finished_spans()
    by_trace: dict = {}
    for span in exported:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    assert all(len(group) == 3 for group in by_trace.values()), "every kept trace whole"
    assert len({(s.context.trace_id, s.context.span_id) for s in exported}) == len(exported), "each span once"
    provider.shutdown()


class Stuck(InMemorySpanExporter):
    """An exporter whose export blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def export(self, spans: Any) -> SpanExportResult:
        self.release.wait(30)
        return super().export(spans)


def test_shutdown_with_a_hung_exporter_returns_in_time_and_counts_the_loss() -> None:
    provider = TracerProvider(sampler=ProbabilitySampler(1.0), decision_wait=0.01, shutdown_timeout=0.5, shutdown_on_exit=False)
    stuck = Stuck()
    provider.add_span_processor(SimpleSpanProcessor(stuck))
    tracer = provider.get_tracer("stuck")
    for i in range(10):
        request(tracer, f"r{i}")
    assert provider.force_flush(200) is False
    started = time.monotonic()
    stuck_shutdown = threading.Thread(target=provider.shutdown)
    stuck_shutdown.start()
    stuck_shutdown.join(5)
    assert time.monotonic() - started < 3
    stats = provider.stats()
    assert stats["spans_lost_at_shutdown"] > 0
    balanced(stats)
    stuck.release.set()


def test_span_calls_never_raise_into_the_application() -> None:
    """Whatever a span is given, it records what it can and the application goes on."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    provider, tracer, exporter, clock = stepped(rate=1.0)
    span = tracer.start_span("odd", attributes=42, links=[object()], start_time="now", kind="server")  # type: ignore[arg-type]
    span.set_attribute("unprintable", Unprintable())
    span.set_attributes(42)  # type: ignore[arg-type]
    span.add_event("e", 42, timestamp="later")  # type: ignore[arg-type]
    span.add_link(42)  # type: ignore[arg-type]
    span.set_status("bogus")  # type: ignore[arg-type]
    span.record_exception("not an exception")  # type: ignore[arg-type]
    span.update_name(None)  # type: ignore[arg-type]
    span.end(end_time="x")  # type: ignore[arg-type]
    clock.now += 2
    provider.step()
    (exported,) = exporter.get_finished_spans()
    assert exported.name == "None" and "unprintable" not in exported.attributes
    assert exported.start_time <= exported.end_time
    assert [e.name for e in exported.events] == ["e", "exception"]


def test_native_spans_are_opentelemetry_spans() -> None:
    _provider, tracer, _, _ = stepped(rate=0.5)
    recorded = tracer.start_span("recorded", context=context.Context())
    assert isinstance(recorded, trace.Span) and isinstance(tracer, trace.Tracer)
    assert recorded.is_recording() and recorded.get_span_context().is_valid
    with trace.use_span(recorded, end_on_exit=True):
        assert trace.get_current_span() is recorded
    assert not recorded.is_recording()
    dropped = TracerProvider(sampler=ProbabilitySampler(0.0), shutdown_on_exit=False).get_tracer("t").start_span("dropped")
    assert isinstance(dropped, trace.Span) and not dropped.is_recording() and dropped.get_span_context().is_valid


def test_a_tracer_per_scope_and_the_sdks_disabled_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    assert provider.get_tracer("a", "1") is provider.get_tracer("a", "1")
    assert provider.get_tracer("a", "1") is not provider.get_tracer("a", "2")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert isinstance(TracerProvider(shutdown_on_exit=False).get_tracer("a"), trace.NoOpTracer)


def test_tail_keeps_spend_the_samplers_budget() -> None:
    clock = Clock()
    # The budget's own clock at noon: on the real one, near midnight UTC the day's
    # allowance was nearly spent and the tail kept 1 error trace of 4.
    budget = BudgetSampler(0.0, budget=1_000, period="day", store="memory", defer=True, clock=SimClock(1_767_268_800.0))
    provider = TracerProvider(sampler=budget, decision_wait=1.0, clock=clock, start=False, shutdown_on_exit=False)
    tracer = provider.get_tracer("budget")
    for i in range(4):
        request(tracer, f"failing {i}", error=True)
    clock.now += 2
    provider.step()
    assert provider.stats()["kept_error"] == 4
    assert budget.budget_status()["tail"]["error"]["kept_spans"] == 12


def test_the_adaptive_stages_windows_see_every_recorded_span() -> None:
    from tracesieve.pipeline import from_config

    sampler = from_config({"adaptive": {"window": 60}, "probability": {"rate": 0.01}, "defer": True})
    provider = TracerProvider(sampler=sampler, decision_wait=0.05, shutdown_on_exit=False)
    tracer = provider.get_tracer("adaptive")
    for i in range(10):
        request(tracer, f"failing {i}", error=True)
    counts = sampler.processor._native.counts()
    assert (counts["spans"], counts["errors"]) == (30, 10)
    provider.shutdown()


def test_configuration_mistakes_fail_at_construction_naming_the_field() -> None:
    cases = [
        ({"decision_wait": "soon"}, "decision_wait"),
        ({"retention_bytes": -1}, "retention_bytes"),
        ({"rules": "vip"}, "rules"),
        ({"rules": [{"name": "x", "match": {"a": 1}, "rate": 2}]}, "rules"),
        ({"share": "http://redis"}, "share"),
        ({"budget": 3}, "budget"),
        ({"start": "yes"}, "start"),
    ]
    for options, field in cases:
        with pytest.raises(ConfigError, match=field):
            TracerProvider(shutdown_on_exit=False, **options)


def test_a_span_processor_that_is_none_fails_when_added() -> None:
    """The SDK's provider takes any value and raised AttributeError at shutdown."""
    provider = TracerProvider(shutdown_on_exit=False)
    with pytest.raises(ConfigError, match=r"^span_processor: expected a SpanProcessor, got NoneType \(no on_start\(\); subclass .*\)$"):
        provider.add_span_processor(None)
    provider.shutdown()


def test_a_span_processor_that_only_looks_like_one_fails_when_added() -> None:
    """Found with a duck-typed processor: the SDK calls _on_ending on every
    processor, which only SpanProcessor subclasses have, so every kept span
    was lost in the worker (the SDK's own provider raises at every span end)."""
    from opentelemetry.sdk.trace import SpanProcessor

    class LooksLikeOne:
        def on_start(self, span: Any, parent_context: Any = None) -> None: ...

        def on_end(self, span: Any) -> None: ...

        def shutdown(self) -> None: ...

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    provider = TracerProvider(shutdown_on_exit=False)
    if hasattr(SpanProcessor, "_on_ending"):
        with pytest.raises(ConfigError, match=r"got LooksLikeOne \(no _on_ending\(\); subclass opentelemetry.sdk.trace.SpanProcessor\)$"):
            provider.add_span_processor(LooksLikeOne())
    else:
        provider.add_span_processor(LooksLikeOne())
    provider.shutdown()


@pytest.mark.parametrize(
    "timeout_millis", [float("inf"), 10**5000, 1e300, -5, float("nan"), 0], ids=["inf", "5001 digits", "1e300", "-5", "nan", "0"]
)
def test_force_flush_takes_any_timeout_the_sdk_takes(timeout_millis: Any) -> None:
    """An infinite timeout (wait as long as it takes), which the SDK's provider
    takes, raised OverflowError from the wait; so did an integer of a thousand digits."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False, rules=[{"name": "all", "match": {}}])
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tail = TailSamplingProcessor(InMemorySpanExporter(), rules=[{"name": "all", "match": {}}])
    sdk = SdkTracerProvider(shutdown_on_exit=False)
    sdk.add_span_processor(tail)
    for owner in (provider, sdk):
        with owner.get_tracer("t").start_as_current_span("GET /"):
            pass
    flushed = [provider.force_flush(timeout_millis), tail.force_flush(timeout_millis)]
    if timeout_millis == float("inf") or timeout_millis > 0:
        assert flushed == [True, True] and len(exporter.get_finished_spans()) == 1
    provider.shutdown()
    sdk.shutdown()


def test_from_config_reads_the_tail_section_and_defers_the_head(tmp_path: Any) -> None:
    path = tmp_path / "sampling.toml"
    path.write_text("[probability]\nrate = 0.0\n\n[tail]\ndecision_wait = 0.01\nlatency_threshold = 0.5\nretention_bytes = 1048576\n")
    provider = TracerProvider.from_config(path, shutdown_on_exit=False)
    assert provider.sampler.settings["defer"] is True
    assert provider.stats()["retention_bytes"] == 1_048_576
    failing = request(provider.get_tracer("config"), "failing", error=True)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.force_flush()
    assert {s.context.trace_id for s in exporter.get_finished_spans()} == {failing}
    path.write_text("[tail]\ndecison_wait = 1\n")
    with pytest.raises(ConfigError, match=r'sampling.toml: tail.decison_wait: unknown tail setting \(did you mean "decision_wait"\?\)'):
        TracerProvider.from_config(path)


def test_from_config_refuses_what_it_would_otherwise_pass_over_for_the_sdks_sampler(tmp_path: Any) -> None:
    """Regression: a document with no stage it knew (a mistyped stage, an
    OpenTelemetry configuration file) got the SDK's default sampler, every
    trace kept, without a word. A document of only tail settings still does,
    as documented."""
    path = tmp_path / "sampling.toml"
    path.write_text("[budjet]\nbudget = 5000\n")
    with pytest.raises(ConfigError, match=r'sampling.toml: budjet: unknown stage or setting \(did you mean "budget"\?\)'):
        TracerProvider.from_config(path)
    otel = tmp_path / "otel.yaml"
    otel.write_text('file_format: "1.0"\ntracer_provider:\n  sampler:\n    always_off: {}\n')
    with pytest.raises(ConfigError, match=r"otel.yaml: an OpenTelemetry configuration file .* let the SDK read it \(OTEL_CONFIG_FILE"):
        TracerProvider.from_config(otel)
    tail_only = TracerProvider.from_config({"tail": {"decision_wait": 0.01}, "defer": True}, shutdown_on_exit=False)
    try:
        assert tail_only.sampler.get_description().startswith("ParentBased{root:AlwaysOnSampler")
    finally:
        tail_only.shutdown()


def test_zero_code_through_the_tracer_provider_entry_point(tmp_path: Any) -> None:
    """``OTEL_PYTHON_TRACER_PROVIDER=tracesieve`` with the settings from
    ``TRACESIEVE_CONFIG``, in a fresh process."""
    path = tmp_path / "sampling.yaml"
    path.write_text(
        "probability:\n  rate: 0.0\ntail:\n  decision_wait: 0.01\n  rules:\n    - name: vip\n      match: {customer.tier: gold}\n"
    )
    program = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
provider = trace.get_tracer_provider()
exporter = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = trace.get_tracer("zero-code")
with tracer.start_as_current_span("gold", attributes={"customer.tier": "gold"}):
    pass
with tracer.start_as_current_span("plain"):
    pass
provider.force_flush()
print(json.dumps({"provider": type(provider).__module__, "kept": [s.name for s in exporter.get_finished_spans()]}))
"""
    env = {**os.environ, "OTEL_PYTHON_TRACER_PROVIDER": "tracesieve", "TRACESIEVE_CONFIG": str(path)}
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == {"provider": "tracesieve.provider", "kept": ["gold"]}
    path.write_text("tail:\n  decision_wait: soon\n")
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "TRACESIEVE_CONFIG is misconfigured" in out.stderr and "tail.decision_wait" in out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["provider"] == "tracesieve.provider", "never fails open, never fails"


def test_its_counts_are_an_opentelemetry_metric() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = TracerProvider(
        sampler=ProbabilitySampler(1.0), decision_wait=0.01, meter_provider=MeterProvider([reader]), shutdown_on_exit=False
    )
    request(provider.get_tracer("metrics"), "r")
    provider.force_flush()
    data = reader.get_metrics_data()
    points = {
        p.attributes["counter"]: p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "tracesieve.provider"
        for p in m.data.data_points
    }
    assert points["spans_recorded"] == 3 and points["spans_exported"] == 3
    provider.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_records_and_exports_its_own_spans_with_its_own_ids() -> None:
    program = """
import json, os
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tracesieve import ProbabilitySampler, TracerProvider
provider = TracerProvider(sampler=ProbabilitySampler(1.0), decision_wait=0.01)
exporter = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("fork")
tracer.start_span("before fork").end()
open_span = tracer.start_span("open across the fork")
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    spans = [tracer.start_span(f"child {i}") for i in range(3)]
    for span in spans:
        span.end()
    open_span.end()
    provider.force_flush()
    stats = provider.stats()
    os.write(write, json.dumps({
        "names": sorted(s.name for s in exporter.get_finished_spans()),
        "ids": [s.get_span_context().span_id for s in spans],
        "before_fork": stats["spans_from_before_fork"],
        "worker": provider._worker.alive,
    }).encode())
    os._exit(0)
os.close(write)
ids = [tracer.start_span(f"parent {i}").get_span_context().span_id for i in range(3)]
child = json.loads(os.read(read, 65536))
os.waitpid(pid, 0)
open_span.end()
provider.force_flush()
print(json.dumps({"child": child, "parent_ids": ids, "parent": sorted(s.name for s in exporter.get_finished_spans())}))
"""
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)
    result = json.loads(out.stdout.splitlines()[-1])
    child = result["child"]
    assert child["names"] == ["child 0", "child 1", "child 2"], "the parent's spans stay the parent's"
    assert child["before_fork"] == 1 and child["worker"] is True
    assert not set(child["ids"]) & set(result["parent_ids"]), "the child does not repeat its parent's ids"
    assert result["parent"] == ["before fork", "open across the fork"]


def test_logs_say_nothing_at_span_time_for_ordinary_use(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider, tracer, _, clock = stepped(rate=0.5)
    for i in range(50):
        request(tracer, f"r{i}")
    clock.now += 2
    provider.step()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_from_config_keeps_a_budgets_record_under_the_resources_service(tmp_path, private_state_dir, monkeypatch):
    """Regression: TracerProvider.from_config(..., resource=Resource.create({"service.name":
    "checkout"})) exported spans as checkout but filed the budget's record under the
    program's name and a digest of its command line, so two services launched alike could
    meet there only by that digest, and the record did not say whose it was."""
    from opentelemetry.sdk.resources import Resource

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    config = tmp_path / "sampling.toml"
    config.write_text("[probability]\nrate = 1.0\n[budget]\nbudget = 100000\n")
    provider = TracerProvider.from_config(config, resource=Resource.create({"service.name": "checkout"}))
    try:
        assert provider.sampler.stats()["store"]["url"] == f"file://{private_state_dir / 'checkout.tracesieve'}"
        # A reload keeps it there.
        config.write_text("[probability]\nrate = 0.5\n[budget]\nbudget = 100000\n")
        assert provider.sampler.reload()
        assert provider.sampler.stats()["store"]["url"] == f"file://{private_state_dir / 'checkout.tracesieve'}"
    finally:
        provider.shutdown()
    # The SDK's default name (unknown_service...) names no service; the budget's own name comes first.
    unnamed = TracerProvider.from_config(config, resource=Resource.create({}))
    config.write_text('[probability]\nrate = 1.0\n[budget]\nbudget = 100000\nname = "billing"\n')
    named = TracerProvider.from_config(config, resource=Resource.create({"service.name": "checkout"}))
    try:
        assert "unknown_service" not in unnamed.sampler.stats()["store"]["url"]
        assert named.sampler.stats()["store"]["url"] == f"file://{private_state_dir / 'billing.tracesieve'}"
    finally:
        named.shutdown()
        unnamed.shutdown()
    with pytest.raises(ConfigError, match="service_name: expected None or a non-empty string"):
        PipelineSampler(config, service_name="")
