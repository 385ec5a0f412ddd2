"""Run a scenario through real TracerProviders: a three-service call chain
(frontend -> orders -> payments, context propagated over W3C headers), each
service with its own sampler built from the same policy, its error-window and
tail-sampling processors (deciding alone, or sharing decisions), into an
in-memory exporter, on a simulated clock. Then measure what was kept, what it
costs and what can still be seen."""

from __future__ import annotations

import copy
import math
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracesieve.cli.ids import SeededIds
from tracesieve.cli.scenarios import SERVICES, SLOW_SECONDS, Scenario
from tracesieve.estimate import adjusted_count, estimate
from tracesieve.pipeline import from_config
from tracesieve.sharing import LocalExchange
from tracesieve.tail import REASON, TailSamplingProcessor
from tracesieve.testing import SimClock

#: A trace is slow when its local root takes this long (simulated seconds).
LATENCY_THRESHOLD = 1.0
#: Seconds a trace waits after its local root ends; covers the slow origin's extra time.
DECISION_WAIT = 2.0
PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class Rig:
    """One simulated service."""

    name: str
    provider: TracerProvider
    sampler: Any
    tails: List[TailSamplingProcessor] = field(default_factory=list)
    #: Shared by the rigs of a shared-tail run.
    exchange: Optional[LocalExchange] = None

    @property
    def tracer(self):
        return self.provider.get_tracer("tracesieve.simulate")


#: What a configuration's tail section gives the simulated tail processors: its policy, what is
#: kept. Waits, queues and sharing are the simulation's own.
TAIL_POLICY = ("rules", "latency_threshold", "latency_probability", "budget_priorities", "budget_exempt")


def tail_policy(document: Dict[str, Any]) -> Dict[str, Any]:
    """The tail processors' policy settings: the configuration's, else the simulation's defaults."""
    section = document.get("tail") or {}
    return {"latency_threshold": LATENCY_THRESHOLD, **{key: section[key] for key in TAIL_POLICY if key in section}}


def policy_for(scenario: Scenario, document: Dict[str, Any], tail: bool) -> Dict[str, Any]:
    """The configured policy adjusted to the scenario: the budget sized to it
    (month and spike), or removed (an hour cannot show a month's pacing)."""
    doc = copy.deepcopy(document)
    if scenario.budget_spans is None:
        doc.pop("budget", None)
    elif "budget" in doc:
        doc["budget"].update(budget=scenario.budget_spans, cost_per_span=1.0, period=scenario.budget_period, timezone="UTC")
        doc["budget"].pop("state_path", None)
    doc["defer"] = tail
    doc["store"] = "memory"  # each simulated service its own state, on the simulated clock
    doc.pop("reload", None)
    doc.pop("tail", None)  # the tail processors' (tail_policy)
    return doc


def budget_note(scenario: Scenario, document: Dict[str, Any]) -> Optional[str]:
    """What the simulation does with the policy's own budget, which it never
    runs as given (see ``policy_for``); None when the policy has none."""
    budget = document.get("budget")
    if not isinstance(budget, dict) or "budget" not in budget:
        return None
    spans = float(budget["budget"]) / float(budget.get("cost_per_span", 1.0))
    given = f"{spans:,.0f} spans per {budget.get('period', 'month')}"
    if scenario.budget_spans is None:
        return (
            f"the policy's budget ({given}) is left out: {DESCRIPTION_SPANS[scenario.name]} cannot show its pacing; "
            "simulate month (or spike, for a daily budget) runs it, sized to the scenario"
        )
    return (
        f"the policy's budget ({given}) is sized to the scenario: {scenario.budget_spans:,} spans per "
        f"{scenario.budget_period} a service, a tenth of its requests"
    )


#: What each scenario without a budget of its own covers, for ``budget_note``.
DESCRIPTION_SPANS = {"traffic": "an hour", "errors": "forty minutes"}


def doc_stages(sampler: Any) -> List[str]:
    return [stage["stage"] for stage in sampler.resolved["stages"]]


