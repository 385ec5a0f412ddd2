"""Tail decisions in-process: buffer each trace's ended spans, decide when its
local root ends (plus a wait for stragglers) or on a timeout, and export kept
traces in batches on a background thread.

Memory is bounded (traces buffered, spans per trace, remembered decisions); at a
limit a trace is decided early from its head decision and the event is counted.
``on_end`` never blocks on export: it appends under a short lock and returns.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from tracesieve import _core
from tracesieve._checks import check_exporter
from tracesieve.estimate import ADJUSTED_COUNT, threshold_of

__all__ = ["TailSamplingProcessor"]

_logger = logging.getLogger("tracesieve.tail")

REASON = "tracesieve.tail.reason"
TAIL_KEPT = "tracesieve.tail.kept"
_RANDOMNESS_MASK = (1 << 56) - 1


class TailSamplingProcessor(SpanProcessor):
    """Keeps whole traces that matter, decided after their spans end.

    A trace is kept if its head decision kept it, if any span has an error
    (status ERROR or an exception event), if the local root's duration reaches
    ``latency_threshold`` seconds (kept with ``latency_probability``, decided
    consistently from the trace id), or if one of ``rules`` matches the local
    root (the ``RuleSampler`` conditions, seeing the root's final attributes).
    Use a head sampler with ``defer=True`` so dropped spans are recorded and
    can still be kept here. Spans the head kept are exported unchanged (their
    ``th`` gives the adjusted count); spans kept by the tail carry
    ``tracesieve.tail.reason`` (error, latency, rule:<name>, late),
    ``tracesieve.adjusted_count`` and ``tracesieve.tail.kept = true``.

    Args:
        exporter: where kept spans go (wrap it in ``RetryingSpanExporter`` /
            ``DedupSpanExporter`` as needed).
        decision_wait: seconds to wait after the local root ends, for stragglers.
        trace_timeout: seconds after a trace's first span when it is decided
            even without a local root.
        latency_threshold: seconds at or above which a local root makes its
            trace slow (None: latency does not keep traces).
        latency_probability: the probability slow traces are kept with.
        rules: ``RuleSampler`` conditions on the local root's final attributes
            that keep a trace.
        max_traces: traces buffered at most; at the limit the oldest is decided early.
        max_spans_per_trace: spans buffered per trace at most.
        decision_cache_size: decisions remembered for late spans.
        max_queue_size: kept spans waiting for export at most.
        max_export_batch_size: spans per ``export`` call.
        schedule_delay: seconds between exports of a partial batch.
        clock: callable returning seconds (monotonic), for tests.
        meter_provider: export ``stats()`` as the OTel metric ``tracesieve.tail``
            (also when an SDK MeterProvider is set globally).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        decision_wait: float = 2.0,
        trace_timeout: float = 30.0,
        latency_threshold: Optional[float] = None,
        latency_probability: float = 1.0,
        rules: Optional[Sequence[Mapping[str, Any]]] = None,
        max_traces: int = 10_000,
        max_spans_per_trace: int = 1_000,
        decision_cache_size: int = 100_000,
        max_queue_size: int = 100_000,
        max_export_batch_size: int = 512,
        schedule_delay: float = 1.0,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
    ):
        self._exporter = check_exporter(exporter)
        # Every setting is checked natively; the buffering (the per-span work) is native too.
        self._buffer = _core.NativeTailBuffer(
            decision_wait=decision_wait,
            trace_timeout=trace_timeout,
            latency_threshold=latency_threshold,
            latency_probability=latency_probability,
            max_traces=max_traces,
            max_spans_per_trace=max_spans_per_trace,
            decision_cache_size=decision_cache_size,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay=schedule_delay,
            clock=clock,
        )
        (self._wait, self._timeout, latency, self._latency_probability, self._max_queue, self._batch, self._delay) = self._buffer.settings
        self._latency_ns = None if latency is None else latency * 1e9
        self._latency_threshold = None if self._latency_probability <= 0 else _core.threshold_for_probability(self._latency_probability)
        self._rules = None
        if rules:
            from tracesieve.samplers import RuleSampler

            self._rules = RuleSampler([{**rule, "action": "keep"} for rule in rules], default_rate=0.0)
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple] = collections.deque()
        self._counts: Dict[str, int] = collections.Counter()
        self._wake = threading.Event()
        self._stopped = False
        self._export_lock = threading.Lock()
        # The hot path: the SDK calls the native method directly.
        self.on_end = self._buffer.on_end  # type: ignore[method-assign,assignment]
        self._worker = threading.Thread(target=self._run, name="tracesieve-tail", daemon=True)
        self._worker.start()
        from tracesieve.metrics import observe_stats

        observe_stats(
            self, "tracesieve.tail", "Tail sampling: spans ended, kept, dropped, buffered, evicted early, late, exported", meter_provider
        )

    # -- SpanProcessor -------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        # Only reached through the class; instances use the native method bound in __init__.
        self._buffer.on_end(span)

    def shutdown(self) -> None:
        self.force_flush()
        self._stopped = True
        self._wake.set()
        self._worker.join(timeout=5)
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Decide every pending trace now and export everything queued."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._collect(everything=True)
        while self._queue and time.monotonic() < deadline:
            self._export_batch()
        return not self._queue

    # -- decisions -----------------------------------------------------------------

    def _decide(self, trace_id: int, root, head_sampled: bool, error: bool, early: bool):
        """(kept, reason, tail_only) for a trace."""
        if head_sampled:
            return True, "head", False
        if early:
            return False, "early", False
        if error:
            return True, "error", True
        if root is not None and self._latency_ns is not None and root.end_time is not None and root.start_time is not None:
            if root.end_time - root.start_time >= self._latency_ns and self._latency_threshold is not None:
                if (trace_id & _RANDOMNESS_MASK) >= self._latency_threshold:
                    return True, "latency", True
        if root is not None and self._rules is not None:
            verdict = self._rules.explain(root.name, root.attributes, kind=root.kind, root=root.parent is None)
            if verdict["action"] == "keep":
                return True, f"rule:{verdict['rule']}", True
        return False, "dropped", False

    def _collect(self, everything: bool = False) -> None:
        """Decide what the buffer has ready (or everything), queue what is kept."""
        buffer = self._buffer
        early = buffer.take_early()
        due = buffer.take_all() if everything else buffer.take_due(self._wait, self._timeout)
        passing = buffer.take_queue()
        with self._lock:
            for trace_id, spans, root, head, error in early:
                self._finish(trace_id, spans, root, head, error, early=True)
            for trace_id, spans, root, head, error in due:
                self._finish(trace_id, spans, root, head, error, early=False)
            self._enqueue([(span, "late" if late else "head", None, False) for span, late in passing])

    def _finish(self, trace_id: int, spans, root, head: bool, error: bool, early: bool) -> None:
        """Record one trace's decision and queue its spans when kept (lock held)."""
        kept, reason, tail_only = self._decide(trace_id, root, head, error, early)
        self._buffer.remember(trace_id, kept)
        if kept:
            self._counts[f"kept_{reason.split(':')[0]}"] += 1
            self._counts["spans_kept"] += len(spans)
            weight = 1.0 / self._latency_probability if reason == "latency" else (1.0 if tail_only else None)
            self._enqueue([(span, reason, weight, tail_only) for span in spans])
        else:
            self._counts["traces_dropped"] += 1
            self._counts["spans_dropped"] += len(spans)

    def _mark(self, span: ReadableSpan, reason: str, weight: Optional[float], tail_only: bool = False) -> ReadableSpan:
        """A copy of the span that says why it was kept (and is flagged sampled).
        Head-kept spans go out as they are: their ``th`` already gives the
        adjusted count, and copying every span would cost more than sampling it."""
        if reason == "head":
            return span
        attributes = dict(span.attributes or {})
        attributes[REASON] = reason
        th = threshold_of(span)
        count = weight if weight is not None else (None if th is None else _core.adjusted_count(th))
        if count is not None:
            attributes[ADJUSTED_COUNT] = count
        if tail_only:
            attributes[TAIL_KEPT] = True
        context = span.context
        if not context.trace_flags.sampled:
            context = SpanContext(
                context.trace_id,
                context.span_id,
                context.is_remote,
                TraceFlags(context.trace_flags | TraceFlags.SAMPLED),
                context.trace_state,
            )
        return ReadableSpan(
            name=span.name,
            context=context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _enqueue(self, spans: List[tuple]) -> None:
        """Queue (span, reason, adjusted count, tail only) entries; copies are made on export."""
        room = self._max_queue - len(self._queue)
        if room < len(spans):
            self._counts["queue_full_dropped"] += len(spans) - max(room, 0)
            spans = spans[: max(room, 0)]
        self._queue.extend(spans)

    # -- background ----------------------------------------------------------------

    def _run(self) -> None:
        tick = max(0.01, min(self._wait, self._delay) / 4 or 0.05)
        last_export = time.monotonic()
        while not self._stopped:
            self._wake.wait(tick)
            self._wake.clear()
            if self._stopped:
                return
            self._collect()
            if len(self._queue) >= self._batch or (self._queue and time.monotonic() - last_export >= self._delay):
                while self._queue:
                    self._export_batch()
                last_export = time.monotonic()

    def _decide_due(self) -> None:
        """Decide the traces that are due now (the worker does this every tick)."""
        self._collect()

    def _export_batch(self) -> None:
        with self._export_lock:
            entries: List[tuple] = []
            with self._lock:
                while self._queue and len(entries) < self._batch:
                    entries.append(self._queue.popleft())
            if not entries:
                return
            batch = [self._mark(*entry) for entry in entries]
            try:
                result = self._exporter.export(batch)
            except Exception:  # an exporter must not kill the worker; the loss is counted
                _logger.exception("tracesieve: tail exporter raised; %d spans lost", len(batch))
                result = SpanExportResult.FAILURE
            with self._lock:
                if result is SpanExportResult.SUCCESS:
                    self._counts["spans_exported"] += len(batch)
                else:
                    self._counts["spans_export_failed"] += len(batch)

    def stats(self) -> Dict[str, int]:
        """Buffered traces and spans, traces kept by reason, spans dropped, traces
        decided early at a limit, late spans, export outcomes. Every span ended is
        kept, dropped, still buffered, or counted as lost."""
        (ended, head_kept, late_kept, late_dropped, evicted, unreadable, traces, spans, queued, decisions, early) = self._buffer.counts()
        with self._lock:
            stats = dict(self._counts)
            stats["spans_queued"] = len(self._queue) + queued
        stats.update(
            spans_ended=ended,
            spans_kept=stats.get("spans_kept", 0) + head_kept,
            late_kept=late_kept,
            late_dropped=late_dropped,
            evicted_early=evicted,
            unreadable_spans=unreadable,
            traces_buffered=traces,
            spans_buffered=spans + early,
            decisions_remembered=decisions,
        )
        stats.setdefault("spans_dropped", 0)
        return stats
