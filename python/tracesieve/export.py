"""Exporter wrappers for a loss-accounted export path: deduplication of spans
already exported, and retries with exponential backoff and jitter. Both run on
the exporting (background) thread, never on the application's span path."""

from __future__ import annotations

import random
import threading
from typing import Callable, Dict, Optional, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tracesieve import _core
from tracesieve._background import reset_after_fork
from tracesieve._checks import check_count, check_exporter, check_fraction, check_meter_provider, check_seconds, check_seed, shown
from tracesieve._scrub import scrubbed_logger
from tracesieve.metrics import observe_stats

__all__ = ["DedupSpanExporter", "RetryingSpanExporter"]

_logger = scrubbed_logger("tracesieve.export")
#: Native state a forked child stopped using (never freed: see ``_after_fork``).
_ABANDONED: list = []


class DedupSpanExporter(SpanExporter):
    """Drops spans already delivered within a bounded window, then hands the
    rest to ``exporter``. Spans are remembered only once ``exporter`` reports
    success, so a batch whose export failed can be sent again (by a
    ``RetryingSpanExporter`` on either side of this one).

    Args:
        exporter: the exporter to protect from re-exported batches.
        mode: ``"identity"`` (trace id + span id, exact: no false positives) or
            ``"content"`` (a 128-bit hash of name, parent, timing and attributes).
        window: how many span keys to remember (oldest forgotten first).
    """

    def __init__(self, exporter: SpanExporter, *, mode: str = "identity", window: int = 100_000, meter_provider=None):
        self._exporter = check_exporter(exporter)
        check_meter_provider(meter_provider)
        self._settings = (mode, window)
        self._native = _core.NativeDedup(mode, window)
        reset_after_fork(self)
        observe_stats(self, "tracesieve.dedup", "Span deduplication: duplicates removed, keys remembered", meter_provider)

    def _after_fork(self) -> None:
        # The parent's export thread may have held the seen-set's lock; the
        # child remembers its own deliveries from here on.
        _ABANDONED.append(self._native)
        self._native = _core.NativeDedup(*self._settings)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        fresh, keys = self._native.begin(spans)
        if not fresh:
            return SpanExportResult.SUCCESS
        delivered = False
        try:
            result = self._exporter.export(fresh)
            delivered = result is SpanExportResult.SUCCESS
            return result
        finally:
            # Only what was delivered is remembered: a failed batch sent again is not swallowed.
            self._native.finish(keys, delivered)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)

    def stats(self) -> Dict[str, int]:
        """``duplicates`` removed so far and span keys ``remembered``."""
        return {"duplicates": self._native.duplicates, "remembered": self._native.remembered}


class RetryingSpanExporter(SpanExporter):
    """Retries a failing exporter with exponential backoff and jitter, up to
    ``max_attempts`` attempts in all (3, as in the seed). Spans finally given up
    on are counted, and logged once per burst of failures (then a summary when
    exports succeed again), never silently.

    Args:
        exporter: the exporter to call.
        max_attempts: attempts per batch, >= 1.
        initial_backoff: seconds before the first retry; doubled each time.
        max_backoff: cap on one wait.
        jitter: fraction of each wait drawn at random (0 to 1).
        sleep: the wait function (tests replace it). By default a wait that
            ``shutdown()`` ends at once: no attempt is made after it.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_attempts: int = 3,
        initial_backoff: float = 0.5,
        max_backoff: float = 5.0,
        jitter: float = 0.2,
        sleep: Optional[Callable[[float], None]] = None,
        seed: Optional[int] = None,
        meter_provider=None,
    ):
        self._exporter = check_exporter(exporter)
        check_meter_provider(meter_provider)
        self._attempts = check_count("max_attempts", max_attempts)
        self._initial = check_seconds("initial_backoff", initial_backoff)
        self._max = check_seconds("max_backoff", max_backoff)
        self._jitter = check_fraction("jitter", jitter)
        # Shutdown ends a backoff at once, and no attempt follows it (the exporter is shut).
        self._closed = threading.Event()
        self._sleep_is_default = sleep is None
        self._sleep = sleep or self._closed.wait
        self._random = random.Random(check_seed(seed))
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {"batches": 0, "retries": 0, "spans_exported": 0, "spans_given_up": 0}
        self._burst = 0
        reset_after_fork(self)
        observe_stats(self, "tracesieve.export", "Export retries: batches, retries, spans exported, spans given up", meter_provider)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        delay = self._initial
        for attempt in range(1, self._attempts + 1):
            try:
                result = self._exporter.export(spans)
            except Exception as error:  # an exporter that raises is a failed attempt
                result = SpanExportResult.FAILURE
                last_error: Optional[object] = error
            else:
                # Anything but SUCCESS is a failed attempt; say so when it is no result at all (a forgotten return).
                last_error = None if isinstance(result, SpanExportResult) else f"it returned {shown(result)}, not a SpanExportResult"
            if result is SpanExportResult.SUCCESS:
                self._succeeded(len(spans))
                return result
            if attempt < self._attempts and not self._closed.is_set():
                with self._lock:
                    self._counts["retries"] += 1
                wait = min(self._max, delay) * (1 - self._jitter * self._random.random())
                self._sleep(wait)
                delay *= 2
            if self._closed.is_set():
                break
        self._gave_up(len(spans), attempt, last_error)
        return SpanExportResult.FAILURE

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        closed, self._closed = self._closed.is_set(), threading.Event()
        if closed:
            self._closed.set()
        if self._sleep_is_default:
            self._sleep = self._closed.wait

    def _succeeded(self, count: int) -> None:
        with self._lock:
            self._counts["batches"] += 1
            self._counts["spans_exported"] += count
            burst, self._burst = self._burst, 0
        if burst:
            _logger.warning("tracesieve: exports succeed again after %d spans were given up", burst)

    def _gave_up(self, count: int, attempts: int, error: Optional[object]) -> None:
        with self._lock:
            self._counts["batches"] += 1
            self._counts["spans_given_up"] += count
            first = self._burst == 0
            self._burst += count
        if first:
            _logger.error(
                "tracesieve: gave up exporting %d spans after %d attempt%s%s%s; further losses are counted until exports succeed",
                count,
                attempts,
                "" if attempts == 1 else "s",
                " (the exporter was shut down)" if self._closed.is_set() else "",
                f" ({error})" if error else "",
            )

    def shutdown(self) -> None:
        self._closed.set()
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)

    def stats(self) -> Dict[str, int]:
        """Batches, retries, spans exported and spans given up."""
        with self._lock:
            return dict(self._counts)
