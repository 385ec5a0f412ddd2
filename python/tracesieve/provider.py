"""``tracesieve.TracerProvider``: the SDK's provider with native spans and tail
decisions. Its tracers record spans into compact native records; a trace the
tail keeps is replayed as the SDK's own spans into the span processors, a
dropped one never becomes Python objects and stays retained, byte-bounded, in
case a keep comes after the fact (``capture``, or another service's
announcement)."""

from __future__ import annotations

import difflib
import os
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union, cast

from opentelemetry import trace as trace_api
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope

from tracesieve import _core, _spans, sharing
from tracesieve._checks import check_flag, check_meter_provider, check_tail_rules
from tracesieve._redis import Secret
from tracesieve._redis import check as check_redis_url
from tracesieve._scrub import scrubbed_logger
from tracesieve._tail_worker import Batch, TailWorker, check_budget, check_worker_options, flush_seconds, share_target
from tracesieve._trace_ids import parse_trace_id
from tracesieve.adaptive import ErrorWindowProcessor
from tracesieve.config import Source, TailSection, load_config, source_path
from tracesieve.estimate import ADJUSTED_COUNT
from tracesieve.record import naming
from tracesieve.tail import LATE, REASON, TAIL_KEPT

__all__ = ["Capture", "TracerProvider"]

_logger = scrubbed_logger("tracesieve.provider")
#: What the SDK calls on a span processor (``_on_ending`` in the SDKs that have it).
_PROCESSOR_METHODS = ("on_start", "on_end", "shutdown", "force_flush") + (
    ("_on_ending",) if hasattr(sdk_trace.SpanProcessor, "_on_ending") else ()
)
_RETENTION_DEFAULT = 64 << 20

trace_api.Span.register(_core.NativeSpan)
trace_api.Span.register(_core.NativeNonRecordingSpan)
trace_api.Tracer.register(_core.NativeTracer)


#: The ``tail`` section's settings: this provider's keywords past the SDK's.
TAIL_SETTINGS = tuple(TailSection.__annotations__)
#: The stages of a pipeline document (any of them makes the head sampler a pipeline), as the parser knows them.
STAGES = tuple(_core.pipeline_stages())


