"""OpenTelemetry metrics for tracesieve's samplers, processors and exporters:
their counters, observed at collection time (nothing is recorded per span)."""

from __future__ import annotations

import weakref
from typing import Any, Dict, Iterator, Optional


def metrics_configured() -> bool:
    """Whether the global MeterProvider is the SDK's (not the no-op default)."""
    try:
        from opentelemetry.metrics import get_meter_provider
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:  # pragma: no cover
        return False
    return isinstance(get_meter_provider(), MeterProvider)


def _meter(meter_provider: Any) -> Optional[Any]:
    """tracesieve's meter from the given provider or the SDK's global one; None without either."""
    if meter_provider is None and not metrics_configured():
        return None
    from opentelemetry.metrics import get_meter_provider

    from tracesieve import __version__

    provider = meter_provider if meter_provider is not None else get_meter_provider()
    return provider.get_meter("tracesieve", __version__)


def observe_stats(owner: Any, instrument: str, description: str, meter_provider: Any = None) -> None:
    """Export ``owner.stats()`` as one observable counter named ``instrument``,
    one data point per counter (attribute ``counter``)."""
    meter = _meter(meter_provider)
    if meter is None:
        return
    from opentelemetry.metrics import Observation

    ref = weakref.ref(owner)

    def callback(options: Any) -> Iterator[Any]:
        target = ref()
        if target is None:
            return
        stats: Dict[str, Any] = target.stats()
        for key, value in stats.items():
            if isinstance(value, int) and not isinstance(value, bool):
                yield Observation(value, {"counter": key})

    meter.create_observable_counter(instrument, callbacks=[callback], unit="1", description=description)


def _observe_decisions(meter: Any, stats: Any) -> None:
    """``tracesieve.sampler.decisions`` (``outcome``: sampled / dropped) from ``stats()`` (None: gone)."""
    from opentelemetry.metrics import Observation

    def decisions(options: Any) -> Iterator[Any]:
        current = stats()
        if current:
            yield Observation(current["sampled"], {"outcome": "sampled"})
            yield Observation(current["dropped"], {"outcome": "dropped"})

    meter.create_observable_counter(
        "tracesieve.sampler.decisions", callbacks=[decisions], unit="{span}", description="Sampling decisions by outcome"
    )


def observe_pipeline(sampler: Any, meter_provider: Any = None) -> None:
    """A pipeline's instruments. Totals and per-rule counts are separate
    instruments, so summing either by outcome counts each decision once:

    - ``tracesieve.sampler.decisions`` (``outcome``: sampled / dropped);
    - ``tracesieve.sampler.rule_decisions`` (``rule``, ``outcome``): the
      decisions each rule made;
    - ``tracesieve.budget.spans`` (``state``: used / remaining);
    - ``tracesieve.adaptive.boost``: the multiplier in force.
    """
    meter = _meter(meter_provider)
    if meter is None:
        return
    from opentelemetry.metrics import Observation

    ref = weakref.ref(sampler)

    def stats() -> Optional[Dict[str, Any]]:
        target = ref()
        return None if target is None else target.stats()

    def rule_decisions(options: Any) -> Iterator[Any]:
        current = stats()
        for rule, counts in (current or {}).get("rules", {}).items():
            yield Observation(counts["sampled"], {"rule": rule, "outcome": "sampled"})
            yield Observation(counts["decisions"] - counts["sampled"], {"rule": rule, "outcome": "dropped"})

    def budget(options: Any) -> Iterator[Any]:
        target = ref()
        if target is None:
            return
        try:
            status = target.budget_status()
        except TypeError:
            return
        yield Observation(status["used_spans"], {"state": "used"})
        yield Observation(status["remaining_spans"], {"state": "remaining"})

    def boost(options: Any) -> Iterator[Any]:
        current = stats()
        if current and "boost" in current:
            yield Observation(current["boost"])

    _observe_decisions(meter, stats)
    meter.create_observable_counter(
        "tracesieve.sampler.rule_decisions",
        callbacks=[rule_decisions],
        unit="{span}",
        description="Sampling decisions made by each rule, by outcome",
    )
    meter.create_observable_gauge(
        "tracesieve.budget.spans", callbacks=[budget], unit="{span}", description="Budget used and remaining this period"
    )
    meter.create_observable_gauge("tracesieve.adaptive.boost", callbacks=[boost], unit="1", description="Current adaptive multiplier")


def observe_remote(sampler: Any, meter_provider: Any = None) -> None:
    """A remote-strategy sampler's instruments:

    - ``tracesieve.sampler.decisions`` (``outcome``: sampled / dropped);
    - ``tracesieve.remote.operation_decisions`` (``operation``; the default
      rule is ``operation=""``): decisions per operation of the strategy in force;
    - ``tracesieve.remote.fetches`` (``outcome``: applied / failed / rejected):
      strategy fetches, and documents refused as invalid.
    """
    meter = _meter(meter_provider)
    if meter is None:
        return
    from opentelemetry.metrics import Observation

    ref = weakref.ref(sampler)

    def operations(options: Any) -> Iterator[Any]:
        target = ref()
        if target is None:
            return
        status = target.remote_status()
        for name, entry in status.get("operations", {}).items():
            yield Observation(entry["decisions"], {"operation": name})
        if "default" in status:
            yield Observation(status["default"]["decisions"], {"operation": ""})

    def fetches(options: Any) -> Iterator[Any]:
        target = ref()
        if target is None:
            return
        status = target.remote_status()
        yield Observation(status["fetches"], {"outcome": "applied"})
        yield Observation(status["fetch_failures"], {"outcome": "failed"})
        yield Observation(status["rejected"], {"outcome": "rejected"})

    def stats() -> Optional[Dict[str, Any]]:
        target = ref()
        return None if target is None else target.stats()

    _observe_decisions(meter, stats)
    meter.create_observable_counter(
        "tracesieve.remote.operation_decisions",
        callbacks=[operations],
        unit="{span}",
        description="Decisions per operation of the remote strategy in force",
    )
    meter.create_observable_counter(
        "tracesieve.remote.fetches", callbacks=[fetches], unit="{fetch}", description="Strategy fetches by outcome"
    )
