"""The composite sampler: a composable tree as an SDK ``Sampler``, decided
natively in one call per span (parents, rules, attributes and all), with the
span processor and strategy pollers its tracesieve pipeline nodes need."""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Mapping, Optional

from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor

from tracesieve import _core
from tracesieve._checks import check_meter_provider
from tracesieve._scrub import Secret
from tracesieve.adaptive import ErrorWindowProcessor
from tracesieve.composable._composable import Composable, ComposableSampler, checked, compile_tree, resolve_pipelines
from tracesieve.remote import StrategyPoller
from tracesieve.samplers import _NativeSampler


class CompositeSampler(_NativeSampler):
    """OpenTelemetry's CompositeSampler over a composable tree.

    The tree's intent decides: a reliable threshold is compared with the
    span's randomness (the parent's ``rv``, else the trace id's low 56 bits)
    and recorded in ``th`` when kept; an unreliable one is compared with fresh
    randomness and ``th`` is removed; no threshold drops the span (and removes
    ``th``). A kept span keeps its start attributes and gets its annotations.

    ``clock``: a callable returning seconds for the tree's rate limits and
    budgets (simulations and tests). The tree's own ``sampling_intent`` and
    this sampler share one state. ``meter_provider``: where its counts are
    reported as metrics (default: the global one, also one set later).

    Attributes:
        processor: the span processor feeding the adaptive stages of the
            tree's pipeline nodes (None without any); add it to the provider.
    """

    def __init__(
        self,
        delegate: ComposableSampler,
        *,
        trust_incoming: bool = True,
        defer: bool = False,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
    ):
        check_meter_provider(meter_provider)
        self._delegate: Optional[ComposableSampler] = checked(delegate, "delegate")
        if isinstance(delegate, Composable):
            # The tree's state is shared with its own sampling_intent; the counts are this sampler's.
            native = delegate._native(clock).with_fresh_counters()
        else:
            native = compile_tree(delegate, delegate.get_description(), clock=clock)
        self._bind(native, defer, trust_incoming)
        self._wire(clock)
        self._observe(meter_provider)

    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any],
        *,
        path: str = "composite",
        trust_incoming: bool = True,
        defer: bool = False,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
    ) -> CompositeSampler:
        """A composite sampler from a ``composite/development`` section as plain
        data (``{"rule_based": {...}}``), tracesieve's nodes included."""
        check_meter_provider(meter_provider)
        sampler = cls.__new__(cls)
        options = {"path": path, "trust_incoming": trust_incoming, "defer": defer, "clock": clock, "meter_provider": meter_provider}
        sampler._recipe = Secret((cls.from_spec, (spec,), options))
        sampler._delegate = None
        native = _core.NativeSampler.composite(
            resolve_pipelines(spec, clock), path=path, clock=clock, description=f"CompositeSampler{{{', '.join(spec)}}}"
        )
        sampler._bind(native, defer, trust_incoming)
        sampler._wire(clock)
        sampler._observe(meter_provider)
        return sampler

    def _wire(self, clock: Any) -> None:
        """The span processor and strategy pollers of the tree's pipeline nodes."""
        processors: List[SpanProcessor] = []
        self._pollers: List[StrategyPoller] = []
        for index, node in enumerate(self._native.composite_pipelines()):
            if node["signals"] is not None:
                processors.append(ErrorWindowProcessor._wrap(node["signals"], clock))
            remote = _stage(node["resolved"], "jaeger_remote")
            if remote is not None:
                apply = functools.partial(self._native.remote_update, pipeline=index)
                notes = functools.partial(_notes, self._native, index)
                self._pollers.append(
                    StrategyPoller(
                        remote["service_name"],
                        remote["endpoint"],
                        remote["polling_interval"],
                        remote["timeout"],
                        apply,
                        notes=notes,
                    )
                )
        self.processor: Optional[SpanProcessor] = None
        if len(processors) == 1:
            self.processor = processors[0]
        elif processors:
            multi = SynchronousMultiSpanProcessor()
            for processor in processors:
                multi.add_span_processor(processor)
            self.processor = multi

    @property
    def delegate(self) -> Optional[ComposableSampler]:
        """The composable tree this sampler was built from (None from a spec)."""
        return self._delegate

    def explain(
        self,
        name: str,
        attributes: Optional[Mapping[str, Any]] = None,
        *,
        kind: Any = None,
        parent: bool = False,
        now: Optional[float] = None,
    ) -> Dict[str, Any]:
        """The path a span like this takes through the tree, in plain words:
        ``{"lines", "probability", "th"}`` (the probability is None where it
        depends on the parent, live state or Python code)."""
        return self._native.explain_plan(name, kind=kind, attributes=attributes, parent=parent, now=now)

    def remote_status(self, pipeline: int = 0) -> Dict[str, Any]:
        """The strategy in force in the tree's ``pipeline``-th pipeline node
        (its jaeger_remote stage; see ``JaegerRemoteSampler.remote_status``)."""
        return self._native.remote_status(pipeline)

    def close(self) -> None:
        """Stop the strategy pollers of the tree's pipeline nodes."""
        for poller in self._pollers:
            poller.stop()


def _notes(native: _core.NativeSampler, pipeline: int) -> List[str]:
    return list(native.remote_status(pipeline)["notes"])


def _stage(resolved: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    return next((s for s in resolved["stages"] if s["stage"] == name), None)


def composite_sampler(delegate: ComposableSampler) -> CompositeSampler:
    """A sampler that decides with a composable sampler's intent, and writes
    ``th`` as the specification asks."""
    return CompositeSampler(delegate)
