"""Tail decisions in-process: buffer each trace's ended spans, decide when its
local root ends (plus a wait for stragglers) or on a timeout, and export kept
traces in batches on a background thread.

``on_end`` is native and never waits: it files the span under a short lock.
Every cap (traces, spans per trace, remembered decisions, the export queue)
holds natively whatever the exporter does; at a limit a trace is decided
early and a full queue drops, and both are counted. Only the worker thread
calls the exporter, so a hung exporter stalls the worker, never the caller:
``force_flush`` and ``shutdown`` return within their timeouts and count what
they leave behind. The worker starts again in a forked child.

With ``share=<redis URL>``, services share their decisions, not their spans:
a trace this process keeps (an error the moment its span ends, a slow root or
a rule the moment the root ends) is announced through the fleet's Redis
stream (``tracesieve.sharing``), and every service keeps its own spans of any
trace another one announced.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from tracesieve import _core, sharing
from tracesieve._checks import batch_setting, check_exporter, check_meter_provider, check_tail_rules
from tracesieve._scrub import scrubbed_logger
from tracesieve._tail_worker import Batch, TailWorker, check_budget, check_worker_options, share_target
from tracesieve.estimate import ADJUSTED_COUNT, threshold_of

__all__ = ["ADJUSTED_COUNT", "LATE", "REASON", "TAIL_KEPT", "TailSamplingProcessor"]

_logger = scrubbed_logger("tracesieve.tail")

REASON = "tracesieve.tail.reason"
TAIL_KEPT = "tracesieve.tail.kept"
LATE = "tracesieve.tail.late"
_RANDOMNESS_MASK = (1 << 56) - 1
#: Native buffers a forked child stopped using: never freed, as the parent's
#: threads may have been inside them when the process forked.
_ABANDONED: List[Any] = []


class TailSamplingProcessor(TailWorker, SpanProcessor):
    """Keeps whole traces that matter, decided after their spans end.

    A trace is kept if its head decision kept it, if any span has an error
    (status ERROR or an exception event), if the local root's duration reaches
    ``latency_threshold`` seconds (kept with ``latency_probability``, decided
    consistently from the trace id), or if one of ``rules`` matches the local
    root (the ``RuleSampler`` conditions, seeing the root's final attributes).
    Use a head sampler with ``defer=True`` so dropped spans are recorded and
    can still be kept here. Spans of traces only the head kept are exported
    unchanged (their ``th`` gives the adjusted count); every span of a trace
    the tail kept, late ones and head-sampled ones included, carries
    ``tracesieve.tail.reason`` (error, latency, rule:<name>, or shared:<why>
    when another service announced the trace), ``tracesieve.adjusted_count``
    (1 / the likeliest way such a trace is kept: 1 for errors and rules) and
    ``tracesieve.tail.kept``; spans that ended after their trace was decided
    also carry ``tracesieve.tail.late``.

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
        max_traces: traces buffered at most; at the limit the oldest is decided
            early (kept if its head kept it or it has an error).
        max_spans_per_trace: spans buffered per trace at most.
        decision_cache_size: decisions remembered for late spans.
        max_queue_size: kept spans waiting for export at most; beyond it they
            are dropped and counted as ``queue_full_dropped`` (default:
            ``OTEL_BSP_MAX_QUEUE_SIZE`` when set, else 100,000).
        max_export_batch_size: spans per ``export`` call (default:
            ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` when set, else 512).
        schedule_delay: seconds between exports of a partial batch (default:
            ``OTEL_BSP_SCHEDULE_DELAY`` milliseconds when set, else 1.0).
        shutdown_timeout: seconds ``shutdown`` waits for the last exports.
        share: a Redis URL (``redis://host:6379/0#fleet``, as for stores) through
            which the services of a fleet share their tail decisions (None: this
            process decides alone). Needs ``tracesieve[redis]``. A
            ``tracesieve.sharing.LocalExchange`` shares between processors of
            one process instead (simulations, tests).
        share_interval: seconds between sends and reads of announcements (the
            longest an announcement waits before it is sent).
        share_ttl: seconds an announcement heard from another service keeps
            that trace's spans here (late ones included).
        budget: a ``BudgetSampler`` (or a pipeline with a budget stage): every
            trace this processor keeps for an error, a latency, a rule or
            another service's announcement spends that budget, all its spans
            or none (the head's keeps spent it already). The budget paces its
            head sample around what the tail is expected to need.
        budget_priorities: who comes first when the allowance cannot cover
            every tail keep (default errors, then latency, then rules; the
            head sample comes after them all): a kind never takes what the
            kinds before it are expected to need. Refusals are counted per
            kind (``budget_refused_error`` and so on).
        budget_exempt: kinds kept whatever the budget says (counted all the
            same, so the report says how far over the budget they went).
        clock: callable returning seconds (monotonic), for tests.
        meter_provider: export ``stats()`` as the OTel metric ``tracesieve.tail``
            (default: the global MeterProvider, also one set later).
        start: start the worker thread that decides and exports (default);
            False leaves that to ``step()`` (simulations).
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
        max_queue_size: Optional[int] = None,
        max_export_batch_size: Optional[int] = None,
        schedule_delay: Optional[float] = None,
        shutdown_timeout: float = 10.0,
        share: Union[str, sharing.LocalExchange, None] = None,
        share_interval: float = 0.05,
        share_ttl: float = 60.0,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
        budget: Any = None,
        budget_priorities: Sequence[str] = ("error", "latency", "rule"),
        budget_exempt: Sequence[str] = (),
        start: bool = True,
    ):
        self._exporter = check_exporter(exporter)
        check_meter_provider(meter_provider)
        budget = check_budget(budget)
        target = share_target(share, share_interval)
        rules = check_tail_rules(rules)
        # Every setting is checked natively; kept to build a fresh buffer in a forked child.
        self._buffer_settings: Dict[str, Any] = {
            "decision_wait": decision_wait,
            "trace_timeout": trace_timeout,
            "latency_threshold": latency_threshold,
            "latency_probability": latency_probability,
            "max_traces": max_traces,
            "max_spans_per_trace": max_spans_per_trace,
            "decision_cache_size": decision_cache_size,
            "max_queue_size": batch_setting("max_queue_size", max_queue_size, 100_000),
            "max_export_batch_size": batch_setting("max_export_batch_size", max_export_batch_size, 512),
            "schedule_delay": batch_setting("schedule_delay", schedule_delay, 1.0),
            "share_ttl": share_ttl if share is not None else None,
            # Roots are judged as they end only when a latency or a rule can keep a trace.
            "judge_roots": latency_threshold is not None or bool(rules),
            "clock": clock,
        }
        self._buffer = _core.NativeTailBuffer(**self._buffer_settings)
        settings = self._buffer.settings
        latency, self._latency_probability = settings[2], settings[3]
        self._latency_ns = None if latency is None else latency * 1e9
        self._latency_threshold = None if self._latency_probability <= 0 else _core.threshold_for_probability(self._latency_probability)
        self._rules = None
        if rules:
            from tracesieve.samplers import RuleSampler

            self._rules = RuleSampler(rules, default_rate=0.0)
        options = check_worker_options(self._buffer, budget, shutdown_timeout, budget_priorities, budget_exempt, start)
        self._bind_on_end()
        self._start_worker(
            name="tracesieve-tail",
            settings=settings,
            share=share,
            target=target,
            share_interval=share_interval,
            share_ttl=share_ttl,
            judging=self._buffer_settings["judge_roots"],
            budget=budget,
            options=options,
        )
        from tracesieve.metrics import observe_stats

        observe_stats(
            self, "tracesieve.tail", "Tail sampling: spans ended, kept, dropped, buffered, evicted early, late, exported", meter_provider
        )

    def _bind_on_end(self) -> None:
        # The hot path: the SDK calls the native method directly.
        self.on_end = self._buffer.on_end  # type: ignore[method-assign]

    def _after_fork(self) -> None:
        # The parent's buffered and queued spans are the parent's to export; the
        # child starts empty, with locks no parent thread can be holding.
        _ABANDONED.append(self._buffer)
        self._buffer = _core.NativeTailBuffer(**self._buffer_settings)
        self._budget_native = None
        self._attach_budget()
        self._fresh_worker_state()
        if self._shut:  # shut down before the fork: shut down in the child too
            self._buffer.close()
        self._bind_on_end()

    # -- SpanProcessor -------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        # Only reached through the class; instances use the native method bound in __init__.
        self._buffer.on_end(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Decide every pending trace now and export everything queued,
        including a batch already inside ``export``. True when that finished
        within the timeout; False otherwise (the work goes on in the background)."""
        return self._flush_tail(timeout_millis)

    def shutdown(self) -> None:
        """Flush for at most ``shutdown_timeout`` seconds, stop the worker and
        shut the exporter down; spans left undecided, queued or inside an
        export that did not return are counted in ``spans_lost_at_shutdown``."""
        if self._shut:
            return
        self._shut = True
        deadline = self._stop_tail()
        _shutdown_within(self._exporter, max(0.0, deadline - time.monotonic()))

    # -- decisions -----------------------------------------------------------------

    def _root_verdict(self, trace_id: int, root: ReadableSpan) -> Tuple[Optional[str], float]:
        """(reason or None, adjusted count) of a keep decided on the local root
        alone: slow (kept with ``latency_probability``) or matching a rule."""
        if self._latency_ns is not None and root.end_time is not None and root.start_time is not None:
            if root.end_time - root.start_time >= self._latency_ns and self._latency_threshold is not None:
                if (trace_id & _RANDOMNESS_MASK) >= self._latency_threshold:
                    return "latency", 1.0 / self._latency_probability
        if self._rules is not None:
            verdict = self._rules.explain(root.name, root.attributes, kind=root.kind, root=root.parent is None)
            if verdict["action"] == "keep":
                return f"rule:{verdict['rule']}", 1.0
        return None, 0.0

    def _verdict(self, due: Tuple[Any, ...]) -> Tuple[Optional[str], float]:
        """(reason or None to drop, adjusted count of its spans) for a due trace.

        The adjusted count is 1 over the likeliest way the trace is kept: an
        error or a rule keeps it surely (1); a latency keep at probability q
        and a head keep at p, drawn from the same trace-id randomness, keep it
        with max(p, q). A keep another service announced counts the same way.
        """
        trace_id, spans, root, head, error, keep, judged = due
        if error:
            return "error", 1.0
        if keep is None and root is not None and not judged:
            reason, weight = self._root_verdict(trace_id, root)
            keep = None if reason is None else (reason, weight)
        if keep is not None:
            reason, weight = keep
            if head and weight > 1.0:
                th = threshold_of(spans[0])
                if th is not None:
                    weight = min(weight, _core.adjusted_count(th))
            return reason, weight
        return ("head", 0.0) if head else (None, 0.0)

    def _judge_roots(self) -> None:
        """Judge the local roots that just ended, so a keep is known (and
        announced) at once rather than when the trace is due."""
        buffer = self._buffer
        for trace_id, root in buffer.take_fresh_roots():
            reason, weight = self._root_verdict(trace_id, root)
            if reason is not None:
                buffer.keep(trace_id, reason, weight)

    def _decide(self, everything: bool) -> None:
        """Judge the roots that just ended, then decide the traces that are due
        (or all of them) and queue what is kept."""
        buffer = self._buffer
        self._attach_budget()
        self._judge_roots()
        due = buffer.take_all() if everything else buffer.take_due(self._wait, self._timeout)
        for item in due:
            reason, weight = self._verdict(item)
            settled = buffer.settle(item[0], item[1], reason, weight, item[3])
            if reason is not None and settled == "kept":
                with self._lock:
                    self._counts[f"kept_{reason.split(':')[0]}"] += 1

    # -- export --------------------------------------------------------------------

    def _deliver(self, batch: Batch) -> bool:
        spans = [self._mark(span, reason, weight, late) for span, reason, weight, late in batch]
        return self._exporter.export(spans) is SpanExportResult.SUCCESS

    def _mark(self, span: ReadableSpan, reason: Optional[str], weight: float, late: bool) -> ReadableSpan:
        """A copy of the span that says why it was kept (and is flagged sampled).
        Head-kept spans go out as they are: their ``th`` already gives the
        adjusted count, and copying every span would cost more than sampling it."""
        if reason is None:
            return span
        attributes = dict(span.attributes or {})
        attributes[REASON] = reason
        attributes[ADJUSTED_COUNT] = weight
        attributes[TAIL_KEPT] = True
        if late:
            attributes[LATE] = True
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

    def stats(self) -> Dict[str, int]:
        """Every span ended is accounted for:

        - ``spans_ended = spans_buffered + spans_kept + spans_dropped + late_dropped + lost_undecided
          + spans_after_shutdown``;
        - ``spans_kept = spans_queued + queue_full_dropped + spans_exported + spans_export_failed
          + spans_in_flight + lost_unexported``;

        plus traces kept by reason (``kept_head``, ``kept_error``,
        ``kept_shared``, ...), traces decided early at a memory limit, spans
        that could not be read, and with sharing: traces announced, heard,
        heard too late (spans already dropped: ``decision_wait`` is short),
        announcements dropped at the outbox's cap, and the link's calls.
        """
        return self._tail_stats()


def _shutdown_within(exporter: SpanExporter, seconds: float) -> None:
    """Call ``exporter.shutdown()``, waiting at most ``seconds`` for it (a hung
    exporter must not hang the application's exit)."""
    done = threading.Thread(target=_quietly, args=(exporter.shutdown,), name="tracesieve-exporter-shutdown", daemon=True)
    done.start()
    done.join(seconds)


def _quietly(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:
        _logger.exception("tracesieve: the exporter's shutdown raised")
