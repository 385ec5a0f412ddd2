"""The public samplers: real ``opentelemetry.sdk.trace.sampling.Sampler``s whose
decisions are made by one native call.

Each instance binds its native ``should_sample`` as an instance attribute, so the
SDK's ``self.sampler.should_sample(...)`` goes straight into Rust without running
any Python bytecode of ours.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from tracesieve import _core, _store
from tracesieve._checks import check_flag, check_meter_provider, shown
from tracesieve._copies import BuiltFromArguments

__all__ = ["ProbabilitySampler", "RuleSampler", "TraceIdRatioSampler"]


class _NativeSampler(BuiltFromArguments, Sampler):
    """Shared plumbing: the SDK contract, stats, copies (a deep copy or a pickle
    is built anew from the sampler's arguments: a budget's host record or store
    is the same record, a ``store="memory"`` budget starts afresh, a remote
    sampler polls on its own). Subclasses build ``self._native``."""

    _native: _core.NativeSampler

    def _bind(self, native: _core.NativeSampler, defer: bool = False, trust_incoming: Optional[bool] = None) -> None:
        if check_flag("defer", defer):
            native = native.deferred()
        if trust_incoming is not None and check_flag("trust_incoming", trust_incoming) != native.trust_incoming:
            native = native.trusting(trust_incoming)
        self._native = native
        # The hot path: the SDK looks this attribute up on the instance first.
        self.should_sample = native.should_sample  # type: ignore[method-assign]
        _store.watch(self, native.store_info())

    def _observe(self, meter_provider: Any) -> None:
        """Report its decisions (and its rules', budget's and boost's, where it
        has them) as OpenTelemetry metrics, to ``meter_provider`` or else the
        global one (also one set later); once, at construction."""
        from tracesieve.metrics import observe_sampler

        observe_sampler(self, meter_provider)

    def _store_info(self) -> Dict[str, Any]:
        return self._native.store_info()

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
    def defer(self) -> bool:
        """Whether spans it drops are recorded (RECORD_ONLY) for a tail stage."""
        return self._native.defer

    @property
    def respect_parent(self) -> bool:
        """Whether a span with a valid parent follows the parent's sampled flag."""
        return self._native.respect_parent

    @property
    def trust_incoming(self) -> bool:
        """Whether what remote parents send (their sampled flag, ``th`` and
        ``rv``) is followed; False: spans with a remote parent are decided afresh."""
        return self._native.trust_incoming

    @property
    def description(self) -> List[str]:
        """The compiled plan in plain words."""
        return self._native.description_lines()

    def stats(self) -> Dict[str, int]:
        """Exact decision counts: ``decisions``, ``sampled``, ``dropped``, counts per
        path (``root``, ``parent_sampled``, ``parent_not_sampled``,
        ``child_independent``) and ``input_errors`` (spans whose input could not be
        read and were decided by the documented fallback)."""
        return self._native.stats()

    def __repr__(self) -> str:
        return self.get_description()


def inner_sampler(field: str, value: Any, respect_parent: Any, kinds: str) -> _NativeSampler:
    """What a composed sampler wraps: a tracesieve sampler, or a rate made
    into a ``ProbabilitySampler``."""
    if isinstance(value, _NativeSampler):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ProbabilitySampler(value, respect_parent=respect_parent)
    raise _core.ConfigError(f"{field}: expected a rate in [0, 1] or a tracesieve {kinds}, got {shown(value)}")


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
        trust_incoming: when False (an edge service facing callers it does not
            control), a span with a remote parent is decided afresh, as a root:
            the caller's sampled flag, ``th`` and ``rv`` are ignored and not
            passed on. Local parents are followed as usual.
        meter_provider: where its counts are reported as OpenTelemetry
            metrics (default: the global ``MeterProvider``, also one set later).
    """

    def __init__(
        self,
        rate: float = 1.0,
        *,
        respect_parent: bool = True,
        precision: int = _core.DEFAULT_PRECISION,
        defer: bool = False,
        trust_incoming: bool = True,
        meter_provider: Any = None,
    ):
        check_meter_provider(meter_provider)
        self._bind(
            _core.NativeSampler.probability(
                rate,
                respect_parent=respect_parent,
                precision=precision,
                class_name=type(self).__name__,
            ),
            defer,
            trust_incoming,
        )
        self._observe(meter_provider)

    @property
    def threshold(self) -> Optional[str]:
        """The ``th`` value written on kept root spans (None for rate 0)."""
        return self._native.threshold


class TraceIdRatioSampler(_NativeSampler):
    """The decision of the SDK's ``TraceIdRatioBased(rate)`` for every trace id
    (keep iff ``trace_id & (2**64 - 1) < round(rate * 2**64)``), made natively.

    Its probability is not a consistent threshold, so a span it decides afresh
    carries no ``th``. With ``respect_parent=True`` (default) it behaves like
    ``ParentBased(TraceIdRatioBased(rate))``. ``meter_provider`` is where its
    counts are reported as metrics (default: the global one, also one set later).
    """

    #: The trace id bits compared, as on the SDK's class: the low 64.
    TRACE_ID_LIMIT = (1 << 64) - 1

    def __init__(
        self,
        rate: float = 1.0,
        *,
        respect_parent: bool = True,
        defer: bool = False,
        trust_incoming: bool = True,
        meter_provider: Any = None,
    ):
        check_meter_provider(meter_provider)
        self._bind(
            _core.NativeSampler.trace_id_ratio(rate, respect_parent=respect_parent, class_name=type(self).__name__),
            defer,
            trust_incoming,
        )
        self._observe(meter_provider)

    @classmethod
    def get_bound_for_rate(cls, rate: float) -> int:
        """The SDK's bound for ``rate``: a trace is kept iff its id's low 64 bits are below it."""
        return round(rate * (cls.TRACE_ID_LIMIT + 1))

    @property
    def bound(self) -> int:
        """This sampler's bound (see :meth:`get_bound_for_rate`)."""
        return self.get_bound_for_rate(self.rate)


