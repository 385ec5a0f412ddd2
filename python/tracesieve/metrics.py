"""OpenTelemetry metrics for tracesieve's samplers, processors and exporters:
their counters, observed at collection time (nothing is recorded per span).

A meter keeps the first instrument of a name and ignores the callbacks of any
later one, so each instrument is made once per meter provider and reports every
live owner that observes it: counts summed (the decisions of two pipelines),
the adaptive boost the highest in force."""

from __future__ import annotations

import operator
import threading
import weakref
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple

#: An owner's observations: (value, attributes) pairs, read from the live owner.
Source = Callable[[Any], Iterator[Tuple[float, Dict[str, Any]]]]


class _Instrument:
    """One observable instrument and the owners it reports."""

    def __init__(self, provider: Any, combine: Callable[[float, float], float]) -> None:
        self.provider = provider  # kept, so its id is not reused while this lives
        self.combine = combine
        self.sources: List[Tuple[weakref.ReferenceType[Any], Source]] = []

    def observe(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation

        totals: Dict[FrozenSet[Tuple[str, Any]], float] = {}
        with _LOCK:
            self.sources = [(ref, source) for ref, source in self.sources if ref() is not None]
            live = [(ref(), source) for ref, source in self.sources]
        for owner, source in live:
            if owner is None:
                continue
            try:
                observed = list(source(owner))
            except Exception:  # one owner that cannot report (shut down meanwhile) leaves the others
                continue
            for value, attributes in observed:
                key = frozenset(attributes.items())
                totals[key] = self.combine(totals[key], value) if key in totals else value
        for key, value in totals.items():
            yield Observation(value, dict(key))


_LOCK = threading.Lock()
_INSTRUMENTS: Dict[Tuple[int, str], _Instrument] = {}


def _report(
    provider: Any,
    meter: Any,
    kind: str,
    name: str,
    owner: Any,
    source: Source,
    combine: Callable[[float, float], float] = operator.add,
    **options: Any,
) -> None:
    """Report ``source(owner)`` in the instrument ``name`` (made on first use)."""
    with _LOCK:
        existing = _INSTRUMENTS.get((id(provider), name))
        instrument = existing if existing is not None and existing.provider is provider else _Instrument(provider, combine)
        _INSTRUMENTS[(id(provider), name)] = instrument
        instrument.sources.append((weakref.ref(owner), source))
    if instrument is not existing:
        getattr(meter, kind)(name, callbacks=[instrument.observe], **options)


def metrics_configured() -> bool:
    """Whether the global MeterProvider is the SDK's (not the no-op default)."""
    try:
        from opentelemetry.metrics import get_meter_provider
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:  # pragma: no cover
        return False
    return isinstance(get_meter_provider(), MeterProvider)


def _meter(meter_provider: Any) -> Optional[Tuple[Any, Any]]:
    """(the provider, tracesieve's meter) from the given provider or the SDK's
    global one; None without either."""
    if meter_provider is None and not metrics_configured():
        return None
    from opentelemetry.metrics import get_meter_provider

    from tracesieve import __version__

    provider = meter_provider if meter_provider is not None else get_meter_provider()
    return provider, provider.get_meter("tracesieve", __version__)


def observe_stats(owner: Any, instrument: str, description: str, meter_provider: Any = None) -> None:
    """Export ``owner.stats()`` as one observable counter named ``instrument``,
    one data point per counter (attribute ``counter``)."""
    found = _meter(meter_provider)
    if found is None:
        return

    def counts(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        for key, value in target.stats().items():
            if isinstance(value, int) and not isinstance(value, bool):
                yield value, {"counter": key}

    _report(*found, "create_observable_counter", instrument, owner, counts, unit="1", description=description)


def _decisions(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
    current = target.stats()
    yield current["sampled"], {"outcome": "sampled"}
    yield current["dropped"], {"outcome": "dropped"}


def _observe_decisions(found: Tuple[Any, Any], sampler: Any) -> None:
    """``tracesieve.sampler.decisions`` (``outcome``: sampled / dropped)."""
    description = "Sampling decisions by outcome"
    _report(
        *found, "create_observable_counter", "tracesieve.sampler.decisions", sampler, _decisions, unit="{span}", description=description
    )


def observe_sampler(sampler: Any, meter_provider: Any = None) -> None:
    """A sampler's instruments (a pipeline's, or any of tracesieve's samplers'). Totals and per-rule counts are separate
    instruments, so summing either by outcome counts each decision once:

    - ``tracesieve.sampler.decisions`` (``outcome``: sampled / dropped);
    - ``tracesieve.sampler.rule_decisions`` (``rule``, ``outcome``): the
      decisions each rule made;
    - ``tracesieve.budget.spans`` (``state``: used / remaining);
    - ``tracesieve.adaptive.boost``: the multiplier in force.
    """
    found = _meter(meter_provider)
    if found is None:
        return

    def rule_decisions(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        for rule, counts in target.stats().get("rules", {}).items():
            yield counts["sampled"], {"rule": rule, "outcome": "sampled"}
            yield counts["decisions"] - counts["sampled"], {"rule": rule, "outcome": "dropped"}

    def budget(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        try:
            status = target.budget_status()
        except TypeError:
            return
        yield status["used_spans"], {"state": "used"}
        yield status["remaining_spans"], {"state": "remaining"}

    def boost(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        current = target.stats()
        if "boost" in current:
            yield current["boost"], {}

    _observe_decisions(found, sampler)
    _report(
        *found,
        "create_observable_counter",
        "tracesieve.sampler.rule_decisions",
        sampler,
        rule_decisions,
        unit="{span}",
        description="Sampling decisions made by each rule, by outcome",
    )
    description = "Budget used and remaining this period"
    _report(*found, "create_observable_gauge", "tracesieve.budget.spans", sampler, budget, unit="{span}", description=description)
    description = "Current adaptive multiplier (the highest in force)"
    _report(*found, "create_observable_gauge", "tracesieve.adaptive.boost", sampler, boost, max, unit="1", description=description)


def observe_remote(sampler: Any, meter_provider: Any = None) -> None:
    """A remote-strategy sampler's instruments:

    - ``tracesieve.sampler.decisions`` (``outcome``: sampled / dropped);
    - ``tracesieve.remote.operation_decisions`` (``operation``; the default
      rule is ``operation=""``): decisions per operation of the strategy in force;
    - ``tracesieve.remote.fetches`` (``outcome``: applied / failed / rejected):
      strategy fetches, and documents refused as invalid.
    """
    found = _meter(meter_provider)
    if found is None:
        return

    def operations(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        status = target.remote_status()
        for name, entry in status.get("operations", {}).items():
            yield entry["decisions"], {"operation": name}
        if "default" in status:
            yield status["default"]["decisions"], {"operation": ""}

    def fetches(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        status = target.remote_status()
        yield status["fetches"], {"outcome": "applied"}
        yield status["fetch_failures"], {"outcome": "failed"}
        yield status["rejected"], {"outcome": "rejected"}

    _observe_decisions(found, sampler)
    _report(
        *found,
        "create_observable_counter",
        "tracesieve.remote.operation_decisions",
        sampler,
        operations,
        unit="{span}",
        description="Decisions per operation of the remote strategy in force",
    )
    description = "Strategy fetches by outcome"
    _report(*found, "create_observable_counter", "tracesieve.remote.fetches", sampler, fetches, unit="{fetch}", description=description)
