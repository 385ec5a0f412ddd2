"""Tail decisions: whole error traces, slow traces, stragglers, late spans,
bounded memory, loss accounting, shutdown, threads."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, List, Tuple

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags, set_span_in_context

import tracesieve
from tracesieve import ConfigError, DedupSpanExporter, ProbabilitySampler, RetryingSpanExporter, TailSamplingProcessor

from helpers import FakeSpan, Flaky


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def pipeline(rate=0.1, exporter=None, **kwargs):
    clock = Clock()
    exporter = exporter or InMemorySpanExporter()
    tail = TailSamplingProcessor(exporter, clock=clock, schedule_delay=3600, **kwargs)
    provider = TracerProvider(sampler=ProbabilitySampler(rate, defer=True))
    provider.add_span_processor(tail)
    return provider, provider.get_tracer("t"), tail, exporter, clock


def by_trace(spans):
    traces = {}
    for span in spans:
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


def test_error_traces_are_kept_whole_and_healthy_ones_follow_the_head_rate():
    provider, tracer, tail, exporter, clock = pipeline(0.1)
    error_traces = set()
    for i in range(2000):
        with tracer.start_as_current_span("GET /x") as root:
            with tracer.start_as_current_span("db"):
                pass
            with tracer.start_as_current_span("cache") as child:
                if i % 50 == 0:
                    child.set_status(Status(StatusCode.ERROR))
                    error_traces.add(root.get_span_context().trace_id)
    clock.now += 10
    tail.force_flush()
    traces = by_trace(exporter.get_finished_spans())
    assert error_traces <= set(traces), "every error trace is kept"
    assert all(len(spans) == 3 for spans in traces.values()), "kept traces are whole"
    healthy = [t for t in traces if t not in error_traces]
    assert 140 < len(healthy) < 260  # ~10% of 1960 healthy traces
    reasons = {span.attributes.get("tracesieve.tail.reason") for t in error_traces for span in traces[t]}
    assert "error" in reasons
    tail_only = [s for s in exporter.get_finished_spans() if s.attributes.get("tracesieve.tail.kept")]
    assert tail_only and all(s.attributes["tracesieve.adjusted_count"] == 1.0 for s in tail_only)
    assert all(s.attributes["tracesieve.tail.reason"] == "error" for s in tail_only)
    head_kept = [s for s in exporter.get_finished_spans() if "tracesieve.tail.reason" not in s.attributes]
    assert head_kept and all(s.context.trace_state.get("ot") == "th:e6666" for s in head_kept)
    assert all(s.context.trace_flags.sampled for s in exporter.get_finished_spans())
    stats = tail.stats()
    assert stats["spans_ended"] == stats["spans_kept"] + stats["spans_dropped"] + stats["spans_buffered"]
    provider.shutdown()


def test_slow_traces_and_rule_matches_are_kept():
    provider, tracer, tail, exporter, clock = pipeline(0.0, latency_threshold=1.0, rules=[{"name": "checkout", "route": "/api/checkout"}])
    slow = tracer.start_span("slow", start_time=0)
    slow.end(end_time=int(1.5e9))
    fast = tracer.start_span("fast", start_time=0)
    fast.end(end_time=int(0.5e9))
    with tracer.start_as_current_span("POST", attributes={"http.route": "/api/checkout"}):
        pass
    clock.now += 10
    tail.force_flush()
    kept = {s.name: s.attributes["tracesieve.tail.reason"] for s in exporter.get_finished_spans()}
    assert kept == {"slow": "latency", "POST": "rule:checkout"}
    provider.shutdown()


def test_stragglers_within_the_wait_are_included_and_late_spans_follow_the_decision():
    provider, tracer, tail, exporter, clock = pipeline(0.0)
    root = tracer.start_span("root")
    straggler = tracer.start_span("straggler", context=set_span_in_context(root))
    root.set_status(Status(StatusCode.ERROR))
    root.end()
    clock.now += 1.0  # within the 2 s wait
    straggler.end()
    clock.now += 5.0
    tail._decide(everything=False)
    late = tracer.start_span("late", context=set_span_in_context(root))
    late.end()
    assert tail.force_flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert sorted(spans) == ["late", "root", "straggler"]
    assert tail.stats()["late_kept"] == 1
    # Regression: a late span of a tail-kept error trace went out with only
    # reason=late; it carries the same marks as the rest of its trace.
    for name in ("root", "straggler", "late"):
        attributes = spans[name].attributes
        assert attributes["tracesieve.tail.reason"] == "error", name
        assert attributes["tracesieve.tail.kept"] is True, name
        assert attributes["tracesieve.adjusted_count"] == 1.0, name
    assert spans["late"].attributes["tracesieve.tail.late"] is True
    assert "tracesieve.tail.late" not in spans["root"].attributes
    provider.shutdown()


def test_shutdown_flushes_everything_pending():
    provider, tracer, tail, exporter, _clock = pipeline(0.0)
    for _ in range(50):
        with tracer.start_as_current_span("s") as span:
            span.set_status(Status(StatusCode.ERROR))
    assert tail.stats()["traces_buffered"] == 50  # no time passed: nothing was due yet
    provider.shutdown()
    assert len(exporter.get_finished_spans()) == 50
    assert tail.stats()["spans_exported"] == 50


def test_memory_limits_hold_under_a_flood_and_every_span_is_accounted_for():
    exporter = InMemorySpanExporter()
    clock = Clock()
    tail = TailSamplingProcessor(
        exporter, clock=clock, max_traces=1000, max_spans_per_trace=8, decision_cache_size=5000, schedule_delay=3600
    )
    rng = random.Random(3)
    live = []
    peak = 0
    for i in range(1_000_000):
        if i % 10 == 0:
            live.append(rng.getrandbits(128) or 1)
            if len(live) > 50:
                live.pop(0)
        trace_id = live[rng.randrange(len(live))]
        tail.on_end(FakeSpan(trace_id, i + 1, root=rng.random() < 0.05))
        if i % 100_000 == 0:
            stats = tail.stats()
            peak = max(peak, stats["traces_buffered"])
            assert stats["decisions_remembered"] <= 5000
    stats = tail.stats()
    assert peak <= 1000 and stats["traces_buffered"] <= 1000
    assert stats["evicted_early"] > 0
    assert stats["spans_ended"] == 1_000_000
    assert stats["spans_kept"] + stats["spans_dropped"] + stats["late_kept"] + stats["late_dropped"] + stats["spans_buffered"] == 1_000_000
    tail._stopped = True


def test_threads_ending_spans_concurrently_lose_nothing():
    provider, tracer, tail, exporter, clock = pipeline(1.0)

    def work():
        for _ in range(500):
            with tracer.start_as_current_span("root"):
                with tracer.start_as_current_span("child"):
                    pass

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.now += 10
    tail.force_flush()
    assert len(exporter.get_finished_spans()) == 6000
    assert tail.stats()["spans_ended"] == 6000
    provider.shutdown()


def test_an_exporter_failing_twice_then_succeeding_loses_nothing():
    flaky = Flaky(2)
    waits = []
    retrying = RetryingSpanExporter(flaky, sleep=waits.append, seed=1)
    provider, tracer, tail, _exporter, clock = pipeline(1.0)
    tail._exporter = retrying
    for _ in range(20):
        with tracer.start_as_current_span("s"):
            pass
    clock.now += 10
    tail.force_flush()
    assert len(flaky.get_finished_spans()) == 20
    assert retrying.stats() == {"batches": 1, "retries": 2, "spans_exported": 20, "spans_given_up": 0}
    assert len(waits) == 2 and 0.4 <= waits[0] <= 0.5 and 0.8 <= waits[1] <= 1.0
    provider.shutdown()


@pytest.mark.parametrize(
    "factory,message",
    [
        (lambda: TailSamplingProcessor(InMemorySpanExporter(), decision_wait=-1), r"^decision_wait: -1 is out of range"),
        (lambda: TailSamplingProcessor(InMemorySpanExporter(), latency_probability=2), r"^latency_probability: 2 is out of range"),
        (lambda: TailSamplingProcessor(InMemorySpanExporter(), max_traces=0), r"^max_traces: 0 is not a positive whole number"),
    ],
)
def test_bad_parameters_give_clear_errors(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()
    with pytest.raises(ConfigError, match=r"^exporter: expected a SpanExporter"):
        TailSamplingProcessor(object())


def test_the_batch_processors_variables_set_what_is_not_given(monkeypatch):
    """A drop-in for the SDK's BatchSpanProcessor reads its OTEL_BSP_* variables:
    they were ignored, so a queue sized for the SDK's processor was not ours."""
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2048")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", " 3 ")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    tail = TailSamplingProcessor(InMemorySpanExporter(), start=False)
    assert tail._buffer.settings[4:] == (2048, 3, 0.25)
    tail.shutdown()
    given = TailSamplingProcessor(InMemorySpanExporter(), max_queue_size=10, max_export_batch_size=5, schedule_delay=2.0, start=False)
    assert given._buffer.settings[4:] == (10, 5, 2.0), "a setting given wins over its variable"
    given.shutdown()
    for variable in ("OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY"):
        monkeypatch.setenv(variable, "")
    unset = TailSamplingProcessor(InMemorySpanExporter(), start=False)
    assert unset._buffer.settings[4:] == (100_000, 512, 1.0), "empty variables leave the defaults"
    unset.shutdown()