def budget_status_of(sampler: Any) -> Optional[Dict[str, Any]]:
    """The sampler's budget status, or None when its policy has no budget stage."""
    status = getattr(sampler, "budget_status", None)
    if status is None:
        return None
    try:
        return status()
    except TypeError:  # a pipeline with no budget stage
        return None


def build_ours(scenario: Scenario, document: Dict[str, Any], clock: SimClock, exporter, approach: str, seed: int) -> List[Rig]:
    """The three services: head sampling only ("head"), with tail processors
    deciding alone ("tail"), or sharing their decisions ("shared")."""
    tail = approach != "head"
    exchange = LocalExchange() if approach == "shared" else None
    rigs = []
    for index, name in enumerate(SERVICES):
        sampler = from_config(policy_for(scenario, document, tail), clock=clock)
        provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": name}), id_generator=SeededIds(seed + index))
        if sampler.processor is not None:
            provider.add_span_processor(sampler.processor)
        rig = Rig(name, provider, sampler, exchange=exchange)
        if tail:
            processor = TailSamplingProcessor(
                exporter,
                clock=clock,
                decision_wait=DECISION_WAIT,
                trace_timeout=60.0,
                schedule_delay=3600,
                share=exchange,
                # Every span a service exports spends its budget, the tail's keeps included.
                budget=sampler if "budget" in doc_stages(sampler) else None,
                # Decided as the simulated clock runs, in this thread: the same on every run.
                start=False,
                **tail_policy(document),
            )
            provider.add_span_processor(processor)
            rig.tails.append(processor)
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        rigs.append(rig)
    return rigs