class RuleSampler(_NativeSampler):
    """Rule-based consistent sampling: per-route rates, force-keep of business
    events, drops, and multipliers by attribute value and local time of day.

    Rules are plain data (they serialise to JSON, TOML or YAML as they are), tried
    in order; the first whose conditions all hold decides::

        RuleSampler(
            rules=[
                {"name": "payments", "match": {"business.event": "payment"}, "action": "keep"},
                {"name": "big-orders", "match": {"payment.amount": {">": 1000}}, "action": "keep"},
                {"name": "probes", "route": {"in": ["/api/health", "/api/metrics"]}, "rate": 0.01},
                {"name": "checkout", "route": "/api/payment", "rate": 0.5},
            ],
            default_rate=0.1,
            multipliers=[
                {"attribute": "user.tier", "factors": {"premium": 1.5, "free": 0.5}},
                {"schedule": {"timezone": "Asia/Seoul", "windows": [
                    {"start": 9, "end": 18, "factor": 1.5},
                    {"start": 18, "end": 23, "factor": 1.0},
                    {"start": 23, "end": 9, "factor": 0.5}]}},
            ],
        )

    A rule has conditions (``span_name``, ``route``, ``kind``, ``root``, ``match`` on
    start attributes) and exactly one of ``rate`` (a probability, scaled by every
    multiplier and clamped to [0, 1]) or ``action`` (``"keep"`` or ``"drop"``).
    Spans no rule matches get ``default_rate``, also scaled.

    The effective probability goes into the decision and into ``th``, so every
    service running the same policy agrees, and downstream can re-weight.

    Parent handling: with ``respect_parent=True`` (default) a span with a valid
    parent follows the parent's decision, except that a ``keep`` rule always keeps
    (a business event is recorded even when its trace was not sampled upstream).

    Args:
        rules: list of rule mappings, in priority order.
        default_rate: probability for spans no rule matches.
        multipliers: list of ``{"attribute", "factors", "default"}`` or
            ``{"schedule": {"timezone", "windows"}}`` mappings.
        respect_parent: follow a valid parent's decision (see above).
        precision: significant hex digits of ``th`` (1-12, default 5).
        clock: optional callable returning Unix time in seconds, for schedules
            in tests and simulations; the system clock otherwise.
        meter_provider: where its counts are reported as OpenTelemetry
            metrics (default: the global ``MeterProvider``, also one set later).
    """

    def __init__(
        self,
        rules: Sequence[Mapping[str, Any]] = (),
        *,
        default_rate: float = 1.0,
        multipliers: Optional[Sequence[Mapping[str, Any]]] = None,
        respect_parent: bool = True,
        precision: int = _core.DEFAULT_PRECISION,
        clock: Optional[Callable[[], float]] = None,
        defer: bool = False,
        trust_incoming: bool = True,
        meter_provider: Any = None,
    ):
        check_meter_provider(meter_provider)
        self._rules = rules
        self._default_rate = default_rate
        self._multipliers = multipliers
        self._clock = clock
        self._bind(
            _core.NativeSampler.rules(
                list(rules) if isinstance(rules, tuple) else rules,
                default_rate=default_rate,
                multipliers=multipliers,
                respect_parent=respect_parent,
                precision=precision,
                clock=clock,
                class_name=type(self).__name__,
            ),
            defer,
            trust_incoming,
        )
        self._observe(meter_provider)

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike[str]]) -> RuleSampler:
        """A ``RuleSampler`` from a ``.toml``, ``.yaml`` or ``.json`` rules file
        holding its arguments (``rules``, ``default_rate``, ``multipliers``,
        ``respect_parent``, ``trust_incoming``, ``precision``); every error names the file."""
        from tracesieve.config import load_policy

        policy = load_policy(path)
        try:
            return cls(**policy)
        except _core.ConfigError as error:
            raise _core.ConfigError(f"{path}: {error}") from None

    @property
    def rule_names(self) -> list:
        """Rule names in priority order (unnamed rules are called ``rules[i]``)."""
        return self._native.rule_names()

    def explain(
        self,
        name: str,
        attributes: Optional[Mapping[str, Any]] = None,
        *,
        kind: Optional[SpanKind] = None,
        root: bool = True,
        now: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Which rule decides a span like this, and with what probability (before
        the parent and the trace's randomness are considered)::

            >>> sampler.explain("POST /pay", {"http.route": "/api/payment", "user.tier": "free"})
            {'rule': 'checkout', 'route': '/api/payment', 'action': 'rate', 'probability': 0.25, 'th': 'c'}
        """
        return self._native.explain(name, kind=kind, attributes=attributes, root=root, now=now)