def test_batches_follow_the_variables_size(monkeypatch):
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3")
    sizes: List[int] = []
    exporter = InMemorySpanExporter()
    export = exporter.export
    exporter.export = lambda spans: sizes.append(len(spans)) or export(spans)  # type: ignore[method-assign]
    provider, _tracer, tail, _exporter, clock = pipeline(1.0, exporter=exporter)
    for _ in range(10):
        with provider.get_tracer("t").start_as_current_span("s"):
            pass
    clock.now += 10
    assert tail.force_flush()
    assert sizes == [3, 3, 3, 1] and len(exporter.get_finished_spans()) == 10
    provider.shutdown()


@pytest.mark.parametrize(
    "variable,text,message",
    [
        (
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "lots",
            r"^OTEL_BSP_MAX_QUEUE_SIZE: 'lots' is not a whole number >= 1 \(read for max_queue_size, which was not given\)",
        ),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", r"^OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '0' is not a whole number >= 1"),
        ("OTEL_BSP_SCHEDULE_DELAY", "-5", r"^OTEL_BSP_SCHEDULE_DELAY: '-5' is not a number of milliseconds >= 0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "nan", r"^OTEL_BSP_SCHEDULE_DELAY: 'nan' is not a number of milliseconds"),
        ("OTEL_BSP_SCHEDULE_DELAY", "1e300", r"^OTEL_BSP_SCHEDULE_DELAY: '1e300' is not a number of milliseconds >= 0 and at most"),
    ],
)
def test_a_batch_variable_with_no_valid_value_is_a_config_error_naming_it(monkeypatch, variable, text, message):
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError, match=message):
        TailSamplingProcessor(InMemorySpanExporter(), start=False)