def build_naive(scenario: Scenario, clock: SimClock, exporter, seed: int) -> List[Rig]:
    """The tutorial's approach, in plain Python: every service draws on its own."""
    from tracesieve.policies import seed_policy
    from tracesieve.reference.seed import SeedPipelineSampler

    budget = scenario.budget_spans * 0.001 if scenario.budget_spans else 1e9
    rigs = []
    for index, name in enumerate(SERVICES):
        sampler = SeedPipelineSampler(seed_policy(), monthly_budget=budget, seed=seed + index, clock=clock, follow_parent=False)
        provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": name}), id_generator=SeededIds(seed + index))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        rigs.append(Rig(name, provider, sampler))
    return rigs


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def drive(
    rigs: List[Rig],
    scenario: Scenario,
    clock: SimClock,
    progress: Optional[Callable[[int], None]] = None,
    observe: Optional[Callable[[float], None]] = None,
) -> Dict[int, int]:
    """Send every request down the chain. Returns trace id -> request index."""
    traces: Dict[int, int] = {}
    tracers = [rig.tracer for rig in rigs]
    tails = [tail for rig in rigs for tail in rig.tails]
    exchange = rigs[0].exchange
    step = max(1, len(scenario.requests) // 100)
    for index, request in enumerate(scenario.requests):
        t = request.time
        clock.now = t
        root = tracers[0].start_span(f"GET {request.endpoint}", kind=SpanKind.SERVER, attributes=request.attributes, start_time=_ns(t))
        traces[root.get_span_context().trace_id] = index
        spans = [root]
        parent = root
        for depth, tracer in enumerate(tracers[1:], start=1):
            carrier: Dict[str, str] = {}
            PROPAGATOR.inject(carrier, context=set_span_in_context(parent))
            child = tracer.start_span(
                f"{SERVICES[depth]}.handle",
                context=PROPAGATOR.extract(carrier),
                kind=SpanKind.SERVER,
                attributes={"http.route": request.endpoint, "user.tier": request.tier},
                start_time=_ns(t + 0.001 * depth),
            )
            spans.append(child)
            parent = child
        slow_depth = SERVICES.index(request.slow) if request.slow else -1
        for depth in reversed(range(len(spans))):
            # Each service's own time comes after its callee returned; a slow
            # service makes itself and its callers slow, not its callees.
            end = t + request.duration * (1.0 - 0.2 * depth) + (SLOW_SECONDS if depth <= slow_depth else 0.0)
            clock.now = end
            if SERVICES[depth] in request.failing:
                spans[depth].set_status(Status(StatusCode.ERROR, "simulated failure"))
            spans[depth].end(end_time=_ns(end))
        if exchange is not None:
            exchange.step()
        for tail in tails:
            tail.step()
        if index % step == 0:
            if progress:
                progress(min(step, len(scenario.requests) - index))
            if observe:
                observe(t)
    clock.now = scenario.end + 3600
    if exchange is not None:
        exchange.step()
    for rig in rigs:
        for tail in rig.tails:
            tail.force_flush()
    # Budgets are read as their period (the scenario) ended: past its end a
    # status reads as the next period, which nothing has spent yet.
    clock.now = scenario.end - 0.001
    return traces


@dataclass
class Measured:
    """What one pacer/policy kept of the scenario."""

    label: str
    requests: int
    spans_total: int
    spans_kept: int
    #: Counted where each drop happens (the head sampler, the tail stage), not inferred.
    spans_dropped: int
    by_endpoint: Dict[str, Dict[str, float]]
    by_tier: Dict[str, Dict[str, float]]
    error_traces: int
    error_traces_whole: int
    slow_traces: int
    slow_traces_whole: int
    #: Spans kept per service.
    spans_by_service: Dict[str, int]
    #: Per service: requests per endpoint estimated from that service's kept spans alone.
    by_service: Dict[str, Dict[str, Dict[str, float]]]
    traces_seen: int
    traces_complete: int
    hours: List[Dict[str, float]]
    budget: Optional[Dict[str, Any]]
    decision_ns: float
    blind_hours: int
    boost: List[List[float]]
    #: Traces kept by a downstream service but not by the frontend (must be 0).
    orphans: int = 0
    #: Frontend spans kept by the budget's visibility floor (each stands for
    #: itself: th 0, certain given that nothing else was kept in its hour).
    floor_kept: int = 0
    #: Frontend root spans given probability 0 (the head at its limit with no room for the
    #: trickle, or a reserve that leaves it nothing).
    zero_probability: int = 0
    #: Frontend root spans the trickle kept at the budget's limit (each with its th).
    trickled: int = 0
    #: Frontend spans kept that say nothing of what they stand for (no th, no
    #: adjusted count): left out of the estimates (0 for tracesieve).
    unweighted: int = 0
    #: (time, spans counted against the budget) through the run.
    spend: List[List[float]] = field(default_factory=list)
    #: Per service with a budget: its budget, the spans it exported, those
    #: counted against it, and the tail keeps it refused by kind.
    budget_by_service: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    #: Demand and keeps per minute, for runs shorter than three hours (whose
    #: hourly series would be one or two points, too few for a chart's line).
    minutes: List[Dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__.items())


def measure(
    label: str, scenario: Scenario, rigs: List[Rig], exporter: InMemorySpanExporter, traces: Dict[int, int], boost: List[List[float]]
) -> Measured:
    spans = exporter.get_finished_spans()
    requests = scenario.requests
    by_trace: Dict[int, set] = defaultdict(set)
    #: Each service's span of each kept trace (one span per service and request).
    service_spans: Dict[str, Dict[int, Any]] = defaultdict(dict)
    for span in spans:
        service = str(span.resource.attributes.get("service.name"))
        by_trace[span.context.trace_id].add(service)
        service_spans[service][span.context.trace_id] = span
    roots = service_spans[SERVICES[0]]
    truth_endpoint = Counter(r.endpoint for r in requests)
    truth_tier = Counter(r.tier for r in requests)
    kept_endpoint: Counter = Counter()
    kept_tier: Counter = Counter()
    # Kept by probability (not kept for an error): the samples behind an estimate.
    sampled_endpoint: Counter = Counter()
    sampled_tier: Counter = Counter()
    hours = int((scenario.end - scenario.start) // 3600) or 1
    demand = [0] * hours
    kept_hour = [0] * hours
    minute_count = max(1, math.ceil((scenario.end - scenario.start) / 60)) if scenario.end - scenario.start < 3 * 3600 else 0
    demand_minute = [0] * minute_count
    kept_minute = [0] * minute_count
    for r in requests:
        demand[min(hours - 1, int((r.time - scenario.start) // 3600))] += 1
        if minute_count:
            demand_minute[min(minute_count - 1, int((r.time - scenario.start) // 60))] += 1
    unweighted = 0
    #: The kept roots of each endpoint and of each tier, whose counts estimate them.
    endpoint_roots: Dict[str, List[Any]] = defaultdict(list)
    tier_roots: Dict[str, List[Any]] = defaultdict(list)
    for trace_id, span in roots.items():
        index = traces.get(trace_id)
        if index is None:
            continue
        request = requests[index]
        weight = _weight(span)
        kept_endpoint[request.endpoint] += 1
        kept_tier[request.tier] += 1
        kept_hour[min(hours - 1, int((request.time - scenario.start) // 3600))] += 1
        if minute_count:
            kept_minute[min(minute_count - 1, int((request.time - scenario.start) // 60))] += 1
        if weight is None:
            unweighted += 1
            continue
        endpoint_roots[request.endpoint].append(span)
        tier_roots[request.tier].append(span)
        if _by_probability(span, weight):
            sampled_endpoint[request.endpoint] += 1
            sampled_tier[request.tier] += 1
    error_ids = [tid for tid, i in traces.items() if requests[i].error]
    whole = sum(1 for tid in error_ids if len(by_trace.get(tid, ())) == len(SERVICES))
    slow_ids = [tid for tid, i in traces.items() if requests[i].slow]
    slow_whole = sum(1 for tid in slow_ids if len(by_trace.get(tid, ())) == len(SERVICES))
    by_service = {}
    for service in SERVICES:
        estimated: Dict[str, float] = defaultdict(float)
        sampled: Counter = Counter()
        for trace_id, span in service_spans[service].items():
            index = traces.get(trace_id)
            weight = _weight(span)
            if index is None or weight is None:
                continue
            endpoint = requests[index].endpoint
            estimated[endpoint] += weight
            sampled[endpoint] += _by_probability(span, weight)
        by_service[service] = {
            key: {
                "requests": truth_endpoint[key],
                "kept_by_probability": sampled[key],
                "estimated": round(estimated[key], 1),
                "error": (estimated[key] - truth_endpoint[key]) / truth_endpoint[key],
            }
            for key in sorted(truth_endpoint)
        }
    complete = sum(1 for services in by_trace.values() if len(services) == len(SERVICES))

    def table(truth: Counter, kept: Counter, sampled: Counter, roots: Dict[str, List[Any]]) -> Dict[str, Dict[str, float]]:
        # Read from the kept spans alone, as a user would (one root per trace).
        estimates = {key: estimate(roots[key], _weight) for key in truth}
        return {
            key: {
                "requests": truth[key],
                "kept": kept[key],
                "kept_by_probability": sampled[key],
                "rate": kept[key] / truth[key] if truth[key] else 0.0,
                "estimated": round(estimates[key].total, 1),
                "error": (estimates[key].total - truth[key]) / truth[key] if truth[key] else 0.0,
                "standard_error": round(estimates[key].standard_error, 1),
            }
            for key in sorted(truth)
        }

    budget = budget_status_of(rigs[0].sampler)
    seed_budget = getattr(rigs[0].sampler, "_budget", None)
    if budget is None and seed_budget is not None and scenario.budget_spans:
        used = min(seed_budget.current_span_count, seed_budget.monthly_span_limit)
        budget = {"used_spans": used, "budget_spans": scenario.budget_spans, "percent_used": 100.0 * used / scenario.budget_spans}
    blind = sum(1 for d, k in zip(demand, kept_hour) if d and not k) if scenario.budget_spans else 0
    floor_kept = budget["floor_spans"] if budget and "floor_spans" in budget else 0
    budget_by_service = {}
    for rig in rigs:
        status = budget_status_of(rig.sampler) if scenario.budget_spans else None
        if status is None:
            continue
        refused = {kind: counts["refused_spans"] for kind, counts in status["tail"].items()}
        budget_by_service[rig.name] = {
            "budget_spans": status["budget_spans"],
            "exported_spans": len(service_spans[rig.name]),
            "counted_spans": status["used_spans"],
            "burst_spans": status["burst_spans"],
            "tail_refused_spans": refused,
            "keep_rule_spans": status["keep_rule_spans"],
            "keep_rules_capped": status["keep_rules_capped"],
        }
    frontend = {tid for tid, services in by_trace.items() if SERVICES[0] in services}
    orphans = sum(1 for tid, services in by_trace.items() if tid not in frontend)
    return Measured(
        label=label,
        requests=len(requests),
        spans_total=len(requests) * len(SERVICES),
        spans_kept=len(spans),
        spans_dropped=sum(dropped_by(rig) for rig in rigs),
        by_endpoint=table(truth_endpoint, kept_endpoint, sampled_endpoint, endpoint_roots),
        by_tier=table(truth_tier, kept_tier, sampled_tier, tier_roots),
        error_traces=len(error_ids),
        error_traces_whole=whole,
        slow_traces=len(slow_ids),
        slow_traces_whole=slow_whole,
        spans_by_service={service: len(service_spans[service]) for service in SERVICES},
        by_service=by_service,
        traces_seen=len(by_trace),
        traces_complete=complete,
        hours=[{"hour": h, "demand": demand[h], "kept": kept_hour[h]} for h in range(hours)],
        minutes=[{"minute": m, "demand": demand_minute[m], "kept": kept_minute[m]} for m in range(minute_count)],
        budget=budget,
        decision_ns=decision_cost(rigs[0].sampler, requests),
        blind_hours=blind,
        boost=boost,
        orphans=orphans,
        floor_kept=floor_kept,
        zero_probability=budget.get("zero_probability_spans", 0) if budget else 0,
        trickled=budget.get("trickle_spans", 0) if budget else 0,
        unweighted=unweighted,
        budget_by_service=budget_by_service,
    )


def dropped_by(rig: Rig) -> int:
    """Spans this service dropped, counted where it happened: by its head
    sampler (drops it did not defer to the tail), and by its tail stage
    (traces and late spans dropped, kept spans the export path lost)."""
    stats = rig.sampler.stats()
    dropped = stats["dropped"] - stats.get("deferred", 0)
    for tail in rig.tails:
        t = tail.stats()
        dropped += t["spans_dropped"] + t["late_dropped"] + t["queue_full_dropped"] + t["spans_export_failed"] + t["spans_lost_at_shutdown"]
    return dropped


def _weight(span) -> Optional[float]:
    """How many requests a kept span stands for, read from the span alone: the
    tail's adjusted count (1 for errors and rules, kept or announced), else
    1/p from ``th`` (th 0 for the budget's floor: 1); None when the span says
    nothing (the tutorial's approach records no probability for its forced keeps)."""
    rate = span.attributes.get("sampling.rate")
    if rate:
        return 1.0 / float(rate)  # the tutorial records its rule's rate
    return adjusted_count(span)


def _by_probability(span, weight: Optional[float]) -> bool:
    """Kept by a probability below 1, not by the tail: a sample behind an estimate."""
    return weight is not None and weight > 1.0 and REASON not in span.attributes


def decision_cost(sampler, requests, sample: int = 3000) -> float:
    """Nanoseconds per root-span decision of this sampler, on the scenario's requests."""
    chosen = requests[:sample]
    rng = random.Random(5)
    calls = [(rng.getrandbits(128), f"GET {r.endpoint}", r.attributes) for r in chosen]
    should_sample = sampler.should_sample
    server = SpanKind.SERVER
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for trace_id, name, attributes in calls:
            should_sample(None, trace_id, name, server, attributes, ())
        best = min(best, time.perf_counter() - started)
    return best / max(1, len(calls)) * 1e9
