"""OpenTelemetry metrics for tracesieve's processors and exporters: their
``stats()`` counters, observed at collection time."""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict


def metrics_configured() -> bool:
    """Whether the global MeterProvider is the SDK's (not the no-op default)."""
    try:
        from opentelemetry.metrics import get_meter_provider
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:  # pragma: no cover
        return False
    return isinstance(get_meter_provider(), MeterProvider)


def observe_stats(owner: Any, instrument: str, description: str, meter_provider: Any = None) -> None:
    """Export ``owner.stats()`` as one observable counter named ``instrument``,
    one data point per counter (attribute ``counter``). Does nothing without a
    MeterProvider (given, or the SDK's set globally)."""
    if meter_provider is None and not metrics_configured():
        return
    from opentelemetry.metrics import Observation, get_meter_provider

    from tracesieve import __version__

    provider = meter_provider if meter_provider is not None else get_meter_provider()
    meter = provider.get_meter("tracesieve", __version__)
    ref = weakref.ref(owner)

    def callback(options):
        target = ref()
        if target is None:
            return
        stats: Dict[str, Any] = target.stats()
        for key, value in stats.items():
            if isinstance(value, int) and not isinstance(value, bool):
                yield Observation(value, {"counter": key})

    meter.create_observable_counter(instrument, callbacks=[callback], unit="1", description=description)
