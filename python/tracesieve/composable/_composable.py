"""The composable sampler interface (a sampling intent per span), and the base
of tracesieve's composables: each describes itself as a tree spec that the
native core evaluates in one call, and reports its intent through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence

from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from tracesieve import _core, record
from tracesieve._checks import quoted


def _same(trace_state: TraceState) -> TraceState:
    return trace_state


@dataclass(frozen=True)
class SamplingIntent:
    """Information to make a consistent sampling decision."""

    threshold: int
    """The threshold (0 to 2**56): lower keeps more; -1 means no threshold (a drop)."""

    threshold_reliable: bool = field(default=True)
    """Whether the threshold may be used for estimates (span-to-metrics)."""

    attributes: Attributes = field(default=None)
    """Attributes added to a kept span."""

    update_trace_state: Callable[[TraceState], TraceState] = field(default=_same)
    """Updates to the tracestate (never to its `ot` entry)."""


class ComposableSampler(Protocol):
    """A sampler that gives a sampling intent instead of a decision."""

    def sampling_intent(
        self,
        parent_ctx: Optional[Context],
        name: str,
        span_kind: Optional[SpanKind],
        attributes: Attributes,
        links: Optional[Sequence[Link]],
        trace_state: Optional[TraceState],
    ) -> SamplingIntent: ...

    def get_description(self) -> str: ...


def checked(sampler: Any, field: str) -> Any:
    """``sampler``, if it is a composable sampler; else a ConfigError naming ``field``."""
    if not (callable(getattr(sampler, "sampling_intent", None)) and callable(getattr(sampler, "get_description", None))):
        raise _core.ConfigError(
            f"{field}: {quoted(sampler)} is not a composable sampler; expected an object with sampling_intent() and get_description()"
        )
    return sampler


class Foreign:
    """The Python objects a tree spec refers to by slot: composables and
    predicates that are not tracesieve's own."""

    def __init__(self) -> None:
        self.composables: List[Any] = []
        self.predicates: List[Any] = []

    def composable(self, sampler: Any) -> Dict[str, Any]:
        spec = getattr(sampler, "_spec", None)
        if callable(spec):
            return spec(self)
        self.composables.append(checked(sampler, "sampler"))
        return {"foreign": len(self.composables) - 1}

    def predicate(self, predicate: Any) -> Dict[str, Any]:
        spec = getattr(predicate, "_predicate_spec", None)
        if callable(spec):
            return spec(self)
        if not callable(predicate):
            raise _core.ConfigError(f"predicate: {quoted(predicate)} is not a predicate; expected a callable")
        self.predicates.append(predicate)
        return {"foreign": len(self.predicates) - 1}


def compile_tree(root: Any, description: str = "CompositeSampler", clock: Any = None) -> _core.NativeSampler:
    """The native composite sampler for a composable (or predicate) tree."""
    foreign = Foreign()
    spec = resolve_pipelines(foreign.composable(root), clock)
    return _core.NativeSampler.composite(
        spec, composables=foreign.composables, predicates=foreign.predicates, description=description, clock=clock
    )


def resolve_pipelines(spec: Any, clock: Any = None) -> Any:
    """The spec with each ``tracesieve`` node's stores resolved as a pipeline's
    are (``"memory"``, ``"host"``, and its budget's host record by default)."""
    if isinstance(spec, Mapping):
        if len(spec) == 1 and isinstance(spec.get("tracesieve"), Mapping):
            document, budget_store = record.resolve_pipeline(spec["tracesieve"], clock)
            return {"pipeline": {"document": dict(document), "budget_store": budget_store}}
        return {key: resolve_pipelines(value, clock) for key, value in spec.items()}
    if isinstance(spec, list):
        return [resolve_pipelines(item, clock) for item in spec]
    return spec


class Composable:
    """Base of tracesieve's composables: a spec for the native core, and the
    intent it gives (evaluated natively, in one call)."""

    _compiled: Optional[_core.NativeSampler] = None

    def __getstate__(self) -> Dict[str, Any]:
        # A copy or a pickle compiles its own tree (the native one is neither).
        return {key: value for key, value in self.__dict__.items() if key != "_compiled"}

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        raise NotImplementedError

    def get_description(self) -> str:
        raise NotImplementedError

    def _native(self, clock: Optional[Callable[[], float]] = None) -> _core.NativeSampler:
        """The tree compiled, once: its intents and a composite sampler over it
        share one state (rate limits, budgets). A clock of its own compiles anew."""
        if clock is not None:
            self._compiled = compile_tree(self, self.get_description(), clock=clock)
        elif self._compiled is None:
            self._compiled = compile_tree(self, self.get_description())
        return self._compiled

    def sampling_intent(
        self,
        parent_ctx: Optional[Context],
        name: str,
        span_kind: Optional[SpanKind],
        attributes: Attributes,
        links: Optional[Sequence[Link]],
        trace_state: Optional[TraceState] = None,
    ) -> SamplingIntent:
        threshold, reliable, marked, reached = self._native().intent(parent_ctx, name, span_kind, attributes, links, trace_state)
        updates = [intent.update_trace_state for intent in reached if callable(getattr(intent, "update_trace_state", None))]
        if not updates:
            return SamplingIntent(threshold, reliable, marked)

        def update(state: TraceState) -> TraceState:
            for step in updates:
                state = step(state)
            return state

        return SamplingIntent(threshold, reliable, marked, update)

    def __repr__(self) -> str:
        return self.get_description()
