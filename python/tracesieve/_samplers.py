"""The public samplers: real ``opentelemetry.sdk.trace.sampling.Sampler``s whose
decisions are made by one native call.

Each instance binds its native ``should_sample`` as an instance attribute, so the
SDK's ``self.sampler.should_sample(...)`` goes straight into Rust without running
any Python bytecode of ours.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from tracesieve import _core

__all__ = ["ProbabilitySampler", "TraceIdRatioSampler"]


class _NativeSampler(Sampler):
    """Shared plumbing: construction, the SDK contract, stats."""

    _kind: str = ""

    def __init__(self, rate: float = 1.0, *, respect_parent: bool = True, precision: int = _core.DEFAULT_PRECISION):
        if not isinstance(respect_parent, bool):
            raise TypeError(f"respect_parent: expected True or False, got {type(respect_parent).__name__} {respect_parent!r}")
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise TypeError(f"precision: expected a whole number of hex digits, got {type(precision).__name__} {precision!r}")
        self._native = _core.NativeSampler(
            self._kind,
            rate,
            respect_parent=respect_parent,
            precision=precision,
            class_name=type(self).__name__,
        )
        # The hot path: the SDK looks this attribute up on the instance first.
        self.should_sample = self._native.should_sample  # type: ignore[method-assign]

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        # Only reached through the class (e.g. ``ProbabilitySampler.should_sample(s, ...)``);
        # instances use the native method bound in ``__init__``.
        return self._native.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return self._native.get_description()

    @property
    def rate(self) -> float:
        """The configured sampling probability."""
        return self._native.rate

    @property
    def respect_parent(self) -> bool:
        """Whether a span with a valid parent follows the parent's sampled flag."""
        return self._native.respect_parent

    def stats(self) -> Dict[str, int]:
        """Exact decision counts: ``decisions``, ``sampled``, ``dropped``, counts per
        path (``root``, ``parent_sampled``, ``parent_not_sampled``,
        ``child_independent``) and ``input_errors`` (spans whose input could not be
        read and were decided by the documented fallback)."""
        return self._native.stats()

    def __repr__(self) -> str:
        return self.get_description()


class ProbabilitySampler(_NativeSampler):
    """Consistent probability sampling (OpenTelemetry tracestate probability
    sampling, OTEP 235).

    A span is kept iff its randomness (the parent's ``rv``, else the trace id's
    low 56 bits) is at least the threshold ``(1 - rate) * 2**56``. Kept spans carry
    the threshold as ``th`` in the ``ot`` tracestate entry, so every service and
    every downstream stage can agree and re-weight (adjusted count = 1 / rate).

    Args:
        rate: probability of keeping a trace, in [0, 1].
        respect_parent: when True (default), a span with a valid parent follows
            the parent's sampled flag and keeps its ``th``, like ``ParentBased``.
        precision: significant hex digits of ``th`` (1-12, default 5).
    """

    _kind = "probability"

    def __init__(self, rate: float = 1.0, *, respect_parent: bool = True, precision: int = _core.DEFAULT_PRECISION):
        super().__init__(rate, respect_parent=respect_parent, precision=precision)

    @property
    def threshold(self) -> Optional[str]:
        """The ``th`` value written on kept root spans (None for rate 0)."""
        return self._native.threshold


class TraceIdRatioSampler(_NativeSampler):
    """The decision of the SDK's ``TraceIdRatioBased(rate)`` for every trace id
    (keep iff ``trace_id & (2**64 - 1) < round(rate * 2**64)``), made natively.

    Its probability is not a consistent threshold, so a span it decides afresh
    carries no ``th``. With ``respect_parent=True`` (default) it behaves like
    ``ParentBased(TraceIdRatioBased(rate))``.
    """

    _kind = "traceidratio"

    def __init__(self, rate: float = 1.0, *, respect_parent: bool = True):
        super().__init__(rate, respect_parent=respect_parent)
