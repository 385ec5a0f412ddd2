"""Three services in separate processes (frontend -> orders -> payments),
each with its own TracerProvider, sharing one budget through Redis. The
harness sends each request through the chain in time order, carrying the W3C
trace context (traceparent and tracestate) from service to service as HTTP
headers would; each service steps its fleet link every simulated minute."""

from __future__ import annotations

import multiprocessing
import random
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from tracesieve.testing import SimClock

DAY = 86_400.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
#: Spans each service makes per request (one here, two in orders, three in payments).
SPANS = {"frontend": 1, "orders": 2, "payments": 3}
SYNC = 60.0


def _service(name: str, url: str, budget: int, seed: int, conn: Any) -> None:
    from opentelemetry import context as otel_context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from tracesieve import BudgetSampler, fleet

    class SeededIds(RandomIdGenerator):
        def __init__(self) -> None:
            self.rng = random.Random(seed)

        def generate_trace_id(self) -> int:
            return self.rng.getrandbits(128) | 1

        def generate_span_id(self) -> int:
            return self.rng.getrandbits(64) | 1

    clock = SimClock(START)
    sampler = BudgetSampler(1.0, budget=budget, period="day", downstream="follow", store=url, clock=clock)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(name)
    propagator = TraceContextTextMapPropagator()
    next_sync = START
    while True:
        message = conn.recv()
        if message is None:
            break
        now, carrier = message
        clock.now = now
        if now >= next_sync:
            fleet.sync(sampler)
            next_sync = now + SYNC
        parent = propagator.extract(carrier) if carrier else otel_context.Context()
        out: Dict[str, str] = {}
        for i in range(SPANS[name]):
            with tracer.start_as_current_span(f"{name} {i}", context=parent):
                if i == 0:
                    propagator.inject(out)
        conn.send(out)
    clock.now = START + DAY - 1.0
    fleet.sync(sampler)
    kept: Dict[str, int] = {}
    for span in exporter.get_finished_spans():
        trace = f"{span.context.trace_id:032x}"
        kept[trace] = kept.get(trace, 0) + 1
    conn.send((kept, sampler.budget_status()))
    provider.shutdown()


@dataclass
class ChainDay:
    budget: int
    requests: int
    kept_by_service: Dict[str, Dict[str, int]]
    status_by_service: Dict[str, Dict[str, Any]]

    @property
    def kept_spans(self) -> int:
        return sum(sum(kept.values()) for kept in self.kept_by_service.values())

    def whole_traces(self) -> Tuple[int, int]:
        """(traces kept by the frontend, of them those kept whole in every service)."""
        roots = self.kept_by_service["frontend"]
        whole = sum(1 for trace in roots if all(self.kept_by_service[name].get(trace, 0) == count for name, count in SPANS.items()))
        return len(roots), whole


def run_chain_day(url: str, budget: int, demand: float, seed: int = 1) -> ChainDay:
    """Offer ``demand`` x ``budget`` spans over a day (6 per request), evenly spaced."""
    requests = int(demand * budget / sum(SPANS.values()))
    context = multiprocessing.get_context("spawn")
    pipes: List[Any] = []
    processes = []
    for i, name in enumerate(SPANS):
        ours, theirs = context.Pipe()
        processes.append(context.Process(target=_service, args=(name, url, budget, seed + i, theirs)))
        pipes.append(ours)
    for process in processes:
        process.start()
    for r in range(requests):
        now = START + (r + 0.5) * DAY / requests
        carrier: Dict[str, str] = {}
        for pipe in pipes:
            pipe.send((now, carrier))
            carrier = pipe.recv()
    results = {}
    for name, pipe in zip(SPANS, pipes):
        pipe.send(None)
        results[name] = pipe.recv()
    for process in processes:
        process.join(30)
    return ChainDay(
        budget=budget,
        requests=requests,
        kept_by_service={name: results[name][0] for name in SPANS},
        status_by_service={name: results[name][1] for name in SPANS},
    )