@pytest.mark.parametrize(
    "owner",
    [
        lambda rules: TailSamplingProcessor(InMemorySpanExporter(), rules=rules, start=False),
        lambda rules: tracesieve.TracerProvider(rules=rules, start=False, shutdown_on_exit=False),
    ],
    ids=["processor", "native provider"],
)
def test_a_tail_rule_that_asks_for_more_than_a_keep_is_refused(owner):
    """A tail rule keeps what it matches: `action: "drop"` used to be turned
    into a keep without a word, keeping exactly the traces it named, and a rate
    was refused as "give either rate or action, not both" when only a rate was given."""
    drop = [{"name": "noise", "route": "/health", "action": "drop"}]
    with pytest.raises(
        ConfigError, match=r"""^rules\[0\]\.action: a tail rule keeps every trace it matches, got str 'drop'; expected "keep" """
    ):
        owner(drop)
    with pytest.raises(ConfigError, match=r"^rules\[0\]\.rate: a tail rule keeps every trace it matches, so it takes no rate"):
        owner([{"name": "some", "route": "/api", "rate": 0.5}])
    with pytest.raises(ConfigError, match=r"^rules\[1\]: expected a rule"):
        owner([{"name": "vip", "route": "/vip"}, "checkout"])
    owner([{"name": "vip", "route": "/vip", "action": "keep"}]).shutdown()


def test_deferred_spans_are_recorded_not_sampled():
    exporter = InMemorySpanExporter()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(sampler=ProbabilitySampler(0.0, defer=True))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("x", attributes={"a": 1})
    assert span.is_recording() and not span.get_span_context().trace_flags.sampled
    assert dict(span.attributes) == {"a": 1}
    span.end()
    assert exporter.get_finished_spans() == ()  # the SDK's processors skip unsampled spans


