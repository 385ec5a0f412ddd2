"""The exporter wrappers: dedup by identity and by content, retries with
backoff, loss accounting, bad settings."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracesieve import ConfigError, DedupSpanExporter, RetryingSpanExporter

from helpers import FakeSpan, Flaky


def test_an_exporter_that_always_fails_loses_exactly_what_is_counted(caplog):
    retrying = RetryingSpanExporter(Flaky(None), sleep=lambda s: None, max_attempts=3)
    for batch in range(4):
        assert retrying.export([FakeSpan(batch + 1, i + 1, True) for i in range(25)]) is SpanExportResult.FAILURE
    assert retrying.stats()["spans_given_up"] == 100
    assert retrying.stats()["retries"] == 8
    assert caplog.text.count("gave up exporting") == 1, "logged once per burst"


class _ForgetsToReturn(InMemorySpanExporter):
    def export(self, spans):  # type: ignore[override]
        super().export(spans)  # delivered, but the result is not returned


def test_an_exporter_returning_no_result_is_retried_and_the_log_says_why(caplog):
    """A result that is not SUCCESS is a failed attempt, whatever it is; when it is not a
    SpanExportResult at all, the give-up line names it, or the user sees the batch
    delivered three times and "gave up" with no reason."""
    inner = _ForgetsToReturn()
    retrying = RetryingSpanExporter(inner, sleep=lambda s: None, max_attempts=3)
    assert retrying.export([FakeSpan(1, 1, True)]) is SpanExportResult.FAILURE
    assert len(inner.get_finished_spans()) == 3
    assert "gave up exporting 1 spans after 3 attempts (it returned NoneType None, not a SpanExportResult)" in caplog.text


def test_shutdown_ends_a_backoff_at_once_and_no_attempt_follows(caplog):
    """Found by shutting a tail processor down while its exporter was failing:
    the retry slept its whole backoff (time.sleep), then called the exporter
    again after the exporter had been shut down."""
    import threading
    import time

    calls = []

    class Failing(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            calls.append(time.monotonic())
            return SpanExportResult.FAILURE

    retrying = RetryingSpanExporter(Failing(), max_attempts=5, initial_backoff=30, max_backoff=30)
    results = []
    exporting = threading.Thread(target=lambda: results.append(retrying.export([FakeSpan(1, 1, True)])))
    exporting.start()
    while not calls:
        time.sleep(0.01)
    time.sleep(0.05)  # inside the first backoff
    started = time.monotonic()
    retrying.shutdown()
    exporting.join(5)
    assert time.monotonic() - started < 1 and results == [SpanExportResult.FAILURE]
    assert len(calls) == 1, "no attempt after shutdown"
    assert retrying.stats()["spans_given_up"] == 1
    assert "gave up exporting 1 spans after 1 attempt (the exporter was shut down)" in caplog.text
    assert retrying.export([FakeSpan(2, 1, True)]) is SpanExportResult.FAILURE and len(calls) == 2, "one attempt, no retry"


def test_dedup_removes_re_exported_batches_by_identity_and_by_content():
    sink = InMemorySpanExporter()
    dedup = DedupSpanExporter(sink)
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    spans = []
    for i in range(10):
        span = tracer.start_span(f"s{i}", attributes={"k": i})
        span.end()
        spans.append(span)
    dedup.export(spans)
    dedup.export(spans)
    dedup.export(spans[:3])
    assert len(sink.get_finished_spans()) == 10
    assert dedup.stats() == {"duplicates": 13, "remembered": 10}
    by_content = DedupSpanExporter(InMemorySpanExporter(), mode="content")
    twin = FakeSpan(1, 5, True)
    twin.attributes = {"b": 2, "a": [1, "x"]}
    other = FakeSpan(1, 6, True)  # another span id, same content
    other.attributes = {"a": [1, "x"], "b": 2}
    different = FakeSpan(1, 7, True)
    different.attributes = {"a": [1, "y"], "b": 2}
    by_content.export([twin, other, different])
    assert by_content.stats()["duplicates"] == 1


@pytest.mark.parametrize(
    "factory,message",
    [
        (lambda: DedupSpanExporter(InMemorySpanExporter(), mode="fuzzy"), r'^mode: unknown mode "fuzzy"'),
        (lambda: DedupSpanExporter(InMemorySpanExporter(), window=0), r"^window: 0 is not a positive"),
        (lambda: RetryingSpanExporter(InMemorySpanExporter(), max_attempts=0), r"^max_attempts: 0 is not a whole number >= 1"),
        (lambda: RetryingSpanExporter(InMemorySpanExporter(), jitter=3), r"^jitter: 3 is out of range"),
        (lambda: DedupSpanExporter(object()), r"^exporter: expected a SpanExporter"),
        (lambda: RetryingSpanExporter(object()), r"^exporter: expected a SpanExporter"),
    ],
)
def test_bad_parameters_give_clear_errors(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()


@pytest.mark.parametrize("nesting", ["retry outside dedup", "dedup outside retry"])
def test_dedup_remembers_only_what_was_delivered(nesting):
    """Regression: a batch whose export failed was remembered as sent, so the
    retry was swallowed: RetryingSpanExporter(DedupSpanExporter(fails_twice))
    reported 100 exported and delivered 0."""
    sink = Flaky(2)
    if nesting == "retry outside dedup":
        exporter = RetryingSpanExporter(DedupSpanExporter(sink), sleep=lambda s: None)
    else:
        exporter = DedupSpanExporter(RetryingSpanExporter(sink, sleep=lambda s: None))
    spans = [FakeSpan(7, i + 1, i == 0) for i in range(100)]
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert len(sink.get_finished_spans()) == 100
    assert exporter.export(spans) is SpanExportResult.SUCCESS, "delivered spans are duplicates now"
    assert len(sink.get_finished_spans()) == 100


def test_dedup_lets_a_failed_batch_through_again_and_counts_nothing_as_duplicate():
    sink = Flaky(1)
    dedup = DedupSpanExporter(sink)
    spans = [FakeSpan(9, i + 1, True) for i in range(10)]
    assert dedup.export(spans) is SpanExportResult.FAILURE
    assert dedup.stats() == {"duplicates": 0, "remembered": 0}
    assert dedup.export(spans) is SpanExportResult.SUCCESS
    assert dedup.stats() == {"duplicates": 0, "remembered": 10}


def test_dedup_releases_spans_when_the_exporter_raises():
    class Raising(InMemorySpanExporter):
        calls = 0

        def export(self, spans):
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("collector down")
            return super().export(spans)

    sink = Raising()
    dedup = DedupSpanExporter(sink)
    spans = [FakeSpan(3, 1, True)]
    with pytest.raises(ConnectionError):
        dedup.export(spans)
    assert dedup.export(spans) is SpanExportResult.SUCCESS
    assert len(sink.get_finished_spans()) == 1
