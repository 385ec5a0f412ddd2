"""Composable samplers beyond the specification's built-ins: annotating (in
the specification, not yet in the SDK), any-of and rate-limited (OTEP 250),
and a whole tracesieve pipeline (budget, adaptive boost, rules, rate limit,
Jaeger remote) as one node of a tree."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from opentelemetry.util.types import Attributes

from tracesieve._checks import finite_number, quoted, shown
from tracesieve._core import ConfigError
from tracesieve.composable._composable import Composable, ComposableSampler, Foreign, checked


class _ComposableAnnotating(Composable):
    def __init__(self, delegate: ComposableSampler, attributes: Attributes):
        self._delegate = checked(delegate, "delegate")
        self._attributes = dict(attributes or {})

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        attributes = {key: list(value) if isinstance(value, (tuple, list)) else value for key, value in self._attributes.items()}
        return {"annotating": {"attributes": attributes, "delegate": foreign.composable(self._delegate)}}

    def get_description(self) -> str:
        return f"ComposableAnnotating{{attributes={self._attributes}, delegate={self._delegate.get_description()}}}"


def composable_annotating(delegate: ComposableSampler, attributes: Attributes) -> ComposableSampler:
    """``delegate``'s intent, with ``attributes`` added to the spans it keeps."""
    if not isinstance(attributes, Mapping):
        raise ConfigError(f"attributes: expected a mapping of attribute names to values, got {type(attributes).__name__}")
    return _ComposableAnnotating(delegate, attributes)


class _ComposableAnyOf(Composable):
    def __init__(self, delegates: tuple):
        self._delegates = tuple(checked(d, f"delegates[{i}]") for i, d in enumerate(delegates))

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"any_of": [foreign.composable(d) for d in self._delegates]}

    def get_description(self) -> str:
        return f"ComposableAnyOf{{[{','.join(d.get_description() for d in self._delegates)}]}}"


def composable_any_of(*delegates: ComposableSampler) -> ComposableSampler:
    """Kept when any delegate would keep it: the lowest threshold, reliable
    when every delegate giving it is; attributes from every delegate."""
    if not delegates:
        raise ConfigError("delegates: expected at least one composable sampler")
    return _ComposableAnyOf(delegates)


class _ComposableRateLimited(Composable):
    def __init__(self, delegate: ComposableSampler, traces_per_second: float, burst: Optional[float]):
        self._delegate = checked(delegate, "delegate")
        self._rate = traces_per_second
        self._burst = burst

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        spec: Dict[str, Any] = {"delegate": foreign.composable(self._delegate), "traces_per_second": float(self._rate)}
        if self._burst is not None:
            spec["burst"] = float(self._burst)
        return {"rate_limited": spec}

    def get_description(self) -> str:
        return f"ComposableRateLimited{{traces_per_second={self._rate}, delegate={self._delegate.get_description()}}}"


def composable_rate_limited(delegate: ComposableSampler, traces_per_second: float, burst: Optional[float] = None) -> ComposableSampler:
    """``delegate``, its probability lowered so that about ``traces_per_second``
    spans are kept (a consistent probability, recorded in ``th``), with a token
    bucket of ``burst`` (default: a second's worth) as the cap for bursts."""
    for name, value in (("traces_per_second", traces_per_second), ("burst", burst)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value != value):
            raise ConfigError(f"{name}: expected a number, got {shown(value)}")
        if value is not None and not finite_number(value):  # infinite, or an integer no float holds
            raise ConfigError(f"{name}: {quoted(value)} is out of range")
    return _ComposableRateLimited(delegate, traces_per_second, burst)


class _ComposablePipeline(Composable):
    def __init__(self, document: Mapping[str, Any]):
        self._document = dict(document)

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"tracesieve": self._document}

    def get_description(self) -> str:
        stages = [key for key in self._document if key not in ("store", "precision")]
        return f"ComposablePipeline{{{','.join(stages)}}}"


def composable_pipeline(document: Mapping[str, Any]) -> ComposableSampler:
    """A tracesieve pipeline document (its stages: rules, probability,
    adaptive, budget, rate_limit, jaeger_remote) as one composable node. It
    decides as for a root span (parents are ``composable_parent_threshold``'s
    business); its budget, rate limit and visibility floor settle each keep."""
    if not isinstance(document, Mapping):
        raise ConfigError(f"document: expected a mapping of pipeline stages, got {type(document).__name__}")
    return _ComposablePipeline(document)