def test_metrics_appear_in_an_in_memory_reader():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    retrying = RetryingSpanExporter(Flaky(None), sleep=lambda s: None, meter_provider=meters)
    dedup = DedupSpanExporter(retrying, meter_provider=meters)
    clock = Clock()
    tail = TailSamplingProcessor(dedup, clock=clock, meter_provider=meters)
    for i in range(30):
        span = FakeSpan(i + 1, 1, True)
        span.status = Status(StatusCode.ERROR)
        tail.on_end(span)
    tail.force_flush()
    dedup.export([FakeSpan(1, 1, True)])
    points = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    points[(metric.name, point.attributes["counter"])] = point.value
    assert points[("tracesieve.tail", "kept_error")] == 30
    assert points[("tracesieve.tail", "spans_ended")] == 30
    # The re-export of a span whose first export failed is sent again (and fails again), not swallowed.
    assert points[("tracesieve.export", "spans_given_up")] == 31
    assert points[("tracesieve.export", "retries")] == 4
    assert points[("tracesieve.dedup", "duplicates")] == 0
    tail.shutdown()
    meters.shutdown()


class Blocking(InMemorySpanExporter):
    """An exporter whose export blocks until released (or for `seconds`)."""

    def __init__(self, seconds=None):
        super().__init__()
        self.release = threading.Event()
        self.seconds = seconds
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        self.release.wait(self.seconds)
        return super().export(spans)


def _balanced(stats):
    assert stats["spans_ended"] == (
        stats["spans_buffered"]
        + stats["spans_kept"]
        + stats["spans_dropped"]
        + stats["late_dropped"]
        + stats["lost_undecided"]
        + stats["spans_after_shutdown"]
    ), stats
    assert stats["spans_kept"] == (
        stats["spans_queued"]
        + stats["queue_full_dropped"]
        + stats["spans_exported"]
        + stats["spans_export_failed"]
        + stats["spans_in_flight"]
        + stats["lost_unexported"]
    ), stats


def test_every_cap_holds_when_the_exporter_stalls():
    """Regression: with an exporter blocked forever, one million head-kept spans
    left 999,488 queued (2.8 GB) with queue_full_dropped at 0, and 400k deferred
    spans stayed buffered past max_traces. Every cap holds, the excess is counted."""
    stalled = Blocking()
    tail = TailSamplingProcessor(stalled, max_queue_size=1000, max_traces=100, max_export_batch_size=10, schedule_delay=0.01)
    for i in range(50_000):
        span = FakeSpan(i + 1, 1, True)
        span.context = SpanContext(i + 1, 1, False, TraceFlags(TraceFlags.SAMPLED))  # head-kept: straight to the queue
        tail.on_end(span)
    for i in range(50_000):
        tail.on_end(FakeSpan(10**6 + i, 1, False))  # deferred, each its own trace: buffered
    stats = tail.stats()
    assert stats["spans_queued"] <= 1000
    assert stats["traces_buffered"] <= 100
    assert stats["queue_full_dropped"] >= 50_000 - 1000 - 10
    assert stats["evicted_early"] >= 50_000 - 100
    _balanced(stats)
    stalled.release.set()
    tail.shutdown()
    _balanced(tail.stats())


def test_flush_and_shutdown_keep_their_timeouts_and_count_what_is_left():
    """Regression: with an exporter hanging 10 s per call, force_flush(2000 ms)
    took 16 s, provider.shutdown() 55 s, and queued spans were never counted lost."""
    hanging = Blocking(seconds=10)
    tail = TailSamplingProcessor(hanging, max_export_batch_size=10, shutdown_timeout=1.0, schedule_delay=0.01)
    provider = TracerProvider(sampler=ProbabilitySampler(1.0))
    provider.add_span_processor(tail)
    tracer = provider.get_tracer("t")
    for _ in range(100):
        tracer.start_span("s").end()
    started = time.monotonic()
    assert tail.force_flush(timeout_millis=500) is False
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    provider.shutdown()
    assert time.monotonic() - started < 2.5
    stats = tail.stats()
    assert stats["spans_lost_at_shutdown"] > 0
    assert stats["spans_exported"] + stats["spans_lost_at_shutdown"] == 100
    _balanced(stats)
    hanging.release.set()


