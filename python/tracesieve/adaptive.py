"""Adaptive sampling: ended spans feed lock-free sliding windows (spans, errors,
slow spans) and a sampler multiplies its base probability while they look bad.

A head sampler cannot see a span's error or duration when the span starts; the
signal flows back from spans that have ended, through ``ErrorWindowProcessor``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Sampler

from tracesieve import _core, _store, record
from tracesieve._checks import check_meter_provider, check_route_thresholds
from tracesieve._copies import BuiltFromArguments
from tracesieve.samplers import _NativeSampler, inner_sampler

__all__ = ["AdaptiveSampler", "ErrorWindowProcessor"]


class ErrorWindowProcessor(BuiltFromArguments, SpanProcessor):
    """A ``SpanProcessor`` whose ``on_end`` records every ended span into sliding
    windows: all spans, error spans (status ERROR or an ``exception`` event) and
    slow spans (duration at or above a threshold, optionally per route).

    Args:
        window: seconds the windows cover (default 300: five minutes).
        resolution: bucket width in seconds (default 1).
        slow_threshold: seconds at or above which a span is slow (default 2.0).
        route_thresholds: ``{route: seconds}`` for routes with their own
            threshold (and their own latency boost); the route is ``http.route``,
            else ``url.path``, else ``http.target`` of the ended span.
        clock: optional callable returning Unix time in seconds (tests, simulations).
        store: where the windows live: None or ``"memory"`` (this process),
            ``"host"`` (the service's record on this host, as a budget's), or a file URL such
            as ``"file:///run/myapp/sampling.tracesieve"`` shared by every
            process of the host naming it, so an error burst in any worker
            boosts them all (or ``"redis://host:6379/0#fleet"``: summed
            across a fleet of hosts at each step). Every process must give the
            same window, resolution and thresholds.
    """

    def __init__(
        self,
        *,
        window: float = 300.0,
        resolution: float = 1.0,
        slow_threshold: float = 2.0,
        route_thresholds: Optional[Mapping[str, float]] = None,
        clock: Optional[Callable[[], float]] = None,
        store: Optional[str] = None,
    ):
        self._native = _core.NativeSignals(
            window=window,
            resolution=resolution,
            slow_threshold=slow_threshold,
            route_thresholds=check_route_thresholds(route_thresholds),
            clock=clock,
            store=record.named_store(store),
        )
        _store.watch(self, self._native.store_info())
        self._clock = clock
        # The hot paths: the SDK (and callers) reach these native methods directly.
        self.on_end = self._native.on_end  # type: ignore[method-assign]
        self.record_error = self._native.record_error  # type: ignore[method-assign]

    @classmethod
    def _wrap(cls, native: _core.NativeSignals, clock: Optional[Callable[[], float]]) -> ErrorWindowProcessor:
        """A processor around windows a pipeline made (shared across its reloads)."""
        processor = cls.__new__(cls)
        processor._recipe = None
        processor._native = native
        processor._clock = clock
        processor.on_end = native.on_end  # type: ignore[method-assign]
        processor.record_error = native.record_error  # type: ignore[method-assign]
        return processor

    def _store_info(self) -> Dict[str, Any]:
        return self._native.store_info()

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self._native.on_end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def record_error(self, count: int = 1) -> None:
        """Count errors seen outside spans (a failed job, a caught exception)."""
        self._native.record_error(count)

    def record_latency(self, seconds: float, route: Optional[str] = None) -> None:
        """Count a request of this duration (seconds) on ``route``, as an ended span would."""
        self._native.record_latency(seconds, route)

    def counts(self) -> Dict[str, Any]:
        """Window counts now: ``spans``, ``errors``, ``slow``, per configured route,
        spans that could not be read, clock failures."""
        return self._native.counts()


class AdaptiveSampler(_NativeSampler):
    """Multiplies a base sampler's probability while recent errors or latency are
    high, and lets the boost decay as the window clears. The boosted probability
    goes into the decision and ``th``, composed in Rust: one native call per span.

    By default it reproduces the seed: more than 5 errors in the last 5 minutes
    gives x2, more than 10 gives x3. ``error_rate_target`` switches to rate mode,
    which behaves the same at 10 and at 10,000 requests per second: the boost is
    ``clamp(error_fraction / target, 1, max_boost)`` once ``min_spans`` were seen.
    A route whose slow fraction reaches ``slow_ratio`` gets ``latency_boost``.

    Args:
        base: a rate, or a ``ProbabilitySampler`` / ``RuleSampler``.
        processor: the ``ErrorWindowProcessor`` feeding it; one is made (with
            ``window``, ``resolution``, ``slow_threshold``, ``route_thresholds``,
            ``clock``, ``store``) when not given. Add ``sampler.processor`` to the provider.
        error_steps: ``[(count, multiplier), ...]``, counts increasing,
            multipliers not decreasing and >= 1.
        error_rate_target: fraction in (0, 1]; enables rate mode.
        min_spans: spans needed in a window before rates count (default 20).
        latency_boost: multiplier for slow routes (default 2.0).
        slow_ratio: slow fraction that makes a route slow (default 0.1).
        max_boost: cap on the combined multiplier (default 10).
        respect_parent: used when ``base`` is a rate.
        trust_incoming: False ignores what remote parents send (see
            ``ProbabilitySampler``); by default, as ``base`` does.
        meter_provider: where its counts are reported as OpenTelemetry
            metrics (default: the global ``MeterProvider``, also one set later).
    """

    def __init__(
        self,
        base: Union[float, Sampler] = 0.1,
        *,
        processor: Optional[ErrorWindowProcessor] = None,
        error_steps: Optional[Sequence[Tuple[int, float]]] = None,
        error_rate_target: Optional[float] = None,
        min_spans: int = 20,
        latency_boost: float = 2.0,
        slow_ratio: float = 0.1,
        max_boost: float = 10.0,
        respect_parent: bool = True,
        window: float = 300.0,
        resolution: float = 1.0,
        slow_threshold: float = 2.0,
        route_thresholds: Optional[Mapping[str, float]] = None,
        clock: Optional[Callable[[], float]] = None,
        defer: bool = False,
        store: Optional[str] = None,
        trust_incoming: Optional[bool] = None,
        meter_provider: Any = None,
    ):
        check_meter_provider(meter_provider)
        base_sampler = inner_sampler("base", base, respect_parent, "a ProbabilitySampler or RuleSampler")
        if processor is None:
            processor = ErrorWindowProcessor(
                window=window,
                resolution=resolution,
                slow_threshold=slow_threshold,
                route_thresholds=route_thresholds,
                clock=clock if clock is not None else getattr(base_sampler, "_clock", None),
                store=store,
            )
        elif not isinstance(processor, ErrorWindowProcessor):
            raise _core.ConfigError(f"processor: expected an ErrorWindowProcessor, got {type(processor).__name__}")
        elif store is not None:
            raise _core.ConfigError("store: give the store to the ErrorWindowProcessor passed as processor (its windows are the state)")
        self.processor = processor
        self.base = base_sampler
        self._clock = processor._clock
        self._bind(
            _core.NativeSampler.adaptive(
                base_sampler._native,
                processor._native,
                error_steps=error_steps,
                error_rate_target=error_rate_target,
                min_spans=min_spans,
                latency_boost=latency_boost,
                slow_ratio=slow_ratio,
                max_boost=max_boost,
                class_name=type(self).__name__,
            ),
            defer,
            trust_incoming,
        )
        # With drops recorded (defer) every span reaches the windows and counts
        # once; otherwise each sampled span stands for its adjusted count.
        processor._native.set_all_recorded(self.defer)
        self._observe(meter_provider)

    def record_error(self, count: int = 1) -> None:
        """Count errors by hand (see ``ErrorWindowProcessor.record_error``)."""
        self.processor._native.record_error(count)

    def record_latency(self, seconds: float, route: Optional[str] = None) -> None:
        """Count a request duration by hand (see ``ErrorWindowProcessor.record_latency``)."""
        self.processor.record_latency(seconds, route)

    @property
    def boost(self) -> float:
        """The multiplier in force now (errors; routes' latency boosts apply per span)."""
        return self.stats()["boost"]
