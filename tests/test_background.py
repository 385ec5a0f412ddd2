"""Background threads: a loop that fails unexpectedly runs again after a
pause instead of ending an exporter or a poller for good."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracesieve import TailSamplingProcessor, _background
from tracesieve._background import BackgroundThread


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_background, "FIRST_RESTART_PAUSE", 0.01)
    monkeypatch.setattr(_background, "LONGEST_RESTART_PAUSE", 0.04)


def test_a_loop_that_fails_runs_again_after_a_pause_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    runs = []
    done = threading.Event()

    def loop(thread: BackgroundThread) -> None:
        runs.append(time.monotonic())
        if len(runs) <= 3:
            raise RuntimeError(f"failure {len(runs)}")
        done.set()

    with caplog.at_level(logging.ERROR, logger="tracesieve"):
        thread = BackgroundThread("tracesieve-test", loop)
        thread.start()
        assert done.wait(5)
        assert thread.stop(5)
    assert thread.restarts == 3
    assert [b - a >= pause for (a, b), pause in zip(zip(runs, runs[1:]), (0.01, 0.02, 0.04))] == [True] * 3
    assert caplog.text.count("background thread tracesieve-test failed; it runs again in") == 3


def test_a_loop_that_keeps_failing_pauses_whatever_wakes_it_and_ends_when_stopped() -> None:
    def loop(thread: BackgroundThread) -> None:
        raise RuntimeError("always")

    thread = BackgroundThread("tracesieve-test", loop)
    thread.start()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        thread.wake()  # a flush or a capture wakes the worker: no faster failures for that
    assert thread.restarts <= 0.3 / 0.04 + 3
    assert thread.stop(5) and not thread.alive
    assert thread.restarts >= 3


def test_the_tail_worker_delivers_again_after_an_unexpected_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by making the worker's own step raise once: the thread ended, and
    every span after that stayed queued until shutdown counted it lost."""
    exporter = InMemorySpanExporter()
    processor = TailSamplingProcessor(exporter, rules=[{"name": "all", "match": {}}], decision_wait=0.01, schedule_delay=0.01)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    decide = processor._decide
    failures = [RuntimeError("once")]

    def failing_once(everything: bool) -> None:
        if failures:
            raise failures.pop()
        decide(everything)

    monkeypatch.setattr(processor, "_decide", failing_once)
    deadline = time.monotonic() + 5
    while failures and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(10):
        with provider.get_tracer("t").start_as_current_span("GET /"):
            pass
    assert processor.force_flush(5_000)
    assert len(exporter.get_finished_spans()) == 10
    assert processor._worker.restarts == 1
    provider.shutdown()
    assert processor.stats()["spans_lost_at_shutdown"] == 0
