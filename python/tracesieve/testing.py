"""Testing sampling policies without waiting: a clock the test moves (pass it
as ``clock=``), a calendar month of traffic with a daily wave, optionally with
a spike day, run in seconds against any decision function, and two services
side by side to see whether a mix of samplers keeps traces whole."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

HOUR = 3600.0


class SimClock:
    """A clock the test moves; pass it as ``clock=``.

    It reads two times, as the system does: the wall clock (calling the clock
    gives it) and a monotonic clock (``monotonic()``). Setting ``now`` or
    calling ``advance`` moves both, as time passing does; ``jump`` moves only
    the wall clock, as an NTP step or a clock set by hand does; ``glitch``
    makes the next wall reading (only that one) return a wrong value.
    """

    def __init__(self, now: float):
        self._offset = float(now)
        self._monotonic = 0.0
        self._glitch: Optional[float] = None

    def __call__(self) -> float:
        if self._glitch is not None:
            reading, self._glitch = self._glitch, None
            return reading
        return self._monotonic + self._offset

    def monotonic(self) -> float:
        return self._monotonic

    @property
    def now(self) -> float:
        """The wall time (without a pending glitch)."""
        return self._monotonic + self._offset

    @now.setter
    def now(self, value: float) -> None:
        # Time passes (or, set backwards, the simulation rewinds): both clocks move.
        self._monotonic += float(value) - self.now

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds

    def jump(self, seconds: float) -> None:
        """The wall clock steps by ``seconds`` (either way); monotonic time does not."""
        self._offset += seconds

    def glitch(self, reading: float) -> None:
        """The next wall reading returns ``reading``, once."""
        self._glitch = float(reading)


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


@dataclass
class PacingCase:
    """A period of traffic against a budget, with what production does to a
    pacer along the way (restarts, reloads, wall-clock jumps). Times are
    seconds from the start of the period."""

    name: str
    budget: int
    #: Requests over the period as a multiple of the budget, spread by the daily wave...
    demand: float = 10.0
    #: ...or a flat number of requests per second instead.
    rate: Optional[float] = None
    period: str = "month"
    year: int = 2026
    month: int = 1
    #: (day, factor): that day's traffic is multiplied by the factor.
    spike: Optional[Tuple[int, float]] = None
    #: (start, end, factor): the traffic between two times is multiplied by the factor.
    surge: Optional[Tuple[float, float, float]] = None
    #: The process starts this long into the period (a cold start mid-period).
    start: float = 0.0
    #: Simulate this long (default: to the period's end).
    duration: Optional[float] = None
    #: Restart the process this often; with a state file, it restores its spending.
    restart_every: Optional[float] = None
    state_file: bool = True
    #: Keep the budget's record on the host (``store = "host"``: what a budget
    #: does by default on the real clock) instead of a state file or memory.
    host_record: bool = False
    #: Times at which the configuration is reloaded (the inner rate changes 1.0 <-> 0.9).
    reloads: Tuple[float, ...] = ()
    #: (time, reading): the wall clock reads `reading` once, at that time.
    glitches: Tuple[Tuple[float, float], ...] = ()
    #: (time, seconds): the wall clock steps by that much at that time, for good.
    steps: Tuple[Tuple[float, float], ...] = ()
    #: Requests arrive with sampled parents from another service (whose spans this budget paces).
    downstream: bool = False
    spans_per_trace: int = 1
    seed: int = 1


@dataclass
class PacingResult:
    case: PacingCase
    offered: int
    #: Spans kept (the harness's own count, every process and period included).
    kept: int
    #: Spans kept in the period the case started in.
    kept_in_period: int
    blind_hours: int
    hours: int
    #: The most spans ever counted above the calendar's even share of the budget.
    worst_excess: float
    burst: float
    kept_by_hour: List[int]
    #: Kept downstream spans whose th was below their parent's (must be 0).
    inconsistent: int = 0
    seconds: float = 0.0
    #: What the starts with no record could spend at once, in all (the documented
    #: bound on how far restarts without a record add up above the calendar).
    start_allowances: float = 0.0

    @property
    def used(self) -> float:
        """The share of the budget kept in the case's first period."""
        return self.kept_in_period / self.case.budget


