"""Testing sampling policies without waiting: a clock the test moves (pass it
as ``clock=``), a calendar month of traffic with a daily wave, optionally with
a spike day, run in seconds against any decision function, and two services
side by side to see whether a mix of samplers keeps traces whole."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, List, Optional, Tuple

HOUR = 3600.0


class SimClock:
    """A clock the simulation moves; pass it as ``clock=`` to samplers."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def daily_wave(hour_of_day: int) -> float:
    """Relative demand of an hour of the day: peak mid-afternoon, trough at night (1.8 : 0.2)."""
    return 1.0 + 0.8 * math.sin((hour_of_day - 9) * 2 * math.pi / 24)


@dataclass
class MonthResult:
    budget_spans: int
    offered: int
    kept: int
    kept_by_hour: List[int] = field(default_factory=list)
    #: Hours (from the start of the month) in which the budget first ran out, or None.
    exhausted_at_hour: Optional[int] = None

    @property
    def utilisation(self) -> float:
        return self.kept / self.budget_spans

    @property
    def blind_hours(self) -> int:
        return sum(1 for kept in self.kept_by_hour if kept == 0)

    @property
    def exhausted_day(self) -> Optional[float]:
        """Day of the month (1-based, fractional) when the budget ran out."""
        return None if self.exhausted_at_hour is None else 1 + self.exhausted_at_hour / 24


def month_start(year: int, month: int) -> float:
    return datetime(year, month, 1, tzinfo=timezone.utc).timestamp()


def days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return (following - datetime(year, month, 1, tzinfo=timezone.utc)).days


def run_month(
    decide: Callable[[int], bool],
    clock: SimClock,
    budget_spans: int,
    demand: float,
    year: int = 2026,
    month: int = 1,
    spike: Optional[Tuple[int, float]] = None,
    seed: int = 1,
    used: Optional[Callable[[], int]] = None,
) -> MonthResult:
    """Offer ``demand`` x ``budget_spans`` root spans over the month, spread by
    the daily wave (times ``spike[1]`` on day ``spike[0]``), each decided by
    ``decide(trace_id)`` with the clock set to its start time."""
    start = month_start(year, month)
    hours = days_in_month(year, month) * 24
    weights = [daily_wave(h % 24) * (spike[1] if spike and h // 24 + 1 == spike[0] else 1.0) for h in range(hours)]
    per_weight = demand * budget_spans / sum(daily_wave(h % 24) for h in range(hours))
    rng = random.Random(seed)
    result = MonthResult(budget_spans=budget_spans, offered=0, kept=0)
    for hour, weight in enumerate(weights):
        count = round(per_weight * weight)
        kept = 0
        for i in range(count):
            clock.now = start + hour * HOUR + i * HOUR / count
            if decide(rng.getrandbits(128)):
                kept += 1
        result.offered += count
        result.kept += kept
        result.kept_by_hour.append(kept)
        spent = used() if used else result.kept
        if result.exhausted_at_hour is None and spent >= budget_spans:
            result.exhausted_at_hour = hour + 1
    if used:
        result.kept = used()
    return result


@dataclass
class Wholeness:
    """What two services kept of the same traces."""

    traces: int
    kept_upstream: int
    kept_downstream: int
    #: Kept by both: whole across the two services.
    whole: int
    #: Kept downstream although upstream dropped them: fragments without their caller.
    orphans: int

    @property
    def whole_fraction(self) -> float:
        """Of the traces kept upstream, the fraction kept whole."""
        return self.whole / self.kept_upstream if self.kept_upstream else 1.0


def whole_traces(upstream: Any, downstream: Any, traces: int = 20_000, seed: int = 1) -> Wholeness:
    """Send ``traces`` requests through two services, each its own
    ``TracerProvider`` with its own sampler, the context carried between them
    in W3C headers as over HTTP, and count what each kept."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import set_span_in_context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    class Ids(IdGenerator):
        def __init__(self) -> None:
            self._random = random.Random(seed)

        def generate_span_id(self) -> int:
            return self._random.getrandbits(64) or 1

        def generate_trace_id(self) -> int:
            return self._random.getrandbits(128) or 1

    propagator = TraceContextTextMapPropagator()
    kept = []
    tracers = []
    for sampler, ids in ((upstream, Ids()), (downstream, None)):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler, id_generator=ids) if ids else TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracers.append(provider.get_tracer("tracesieve.testing"))
        kept.append(exporter)
    for _ in range(traces):
        root = tracers[0].start_span("frontend")
        carrier: dict = {}
        propagator.inject(carrier, context=set_span_in_context(root))
        tracers[1].start_span("backend", context=propagator.extract(carrier)).end()
        root.end()
    up = {s.context.trace_id for s in kept[0].get_finished_spans()}
    down = {s.context.trace_id for s in kept[1].get_finished_spans()}
    return Wholeness(traces, len(up), len(down), len(up & down), len(down - up))
