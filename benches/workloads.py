"""Shared workloads for the benchmarks: fixed seeds, the same inputs for every
implementation, so the ratio between rows of one group is what we quote."""

from __future__ import annotations

import random
from typing import List, Optional, Tuple

import pytest
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from tracesieve import ProbabilitySampler

BATCH = 1000


def sampling_mix(rate: float, seed: int = 11) -> List[Tuple[Optional[Context], int]]:
    """Half root spans, half children of parents that a sampler at `rate` decided
    (so ~rate of the parents are sampled and carry `th`), as a service sees them."""
    rng = random.Random(seed)
    decider = ProbabilitySampler(rate)
    calls: List[Tuple[Optional[Context], int]] = []
    for i in range(BATCH):
        trace_id = rng.getrandbits(128)
        if i % 2 == 0:
            calls.append((None, trace_id))
            continue
        result = decider.should_sample(None, trace_id, "parent")
        flags = TraceFlags(TraceFlags.SAMPLED if result.decision.is_sampled() else TraceFlags.DEFAULT)
        parent = SpanContext(trace_id, rng.getrandbits(64), is_remote=i % 4 == 1, trace_flags=flags, trace_state=result.trace_state)
        calls.append((set_span_in_context(NonRecordingSpan(parent)), trace_id))
    return calls


def mix_runner(should_sample, calls, attributes=None):
    """One benchmark round: every call of the mix through `should_sample`."""

    def run():
        for ctx, trace_id in calls:
            should_sample(ctx, trace_id, "GET /api/order", None, attributes, ())

    return run


@pytest.fixture(scope="session")
def mix_10pct():
    return sampling_mix(0.1)


@pytest.fixture(autouse=True)
def clean_heap():
    """Start every benchmark from a collected heap, so garbage left by the
    previous one (kept spans) does not bill the next."""
    import gc

    gc.collect()
    yield


def deferred_traces(failing_every: int = 0) -> list:
    """333 fresh 3-span traces, recorded but not sampled (a head sampler with
    defer=True dropped them): what the tail buffers and decides on. With
    ``failing_every=n``, every n-th trace has a failing child."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Status, StatusCode

    tracer = TracerProvider(sampler=ProbabilitySampler(0.0, defer=True)).get_tracer("bench")
    spans = []
    for index in range(BATCH // 3):
        root = tracer.start_span("GET /api/order", attributes={"http.route": "/api/order"})
        context = set_span_in_context(root)
        for name in ("db.query", "cache.get"):
            child = tracer.start_span(name, context=context)
            if failing_every and index % failing_every == 0 and name == "db.query":
                child.set_status(Status(StatusCode.ERROR))
            child.end()
            spans.append(child)
        root.end()
        spans.append(root)
    return spans