def tail_settings(document: Mapping[str, Any], where: str = "") -> Dict[str, Any]:
    """A document's ``tail`` section as this provider's keyword arguments, every key checked."""
    tail = document.get("tail") or {}
    if not isinstance(tail, Mapping):
        raise _core.ConfigError(f"{where}tail: expected a mapping of tail settings, got {type(tail).__name__}")
    settings: Dict[str, Any] = {}
    for key, value in tail.items():
        if key not in TAIL_SETTINGS:
            close = difflib.get_close_matches(str(key), TAIL_SETTINGS, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise _core.ConfigError(f"{where}tail.{key}: unknown tail setting{hint}; expected {', '.join(TAIL_SETTINGS)}")
        settings[key] = value
    return settings


def check_tail_section(document: Mapping[str, Any], where: str = "") -> None:
    """Every check ``TracerProvider.from_config`` makes of a document's
    ``tail`` section, with nothing started and no Redis reached (for ``tracesieve check``)."""
    settings = tail_settings(document, where)
    share = settings.pop("share", None)
    try:
        target = share_target(share, settings.get("share_interval", 0.05))
        if target is not None:
            # The options the Redis client takes, as joining the link checks them (connecting to nothing).
            check_redis_url(Secret(target[0]), target[1], "share")
        TracerProvider(**settings, start=False, shutdown_on_exit=False).shutdown()
    except _core.ConfigError as error:
        raise _core.ConfigError(f"{where}tail.{error}") from None


class Capture(NamedTuple):
    """What ``TracerProvider.capture`` did.

    ``status``: "retained" (the trace's retained spans are being exported:
    ``spans`` of them), "pending" (still being decided: it will be kept, as
    the budget allows), "kept" (kept already), "beyond_horizon" (nothing
    retained: the trace is older than the retention horizon, or unknown here;
    spans of it that end from now on are kept), or "refused" (``spans`` of it
    are retained, but the budget has no room for them: they stay retained,
    and a capture once there is room keeps them). With sharing on, the fleet
    is told too.
    """

    status: str
    spans: int


def _check_sdk_arguments(
    sampler: Any, resource: Any, shutdown_on_exit: Any, active_span_processor: Any, id_generator: Any, span_limits: Any, meter_provider: Any
) -> None:
    """The SDK provider's own arguments: it takes any value and fails later, at span time
    (an id generator that is a string raises from ``start_span``), so they are checked here.
    Only types are named: a wrong value may be a URL with a password in it."""
    from opentelemetry.sdk.resources import Resource

    def needs(name: str, value: Any, what: str, methods: Sequence[str]) -> None:
        missing = [method for method in methods if not callable(getattr(value, method, None))]
        if value is not None and missing:
            raise _core.ConfigError(f"{name}: expected {what}, got {type(value).__name__} (no {missing[0]}())")

    needs("sampler", sampler, "an OpenTelemetry Sampler", ("should_sample", "get_description"))
    needs(
        "active_span_processor", active_span_processor, "a multi-span processor", ("on_start", "on_end", "shutdown", "add_span_processor")
    )
    needs("id_generator", id_generator, "an IdGenerator", ("generate_span_id", "generate_trace_id"))
    if resource is not None and not isinstance(resource, Resource):
        raise _core.ConfigError(f"resource: expected an opentelemetry.sdk.resources.Resource, got {type(resource).__name__}")
    if span_limits is not None and not isinstance(span_limits, SpanLimits):
        raise _core.ConfigError(f"span_limits: expected an opentelemetry.sdk.trace.SpanLimits, got {type(span_limits).__name__}")
    check_flag("shutdown_on_exit", shutdown_on_exit)
    check_meter_provider(meter_provider)


def _sampler_from_environment() -> Optional[Any]:
    """The sampler ``OTEL_TRACES_SAMPLER`` names when that is a package's
    (tracesieve's own, or another's), built through its entry point with
    ``OTEL_TRACES_SAMPLER_ARG`` as the SDK's configurator builds it: the SDK's
    provider knows only its six names, and keeps every trace for any other.
    None for those six, or for no name: the SDK reads them. A name no package
    provides, or a factory that fails, is logged as an error and gives the
    fallback sampler rather than every trace."""
    from opentelemetry.sdk.trace.sampling import _KNOWN_SAMPLERS
    from opentelemetry.util._importlib_metadata import entry_points

    from tracesieve._checks import FALLBACK_VARIABLE, fallback_rate
    from tracesieve.samplers import ProbabilitySampler

    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    if not name or name.lower() in _KNOWN_SAMPLERS:
        return None
    try:
        found = list(entry_points(group="opentelemetry_traces_sampler", name=name))
        if not found:
            raise ValueError(f"no installed package provides a sampler of that name; the SDK's own are {', '.join(_KNOWN_SAMPLERS)}")
        sampler = found[0].load()(os.environ.get("OTEL_TRACES_SAMPLER_ARG"))
        _check_sdk_arguments(sampler, None, True, None, None, None, None)
        return sampler
    except Exception as error:  # whatever a package's factory raises: logged, and never every trace
        rate = fallback_rate()
        _logger.error(
            "tracesieve: OTEL_TRACES_SAMPLER=%s gives no sampler (%s: %s); sampling %g%% of traces (%s) until it is fixed",
            name,
            type(error).__name__,
            error,
            rate * 100,
            FALLBACK_VARIABLE,
        )
        return ProbabilitySampler(rate, defer=True)


def _has_budget(sampler: Any) -> bool:
    """Whether ``sampler`` paces a budget (a ``BudgetSampler``, or a pipeline with a budget stage)."""
    from tracesieve.budget import BudgetSampler
    from tracesieve.pipeline import PipelineSampler, stage

    if isinstance(sampler, BudgetSampler):
        return True
    return isinstance(sampler, PipelineSampler) and stage(sampler.resolved, "budget") is not None


def _limits_tuple(limits: SpanLimits) -> Tuple[Optional[int], ...]:
    return (
        limits.max_span_attributes,
        limits.max_events,
        limits.max_links,
        limits.max_event_attributes,
        limits.max_link_attributes,
        limits.max_span_attribute_length,
        limits.max_attribute_length,
    )


class TracerProvider(TailWorker, sdk_trace.TracerProvider):
    """The SDK's ``TracerProvider``, whose spans are native and whose traces
    are kept whole by tail decisions, for about the price of head sampling.

    Spans implement the whole ``opentelemetry.trace.Span`` API with the SDK's
    rules (``SpanLimits`` and the ``OTEL_*_LIMIT`` variables, status
    precedence, warnings) and record into native storage. When a trace is
    decided (its local root ended ``decision_wait`` seconds ago, or
    ``trace_timeout`` passed), it is kept if the sampler sampled it (the
    head's keep), if any span has an error, if its local root is slow
    (``latency_threshold``) or matches one of ``rules``, or if another
    service announced it (``share``). A kept trace is replayed into the SDK's
    own ``_Span`` objects: for each span, in the order they ended, every span
    processor added with ``add_span_processor`` sees ``on_start`` (with the
    span's parent and baggage in the context) and then ``on_end``; the
    exporter receives exactly what the SDK's provider would have given it,
    plus the tail's marks on traces only the tail kept (as
    ``TailSamplingProcessor`` sets them). A dropped trace is retained in a
    ring of ``retention_bytes`` so that ``capture(trace_id)`` or an
    announcement can still keep it, whole, later.

    Use a sampler that records what it does not keep, such as
    ``ProbabilitySampler(0.01, defer=True)``: spans it does not record
    (``DROP``) cost nothing and can never be kept. With ``budget`` (or a
    budget sampler as the sampler), every tail keep spends the budget.

    ``sampler``, ``resource``, ``shutdown_on_exit``, ``active_span_processor``,
    ``id_generator``, ``span_limits`` and ``meter_provider`` are the SDK
    provider's; ``decision_wait``, ``trace_timeout``, ``latency_threshold``,
    ``latency_probability``, ``rules``, ``max_traces``, ``max_spans_per_trace``,
    ``decision_cache_size``, ``share``, ``share_interval``, ``share_ttl``,
    ``budget_priorities`` and ``budget_exempt`` are ``TailSamplingProcessor``'s.

    Args:
        max_queue_size: kept spans waiting to be replayed at most (beyond it
            they are dropped and counted as ``queue_full_dropped``).
        max_export_batch_size: spans replayed per batch.
        schedule_delay: seconds between replays of a partial batch.
        shutdown_timeout: seconds ``shutdown`` waits for the last replays
            before shutting the span processors down.
        budget: a ``BudgetSampler`` (or a pipeline with a budget stage) whose
            budget the tail's keeps spend; by default the sampler, when it has
            a budget.
        retention_bytes: memory for the spans of dropped traces, kept for
            keeps after the fact (0: none). Oldest out first, counted in
            ``retention_evicted``.
        clock: callable returning monotonic seconds (tests, simulations).
        start: start the worker thread that decides and replays (default);
            False leaves that to ``step()``.
    """

    def __init__(
        self,
        sampler: Optional[Any] = None,
        resource: Optional[Any] = None,
        shutdown_on_exit: bool = True,
        active_span_processor: Optional[Any] = None,
        id_generator: Optional[Any] = None,
        span_limits: Optional[SpanLimits] = None,
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
        shutdown_timeout: float = 10.0,
        share: Union[str, sharing.LocalExchange, None] = None,
        share_interval: float = 0.05,
        share_ttl: float = 60.0,
        budget: Any = None,
        budget_priorities: Sequence[str] = ("error", "latency", "rule"),
        budget_exempt: Sequence[str] = (),
        retention_bytes: int = _RETENTION_DEFAULT,
        clock: Optional[Callable[[], float]] = None,
        start: bool = True,
        **sdk_options: Any,
    ):
        # Everything is checked before the SDK's provider registers its exit handler.
        _check_sdk_arguments(
            sampler, resource, shutdown_on_exit, active_span_processor, id_generator, span_limits, sdk_options.get("meter_provider")
        )
        limits = span_limits or SpanLimits()
        keep_rules = check_tail_rules(rules)
        target = share_target(share, share_interval)
        self._recorder = _core.NativeRecorder(
            decision_wait=decision_wait,
            trace_timeout=trace_timeout,
            latency_threshold=latency_threshold,
            latency_probability=latency_probability,
            rules=keep_rules or None,
            max_traces=max_traces,
            max_spans_per_trace=max_spans_per_trace,
            decision_cache_size=decision_cache_size,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay=schedule_delay,
            share_ttl=share_ttl if share is not None else None,
            retention_bytes=retention_bytes,
            span_limits=_limits_tuple(limits),
            clock=clock,
        )
        if sampler is None:
            sampler = _sampler_from_environment()
        if budget is None and _has_budget(sampler):
            budget = sampler
        budget = check_budget(budget)
        options = check_worker_options(self._recorder, budget, shutdown_timeout, budget_priorities, budget_exempt, start)
        super().__init__(sampler, resource, shutdown_on_exit, active_span_processor, id_generator, limits, **sdk_options)
        self._buffer = self._recorder
        self._scopes: List[Tuple[InstrumentationInfo, InstrumentationScope]] = []
        self._native_tracers: Dict[InstrumentationScope, trace_api.Tracer] = {}
        self._native_lock = threading.Lock()
        signals = getattr(sampler, "processor", None)
        if isinstance(signals, ErrorWindowProcessor):
            self._recorder.feed_signals(signals._native)
        self._start_worker(
            name="tracesieve-provider",
            settings=self._recorder.settings,
            share=share,
            target=target,
            share_interval=share_interval,
            share_ttl=share_ttl,
            judging=latency_threshold is not None or bool(keep_rules),
            budget=budget,
            options=options,
        )
        from tracesieve.metrics import observe_stats

        observe_stats(
            self,
            "tracesieve.provider",
            "Native span recording: spans recorded, kept, dropped, retained, captured, exported",
            sdk_options.get("meter_provider"),
        )

    @classmethod
    def from_config(cls, source: Source, **options: Any) -> TracerProvider:
        """A provider from a tracesieve document (a dict or a TOML / YAML /
        JSON file): its stages are the head sampler (a ``PipelineSampler``,
        recording what it drops unless ``defer = false``; with no stage, the
        SDK's sampler from ``OTEL_TRACES_SAMPLER``) and its ``tail`` section
        the tail and retention settings. A mistyped stage is an error, never a
        document with no stage, and an OpenTelemetry configuration file is
        refused (its processors are the SDK's). ``options``: the SDK provider's
        arguments (``resource``, ``span_limits``, ...), overriding the document.
        Every mistake is a ``ConfigError`` naming the file, the key and what is
        valid."""
        from tracesieve.declarative import is_otel_config
        from tracesieve.pipeline import PipelineSampler, build

        where = "" if isinstance(source, Mapping) else f"{source_path(source)}: "
        document = load_config(source)
        if is_otel_config(document):
            # Its processors and exporters are the SDK's to build: taking its sampler alone would drop them.
            raise _core.ConfigError(
                f"{where}an OpenTelemetry configuration file (file_format, tracer_provider), not a tracesieve document; "
                "let the SDK read it (OTEL_CONFIG_FILE, see docs/declarative.md), or build its sampler with "
                "tracesieve.from_config and give it to a TracerProvider"
            )
        if any(key != "tail" for key in document) and not any(key in STAGES for key in document):
            # No stage but other keys: settings or a mistyped stage, checked as a pipeline would check
            # them (a document with no stage builds nothing stateful), never passed over for the SDK's sampler.
            build(document, where=where)
        settings = tail_settings(document, where)
        if any(key in STAGES for key in document):
            # A budget's record goes under the service the resource names, as the spans do.
            service = naming(getattr(options.get("resource"), "attributes", {}).get("service.name"))
            options.setdefault("sampler", PipelineSampler(source, service_name=service))
        try:
            return cls(**{**settings, **options})
        except _core.ConfigError as error:
            raise _core.ConfigError(f"{where}tail.{error}") from None

    def add_span_processor(self, span_processor: Any) -> None:
        """Add a span processor: it sees each span of every kept trace
        (``on_start``, then ``on_end``). An ``ErrorWindowProcessor`` is fed
        natively instead, every recorded span as it ends, kept or not."""
        if isinstance(span_processor, ErrorWindowProcessor):
            self._recorder.feed_signals(span_processor._native)
            return
        # The SDK's provider takes anything here and fails later, at span time or shutdown
        # (newer SDKs also call _on_ending, which only SpanProcessor subclasses have).
        missing = [name for name in _PROCESSOR_METHODS if not callable(getattr(span_processor, name, None))]
        if missing:
            raise _core.ConfigError(
                f"span_processor: expected a SpanProcessor, got {type(span_processor).__name__} (no {missing[0]}(); "
                "subclass opentelemetry.sdk.trace.SpanProcessor)"
            )
        super().add_span_processor(span_processor)

    # -- tracers -------------------------------------------------------------------

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: Optional[str] = None,
        schema_url: Optional[str] = None,
        attributes: Any = None,
    ) -> trace_api.Tracer:
        """A tracer whose spans are native (one per instrumentation scope)."""
        if self._disabled:
            return trace_api.NoOpTracer()
        if not instrumenting_module_name:
            instrumenting_module_name = ""
            sdk_trace.logger.error("get_tracer called with missing module name.")
        version = instrumenting_library_version or ""
        scope = InstrumentationScope(instrumenting_module_name, version, schema_url, attributes)
        configure = getattr(self, "_apply_tracer_configurator", None)
        if configure is not None and not getattr(configure(scope), "is_enabled", True):
            # A tracer the configurator turned off: the SDK's, which records nothing.
            return super().get_tracer(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        with self._native_lock:
            tracer = self._native_tracers.get(scope)
            if tracer is None:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    info = InstrumentationInfo(instrumenting_module_name, version, schema_url)
                self._scopes.append((info, scope))
                generator = self.id_generator
                native_ids = type(generator) is RandomIdGenerator
                random_flag = 0
                if getattr(generator, "is_trace_id_random", lambda: False)():
                    random_flag = int(getattr(trace_api.TraceFlags, "RANDOM_TRACE_ID", 0))
                native = self._recorder.tracer(self.sampler, len(self._scopes) - 1, None if native_ids else generator, random_flag)
                tracer = cast(trace_api.Tracer, native)  # registered as a Tracer above
                self._native_tracers[scope] = tracer
        return tracer

    # -- keeping after the fact ----------------------------------------------------

    def capture(self, trace_id: Union[int, str]) -> Capture:
        """Keep a trace after the fact ("this customer just reported a
        problem"): every span of it still retained is exported, whole, as are
        its spans still to end; see ``Capture`` for what the answer means.
        ``trace_id``: the trace id as an int, 32 hexadecimal digits (as logs
        show it), a traceparent or an X-Ray trace id."""
        status, spans = self._recorder.capture(parse_trace_id(trace_id))
        if status == "retained" and not self._stepped:
            self._worker.wake()
        return Capture(status, spans)

    # -- the tail worker's part ----------------------------------------------------

    def _judge_roots(self) -> None:
        self._recorder.judge_roots()

    def _decide(self, everything: bool) -> None:
        self._attach_budget()
        self._recorder.decide(everything)

    def _drop_undecided(self) -> int:
        return int(self._recorder.drop_buffered())

    def _deliver(self, batch: Batch) -> bool:
        scopes, limits, failed = self._scopes, self._span_limits, 0
        for record, reason, weight, late in batch:
            marks: Optional[Dict[str, Any]] = None
            if reason is not None:
                marks = {REASON: reason, ADJUSTED_COUNT: weight, TAIL_KEPT: True}
                if late:
                    marks[LATE] = True
            try:
                _spans.replay(record, marks, self, scopes, limits)
            except BaseException as error:  # a processor's error must not stop the others' spans
                if not isinstance(error, Exception) and not self._worker.is_current():
                    raise  # Ctrl-C and exits in the application's own thread (start=False) go through
                failed += 1
                _logger.exception("tracesieve: a span processor raised on a replayed span")
        return failed == 0

    def _after_fork(self) -> None:
        # The parent's buffered and retained spans are the parent's to export;
        # the child records into a fresh engine, with fresh locks.
        self._recorder.reset()
        self._native_lock = threading.Lock()
        self._budget_native = None
        self._attach_budget()
        self._fresh_worker_state()
        if self._shut:  # shut down before the fork: shut down in the child too
            self._recorder.close()

    # -- the SDK's provider --------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Decide every pending trace now, replay every kept span into the
        span processors, then flush them, all within the timeout."""
        seconds = flush_seconds(timeout_millis)
        deadline = time.monotonic() + seconds
        ours = self._flush_tail(seconds * 1000)
        left = max(0, int((deadline - time.monotonic()) * 1000))
        return super().force_flush(left) and ours

    def shutdown(self) -> None:
        """Replay what is pending for at most ``shutdown_timeout`` seconds
        (what is left is counted in ``spans_lost_at_shutdown``), then shut the
        span processors down as the SDK's provider does."""
        if getattr(self, "_shut", True):
            return
        self._shut = True
        self._stop_tail()
        super().shutdown()

    def stats(self) -> Dict[str, int]:
        """Every span is accounted for:

        - ``spans_recorded + spans_from_before_fork`` = spans the sampler
          recorded that ended (``spans_not_recorded``: spans it did not record);
        - ``spans_ended = spans_buffered + spans_kept + spans_dropped + late_dropped + lost_undecided
          + spans_after_shutdown``;
        - ``spans_kept + retained_kept = spans_queued + queue_full_dropped + spans_exported
          + spans_export_failed + spans_in_flight + lost_unexported``;

        with traces kept by reason (``kept_head``, ``kept_error``,
        ``kept_captured``, ...), the retention ring (``retained_spans``,
        ``retained_bytes``, ``retention_evicted``), captures
        (``captures``, ``captures_beyond_horizon``, ``captures_refused``) and sharing as
        ``TailSamplingProcessor.stats``.
        """
        return self._tail_stats()