def test_flush_waits_for_the_batch_inside_export():
    """Regression: force_flush() returned True while a batch was still inside
    export (0 of 10 spans delivered)."""
    slow = Blocking(seconds=0.3)
    tail = TailSamplingProcessor(slow, schedule_delay=0.0)
    for i in range(10):
        span = FakeSpan(i + 1, 1, True)
        span.context = SpanContext(i + 1, 1, False, TraceFlags(TraceFlags.SAMPLED))
        tail.on_end(span)
    deadline = time.monotonic() + 5
    while slow.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the worker is now inside export
    assert tail.force_flush() is True
    assert len(slow.get_finished_spans()) == 10
    tail.shutdown()


def keeping_everything(owner: str, exporter: Any, processor: Any, wait: float) -> Tuple[Any, Any]:
    """A provider that keeps every trace, and what counts its spans: a
    ``TailSamplingProcessor`` exporting to ``exporter``, or the native
    ``TracerProvider`` replaying into ``processor``."""
    keep_all = [{"name": "all", "match": {}}]
    if owner == "TailSamplingProcessor":
        provider = TracerProvider(shutdown_on_exit=False)
        processor = TailSamplingProcessor(exporter, rules=keep_all, decision_wait=wait, schedule_delay=wait)
        provider.add_span_processor(processor)
        return provider, processor
    native = tracesieve.TracerProvider(rules=keep_all, decision_wait=wait, schedule_delay=wait, shutdown_on_exit=False)
    native.add_span_processor(processor)
    return native, native


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt, GeneratorExit])
@pytest.mark.parametrize("owner", ["TailSamplingProcessor", "tracesieve.TracerProvider"])
def test_a_destination_raising_system_exit_loses_its_batch_and_not_the_worker(owner, raised, caplog):
    """Found by giving exporters odd failures: one that raised SystemExit (or any
    BaseException) ended the worker thread, so every later span piled up and was
    reported lost at shutdown as the exporter not keeping up."""
    from opentelemetry.sdk.trace import SpanProcessor

    exporter = InMemorySpanExporter()
    failures = [raised]

    class FailingOnce(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            if failures:
                raise failures.pop()("boom")
            return exporter.export(spans)

    class FailingOnceProcessor(SpanProcessor):
        def on_end(self, span):  # type: ignore[no-untyped-def]
            if failures:
                raise failures.pop()("boom")
            exporter.export([span])

    provider, counted = keeping_everything(owner, FailingOnce(), FailingOnceProcessor(), wait=0.05)
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.ERROR, logger="tracesieve"):
        with tracer.start_as_current_span("first"):
            pass
        assert counted.force_flush(5_000)
        for _ in range(20):
            with tracer.start_as_current_span("later"):
                pass
        assert counted.force_flush(5_000), "the worker still delivers"
    provider.shutdown()
    assert [span.name for span in exporter.get_finished_spans()] == ["later"] * 20
    stats = counted.stats()
    assert stats["spans_lost_at_shutdown"] == 0 and stats["spans_export_failed"] == 1, stats
    assert "raised" in caplog.text and "boom" in caplog.text


