"""Shared decisions on native spans through a real redis-server: a caller's
keep reaches a service that already dropped (and retained) its spans, even
when Redis was paused for seconds in between; no chain-depth rule for
``decision_wait``."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracesieve import ProbabilitySampler, TracerProvider
from tracesieve.local_redis import RedisServer
from tracesieve.tail import REASON


def service(url: str, name: str) -> Tuple[TracerProvider, Any, InMemorySpanExporter]:
    """One service of the fleet ``native`` (both in this process, sharing through Redis all the same)."""
    provider = TracerProvider(
        sampler=ProbabilitySampler(0.0, defer=True),
        decision_wait=0.1,
        share=f"{url}#native",
        share_interval=0.02,
        shutdown_on_exit=False,
    )
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, provider.get_tracer(name), exporter


def call(frontend: Any, backend: Any, fail: bool) -> int:
    """A frontend request calling the backend (the traceparent across), the
    frontend failing after the backend answered."""
    propagator = TraceContextTextMapPropagator()
    with frontend.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        carrier: Dict[str, str] = {}
        propagator.inject(carrier)
        with backend.start_as_current_span("POST /charge", context=propagator.extract(carrier), kind=SpanKind.SERVER):
            backend.start_span("db").end()
        if fail:
            root.set_status(Status(StatusCode.ERROR, "rendering failed"))
    return root.get_span_context().trace_id


def wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_traces_announced_while_redis_is_paused_are_kept_whole_when_it_answers(redis_server: RedisServer) -> None:
    front, frontend, _front_spans = service(redis_server.url, "front")
    back, backend, back_spans = service(redis_server.url, "back")
    assert wait_for(lambda: front.sharing_status()["connected"] and back.sharing_status()["connected"], 10)

    redis_server.pause()
    paused_at = time.monotonic()
    failed: List[int] = []
    try:
        for i in range(60):
            failed_now = i % 3 == 0
            trace_id = call(frontend, backend, fail=failed_now)
            if failed_now:
                failed.append(trace_id)
            time.sleep(0.04)
        assert wait_for(lambda: back.stats()["traces_buffered"] == 0, 5), "the backend decided (and dropped) its traces meanwhile"
        assert back.stats()["retained_spans"] >= 120
    finally:
        while time.monotonic() - paused_at < 3.0:
            time.sleep(0.05)
        redis_server.resume()

    def backend_kept() -> set:
        return {s.context.trace_id for s in back_spans.get_finished_spans()}

    assert wait_for(lambda: backend_kept() >= set(failed), 15), "every announced trace reached the backend"
    spans = back_spans.get_finished_spans()
    by_trace: Dict[int, List[Any]] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    assert set(by_trace) == set(failed), "only the failed traces"
    assert all(sorted(s.name for s in group) == ["POST /charge", "db"] for group in by_trace.values()), "whole"
    assert {s.attributes[REASON] for s in spans} == {"shared:error"}
    stats = back.stats()
    assert stats["retained_kept"] == 2 * len(failed) and stats["heard_too_late"] == 0
    front.shutdown()
    back.shutdown()