def run_pacing(case: PacingCase, workdir: Optional[str] = None) -> PacingResult:
    """Run ``case`` through a real budget pipeline on a simulated clock and
    measure it (see ``benches/pacing.py`` for the cases the docs report).
    The run's files (its document, state file and host record) go in
    ``workdir``, kept; without one, in a temporary folder removed afterwards."""
    import tempfile

    if workdir is not None:
        return _run_pacing_in(case, workdir)
    with tempfile.TemporaryDirectory(prefix="tracesieve-pacing-") as folder:
        return _run_pacing_in(case, folder)


def _run_pacing_in(case: PacingCase, folder: str) -> PacingResult:
    import json
    import time as _time

    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from tracesieve import _core
    from tracesieve.pipeline import from_config
    from tracesieve.samplers import ProbabilitySampler

    began = _time.perf_counter()
    period_start = month_start(case.year, case.month)
    length = days_in_month(case.year, case.month) * 24 * HOUR
    if case.period == "day":
        length = 24 * HOUR
    end = case.duration + case.start if case.duration is not None else length
    config = f"{folder}/pacing.json"
    state = f"{folder}/budget.json"
    record_url = f"host://{folder}#pacing"
    clock = SimClock(period_start + case.start)

    def document(rate: float, with_state: bool) -> Dict[str, Any]:
        budget: Dict[str, Any] = {"budget": case.budget, "period": case.period, "timezone": "UTC"}
        if with_state:
            budget.update(state_path=state, save_interval=10.0**9)
        document: Dict[str, Any] = {"probability": {"rate": rate}, "budget": budget}
        if case.host_record:
            document["store"] = record_url  # the host record, in this run's own state directory
        return document

    inner = [1.0]

    def build(with_state: bool) -> Any:
        with open(config, "w", encoding="utf-8") as handle:
            json.dump(document(inner[0], with_state), handle)
        return from_config(config, clock=clock)

    sampler = build(case.state_file)
    burst = sampler.budget_status()["burst_spans"]

    def start_bound(status: Dict[str, Any]) -> float:
        # A start with no record may spend its allowance, or keep one whole
        # trace for its hour's visibility floor, whichever is more.
        allowance = status["start_allowance"]
        return max(allowance, case.spans_per_trace) if allowance > 0 else 0.0

    allowances = start_bound(sampler.budget_status())
    rng = random.Random(case.seed)
    upstream = ProbabilitySampler(min(1.0, case.demand * case.budget / max(1, _requests_in(case, length))) if case.downstream else 1.0)
    hours = int((end - case.start) // HOUR) or 1
    kept_by_hour = [0] * hours
    offered_by_hour = [0] * hours
    kept = kept_in_period = offered = inconsistent = 0
    worst = float("-inf")
    # (time, kind, reading or seconds): restarts and reloads carry no value.
    events: List[Tuple[float, str, float]] = sorted(
        [(t, "restart", 0.0) for t in _every(case.restart_every, case.start, end)]
        + [(t, "reload", 0.0) for t in case.reloads]
        + [(t, "glitch", reading) for t, reading in case.glitches]
        + [(t, "step", seconds) for t, seconds in case.steps]
    )
    child_parent = None
    now = case.start
    for t in _arrivals(case, length, end, rng):
        while events and events[0][0] <= t:
            event = events.pop(0)
            clock.advance(event[0] - now)
            now = event[0]
            if event[1] == "restart":
                if case.state_file:
                    sampler.save_state()
                sampler.close()
                sampler = build(case.state_file)
                allowances += start_bound(sampler.budget_status())
            elif event[1] == "reload":
                inner[0] = 0.9 if inner[0] == 1.0 else 1.0
                with open(config, "w", encoding="utf-8") as handle:
                    json.dump(document(inner[0], case.state_file), handle)
                sampler.reload()
            elif event[1] == "glitch":
                clock.glitch(event[2])
            else:
                clock.jump(event[2])
        clock.advance(t - now)
        now = t
        hour = min(hours - 1, int((t - case.start) // HOUR))
        trace_id = rng.getrandbits(128)
        context = None
        parent_th = None
        if case.downstream:
            decided = upstream.should_sample(None, trace_id, "frontend")
            if not decided.decision.is_sampled():
                continue
            ot = decided.trace_state.get("ot") if decided.trace_state is not None else None
            parent_th = _core.read_ot(ot)[0] if ot else None
            parent = SpanContext(trace_id, rng.getrandbits(64) or 1, True, TraceFlags(TraceFlags.SAMPLED), decided.trace_state)
            context = set_span_in_context(NonRecordingSpan(parent))
        offered += 1
        offered_by_hour[hour] += 1
        result = sampler.should_sample(context, trace_id, "GET")
        if not result.decision.is_sampled():
            continue
        spans = 1
        if case.spans_per_trace > 1:
            local = SpanContext(trace_id, 7, False, TraceFlags(TraceFlags.SAMPLED), result.trace_state)
            child_parent = set_span_in_context(NonRecordingSpan(local))
            spans += sum(
                sampler.should_sample(child_parent, trace_id, "child").decision.is_sampled() for _ in range(case.spans_per_trace - 1)
            )
        if parent_th is not None:
            own = _core.read_ot(result.trace_state.get("ot") or "")[0]
            inconsistent += own is not None and own < parent_th
        kept += spans
        kept_by_hour[hour] += spans
        if t < length:
            kept_in_period += spans
            worst = max(worst, kept_in_period - case.budget * t / length)
    sampler.close()
    blind = sum(1 for demand, k in zip(offered_by_hour, kept_by_hour) if demand and not k)
    return PacingResult(
        case,
        offered,
        kept,
        kept_in_period,
        blind,
        hours,
        worst if worst != float("-inf") else 0.0,
        burst,
        kept_by_hour,
        inconsistent,
        _time.perf_counter() - began,
        allowances,
    )


def _every(interval: Optional[float], start: float, end: float) -> List[float]:
    if not interval:
        return []
    times, t = [], start + interval
    while t < end:
        times.append(t)
        t += interval
    return times


def _requests_in(case: PacingCase, length: float) -> int:
    return int(case.rate * length) if case.rate else int(case.demand * case.budget)


def _arrivals(case: PacingCase, length: float, end: float, rng: random.Random):
    """Request times from `case.start` to `end`: flat at `rate`, or the daily wave times `demand`."""
    surge = case.surge
    if case.rate:
        step = 1.0 / case.rate
        t = case.start
        while t < end:
            yield t
            factor = surge[2] if surge and surge[0] <= t < surge[1] else 1.0
            t += step / factor
        return
    hours = int(length // HOUR)
    weights = [daily_wave(h % 24) for h in range(hours)]
    per_weight = case.demand * case.budget / sum(weights)
    first = int(case.start // HOUR)
    for hour in range(first, int(-(-end // HOUR))):
        weight = weights[hour % hours] * (case.spike[1] if case.spike and hour // 24 + 1 == case.spike[0] else 1.0)
        if surge and surge[0] <= hour * HOUR < surge[1]:
            weight *= surge[2]
        count = round(per_weight * weight)
        for i in range(count):
            t = hour * HOUR + i * HOUR / count
            if case.start <= t < end:
                yield t


DAY = 24 * HOUR
MONTH_JAN = 31 * DAY


def pacing_cases() -> Dict[str, PacingCase]:
    """The cases the pacing docs report (``python benches/pacing.py``), each a
    target the test suite asserts."""
    jan10 = 9 * DAY
    cases = [
        PacingCase("0.5x demand", 10_000, demand=0.5),
        PacingCase("2x demand", 10_000, demand=2),
        PacingCase("10x demand", 10_000, demand=10),
        PacingCase("100x demand", 10_000, demand=100),
        PacingCase("10x, 3-span traces", 30_000, demand=10, spans_per_trace=3),
        PacingCase("10x + 20x spike on day 15", 10_000, demand=10, spike=(15, 20.0)),
        PacingCase("cold start on 1 Jan, 1,000 req/s, first minute", 100_000, rate=1000, duration=60),
        PacingCase("cold start on 10 Jan, 1,000 req/s, first minute", 100_000, rate=1000, start=jan10, duration=60),
        PacingCase("reload 1.0 -> 0.9 at 1,000 req/s", 100_000, rate=1000, start=jan10, duration=2 * HOUR, reloads=(jan10 + HOUR,)),
        PacingCase("restart every 6 h, state file, 1 req/s", 10_000, rate=1, restart_every=6 * HOUR),
        PacingCase("restart every 10 min, state file, 1 req/s", 10_000, rate=1, restart_every=600),
        PacingCase(
            "first start on 5 Jan, host record, 2,000 spans in 2 s",
            10**9,
            rate=1000,
            start=4 * DAY,
            duration=2,
            state_file=False,
            host_record=True,
        ),
        PacingCase(
            "first start on 5 Jan, no record (memory), 2,000 spans in 2 s", 10**9, rate=1000, start=4 * DAY, duration=2, state_file=False
        ),
        PacingCase("restart every 10 min, host record, 1 req/s", 10_000, rate=1, restart_every=600, state_file=False, host_record=True),
        PacingCase("restart every 10 min, no record (memory), 1 req/s", 10_000, rate=1, restart_every=600, state_file=False),
        PacingCase(
            "one reading x1000 on 10 Jan, then 10 days at 10x",
            100_000,
            demand=10,
            start=jan10,
            duration=10 * DAY,
            glitches=((jan10 + HOUR, (month_start(2026, 1) + jan10 + HOUR) * 1000),),
        ),
        PacingCase(
            "40 days ahead for 5 s on 10 Jan, to 10 Feb",
            100_000,
            demand=10,
            start=jan10,
            duration=31 * DAY,
            steps=((jan10 + HOUR, 40 * DAY), (jan10 + HOUR + 5, -40 * DAY)),
        ),
        PacingCase(
            "no step, 10x surge for an hour on 10 Jan",
            100_000,
            demand=10,
            start=jan10,
            duration=DAY,
            surge=(jan10 + 2 * HOUR, jan10 + 3 * HOUR, 10.0),
        ),
        PacingCase(
            "NTP steps back an hour on 10 Jan, 10x surge",
            100_000,
            demand=10,
            start=jan10,
            duration=DAY,
            surge=(jan10 + 2 * HOUR, jan10 + 3 * HOUR, 10.0),
            steps=((jan10 + 2 * HOUR, -HOUR),),
        ),
        PacingCase("no step, first day after start", 100_000, demand=10, start=jan10, duration=DAY),
        PacingCase("NTP steps back an hour right after start", 100_000, demand=10, start=jan10, duration=DAY, steps=((jan10 + 1, -HOUR),)),
        PacingCase("1,000 a month at 1 req/s", 1_000, rate=1),
        PacingCase("1,500 a month at 1 req/s", 1_500, rate=1),
        PacingCase("2,000 a month at 1 req/s", 2_000, rate=1),
        PacingCase("500 a month at 1 req/s (below one an hour)", 500, rate=1),
        PacingCase("downstream: callers keep 10x the budget", 10_000, demand=10, downstream=True),
    ]
    return {case.name: case for case in cases}


def pacing_table(results: List[PacingResult]) -> str:
    """The table ``benches/pacing.py`` prints and docs/pacing.md shows: one row
    per case, each column as wide as its widest cell."""
    header = ["case", "budget", "kept", "used", "blind h", "worst excess", "burst"]
    rows = [
        [
            result.case.name,
            f"{result.case.budget:,}",
            f"{result.kept:,}",
            f"{result.used:.1%}",
            f"{result.blind_hours} of {result.hours}",
            f"{result.worst_excess:+.1f}",
            f"{result.burst:.0f}",
        ]
        for result in results
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) if column == 0 else cell.rjust(width) for column, (cell, width) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    )