@pytest.mark.parametrize("owner", ["TailSamplingProcessor", "tracesieve.TracerProvider"])
def test_a_flush_from_inside_a_delivery_returns_at_once(owner):
    """Found with an exporter (and a processor on the native provider) that
    flushes from inside export/on_end: the worker waited for itself for the
    whole timeout (30 s by default) before that flush returned False."""
    from opentelemetry.sdk.trace import SpanProcessor

    exporter = InMemorySpanExporter()
    inner_flushes = []
    owners = []

    def flush_from_inside() -> None:
        started = time.monotonic()
        inner_flushes.append((owners[0].force_flush(10_000), time.monotonic() - started))

    class FlushingExporter(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            flush_from_inside()
            return exporter.export(spans)

    class FlushingProcessor(SpanProcessor):
        def on_end(self, span):  # type: ignore[no-untyped-def]
            flush_from_inside()
            exporter.export([span])

    provider, counted = keeping_everything(owner, FlushingExporter(), FlushingProcessor(), wait=0.01)
    owners.append(counted)
    with provider.get_tracer("t").start_as_current_span("GET /"):
        pass
    started = time.monotonic()
    assert owners[0].force_flush(10_000)
    assert time.monotonic() - started < 5
    assert [done for done, _ in inner_flushes] == [False], "a flush cannot finish from inside the delivery it waits for"
    assert all(seconds < 1 for _, seconds in inner_flushes)
    assert len(exporter.get_finished_spans()) == 1
    provider.shutdown()


@pytest.mark.parametrize("owner", ["TailSamplingProcessor", "tracesieve.TracerProvider"])
def test_a_shutdown_from_inside_a_delivery_delivers_the_rest_itself(owner, caplog):
    """Found with an exporter (and a processor on the native provider) that shuts
    its owner down from inside export/on_end: the worker cannot wait for itself, so
    the traces still pending were dropped, and the batch being delivered (which
    then arrived) was logged as "not exported (the exporter did not keep up)"."""
    from opentelemetry.sdk.trace import SpanProcessor

    exporter = InMemorySpanExporter()
    owners: List[Any] = []
    delivering, others_ended = threading.Event(), threading.Event()

    def shut_down_after(spans: Any) -> None:
        exporter.export(spans)
        delivering.set()
        assert others_ended.wait(10)
        owners[0].shutdown()

    class ShuttingExporter(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            shut_down_after(spans)
            return SpanExportResult.SUCCESS

    class ShuttingProcessor(SpanProcessor):
        def on_end(self, span):  # type: ignore[no-untyped-def]
            shut_down_after([span])

    provider, counted = keeping_everything(owner, ShuttingExporter(), ShuttingProcessor(), wait=0.05)
    owners.append(counted)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /first"):
        pass
    assert delivering.wait(10)
    for i in range(4):  # pending (not yet due) when the shutdown comes
        with tracer.start_as_current_span(f"GET /{i}"):
            pass
    others_ended.set()
    deadline = time.monotonic() + 10
    while len(exporter.get_finished_spans()) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(exporter.get_finished_spans()) == 5
    stats = counted.stats()
    assert stats["spans_exported"] == 5 and stats["spans_lost_at_shutdown"] == 0, stats
    assert "not exported" not in caplog.text


def test_ctrl_c_in_an_export_run_in_the_applications_own_thread_goes_through():
    """With start=False the application's thread delivers (step, flush): there a
    KeyboardInterrupt is the user's Ctrl-C and must not be swallowed as a failed export."""

    class Interrupted(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

    provider = TracerProvider(shutdown_on_exit=False)
    processor = TailSamplingProcessor(Interrupted(), rules=[{"name": "all", "match": {}}], decision_wait=0, start=False)
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("GET /"):
        pass
    with pytest.raises(KeyboardInterrupt):
        processor.force_flush()


@pytest.mark.parametrize("owner", ["TailSamplingProcessor", "tracesieve.TracerProvider"])
def test_spans_that_end_after_shutdown_began_are_dropped_and_counted(owner, caplog):
    """Found shutting down with threads still ending spans: the buffer took them
    while it flushed, the flush chased them, and shutdown reported spans of its
    own making as the exporter not keeping up. Now shutdown closes the buffer
    first, flushes what was there, and counts the rest as spans_after_shutdown."""
    import logging

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = InMemorySpanExporter()
    keep_all = [{"name": "all", "match": {}}]
    if owner == "TailSamplingProcessor":
        provider = TracerProvider(shutdown_on_exit=False)
        counted = TailSamplingProcessor(exporter, rules=keep_all, shutdown_timeout=30)
        provider.add_span_processor(counted)
    else:
        provider = counted = tracesieve.TracerProvider(rules=keep_all, shutdown_timeout=30, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            with tracer.start_as_current_span("GET /"):
                pass
            time.sleep(0.0005)  # leaves the worker the interpreter most of the time

    threads = [threading.Thread(target=produce) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while counted.stats()["spans_ended"] < 500 and time.monotonic() < deadline:
            time.sleep(0.01)
        with caplog.at_level(logging.WARNING, logger="tracesieve"):
            provider.shutdown()
            ended_at_shutdown = counted.stats()["spans_ended"]
            while counted.stats()["spans_ended"] < ended_at_shutdown + 100 and time.monotonic() < deadline + 10:
                time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    stats = counted.stats()
    assert stats["spans_after_shutdown"] >= 100
    assert stats["spans_lost_at_shutdown"] == 0, "what was there when shutdown began was exported"
    assert stats["spans_ended"] == stats["spans_exported"] + stats["spans_after_shutdown"], stats
    assert len(exporter.get_finished_spans()) == stats["spans_exported"]
    assert "did not keep up" not in caplog.text and "ended after shutdown began and were dropped" in caplog.text
