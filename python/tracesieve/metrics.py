"""OpenTelemetry metrics for tracesieve's samplers, processors and exporters:
their counters, observed at collection time (nothing is recorded per span).

A meter keeps the first instrument of a name and ignores the callbacks of any
later one, so each instrument is made once per meter provider and reports every
live owner that observes it: counts summed (the decisions of two pipelines),
the adaptive boost the highest in force."""

from __future__ import annotations

import operator
import os
import threading
import weakref
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Tuple

#: An owner's observations: (value, attributes) pairs, read from the live owner.
Source = Callable[[Any], Iterator[Tuple[float, Dict[str, Any]]]]


class _Instrument:
    """One observable instrument and the owners it reports."""

    def __init__(self, provider: Any, name: str, combine: Callable[[float, float], float]) -> None:
        self.provider = provider  # kept, so its id is not reused while this lives
        self.name = name
        self.combine = combine
        self.sources: List[Tuple[weakref.ReferenceType[Any], Source]] = []
        self.pruned_to = 0  # live owners after the last prune

    def observe(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation, get_meter_provider

        totals: Dict[FrozenSet[Tuple[str, Any]], float] = {}
        global_provider = get_meter_provider()  # outside the lock: its first call may build one
        with _LOCK:
            live = []
            for instrument in (self, self._twin(global_provider)):
                if instrument is not None:
                    instrument.sources = [(ref, source) for ref, source in instrument.sources if ref() is not None]
                    live += [(ref(), source) for ref, source in instrument.sources]
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

    def _twin(self, global_provider: Any) -> _Instrument | None:
        """The instrument of this name kept for the same SDK provider under the
        other key: the global one's, or that provider's own, once it is made the
        global one. Both were made on that provider's one tracesieve meter, which
        kept the first and dropped the other's callbacks; the one that reports
        reports the owners of both. Called with ``_LOCK`` held."""
        twin_key = global_provider if self.provider is _GLOBAL else _GLOBAL
        if self.provider is not _GLOBAL and global_provider is not self.provider:
            return None  # a provider of its own, not the global one: nobody shares its meter
        twin = _INSTRUMENTS.get((id(twin_key), self.name))
        return twin if twin is not None and twin.provider is twin_key else None


_LOCK = threading.Lock()
_INSTRUMENTS: Dict[Tuple[int, str], _Instrument] = {}


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a metric reader's thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _report(
    key: Any,
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
        existing = _INSTRUMENTS.get((id(key), name))
        instrument = existing if existing is not None and existing.provider is key else _Instrument(key, name, combine)
        _INSTRUMENTS[(id(key), name)] = instrument
        # Pruned here too, whenever the list has doubled: with no meter provider ever set,
        # nothing is collected to prune it, and a prune at every append would be quadratic.
        if len(instrument.sources) >= 2 * instrument.pruned_to + 16:
            instrument.sources = [(ref, source) for ref, source in instrument.sources if ref() is not None]
            instrument.pruned_to = len(instrument.sources)
        instrument.sources.append((weakref.ref(owner), source))
    if instrument is not existing:
        getattr(meter, kind)(name, callbacks=[instrument.observe], **options)


#: What instruments reporting to the global meter provider are kept under,
#: whichever provider that is when they are made.
_GLOBAL = object()
#: tracesieve's meter on each provider, by what its instruments are kept under.
_METERS: Dict[int, Tuple[Any, Any]] = {}


def _meter(meter_provider: Any) -> Tuple[Any, Any]:
    """(what its instruments are kept under, tracesieve's meter) on the given
    provider or else the global one. Before an SDK provider is set globally
    (zero-code configuration builds the sampler first), the API's proxy meter
    hands out instruments that report once it is. The meter is made once per
    provider: the proxy provider keeps every meter it hands out."""
    from opentelemetry.metrics import get_meter_provider

    from tracesieve import __version__

    global_provider = get_meter_provider()
    key = _GLOBAL if meter_provider is None or meter_provider is global_provider else meter_provider
    with _LOCK:
        known = _METERS.get(id(key))
        if known is None or known[0] is not key:
            provider = global_provider if key is _GLOBAL else meter_provider
            known = _METERS[id(key)] = (key, provider.get_meter("tracesieve", __version__))
    return known


def observe_stats(owner: Any, instrument: str, description: str, meter_provider: Any = None) -> None:
    """Export ``owner.stats()`` as one observable counter named ``instrument``,
    one data point per counter (attribute ``counter``)."""
    found = _meter(meter_provider)

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
    """A sampler's instruments (a pipeline's, or any other tracesieve
    sampler's). Totals and per-rule counts are separate instruments, so
    summing either by outcome counts each decision once:

    - ``tracesieve.sampler.decisions`` (``outcome``: sampled / dropped);
    - ``tracesieve.sampler.rule_decisions`` (``rule``, ``outcome``): the
      decisions each rule made;
    - ``tracesieve.budget.spans`` (``state``: used / remaining);
    - ``tracesieve.budget.refused``: spans the budget refused;
    - ``tracesieve.budget.pacing``: the pacing probability in force;
    - ``tracesieve.adaptive.boost``: the multiplier in force.
    """
    found = _meter(meter_provider)

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

    def refused(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        current = target.stats()
        if "budget_refused" in current:
            yield current["budget_refused"], {}

    def pacing(target: Any) -> Iterator[Tuple[float, Dict[str, Any]]]:
        try:
            yield target.budget_status()["pacing_probability"], {}
        except TypeError:
            return

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
    description = "Spans the budget refused for want of room (this process's, since it started)"
    _report(*found, "create_observable_counter", "tracesieve.budget.refused", sampler, refused, unit="{span}", description=description)
    description = "Probability the budget's pacing keeps a span with now (the lowest in force)"
    _report(*found, "create_observable_gauge", "tracesieve.budget.pacing", sampler, pacing, min, unit="1", description=description)
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
