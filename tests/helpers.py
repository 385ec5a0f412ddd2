"""Shared helpers: parent contexts, a provider wired to an in-memory exporter,
and an HTTP server on loopback for the remote samplers' fakes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple, Type

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, set_span_in_context
from opentelemetry.trace.span import TraceState

#: The repository checkout and its examples folder.
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def parent_context(
    trace_id: int,
    sampled: bool,
    entries: Iterable[Tuple[str, str]] = (),
    remote: bool = True,
    span_id: int = 0x1234,
):
    """A context whose current span is a (remote) parent with the given flag and tracestate."""
    span_context = SpanContext(
        trace_id,
        span_id,
        is_remote=remote,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        trace_state=TraceState(list(entries)),
    )
    return set_span_in_context(NonRecordingSpan(span_context))


@pytest.fixture
def provider_factory():
    """Build TracerProviders with an in-memory exporter; shut them down afterwards."""
    providers = []

    def make(sampler) -> Tuple[TracerProvider, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        return provider, exporter

    yield make
    for provider in providers:
        provider.shutdown()


def metric_points(reader: Any) -> Dict[Tuple[str, Tuple[Tuple[str, Any], ...]], Any]:
    """Every data point an in-memory metric reader collects: (instrument, its sorted attributes) to value."""
    points: Dict[Tuple[str, Tuple[Tuple[str, Any], ...]], Any] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    points[(metric.name, tuple(sorted(point.attributes.items())))] = point.value
    return points


def ot_value(trace_state: Optional[TraceState]) -> Optional[str]:
    return None if trace_state is None else trace_state.get("ot")


class FakeSpan:
    """What on_end reads, for a high-volume flood without the SDK's span cost."""

    __slots__ = (
        "attributes",
        "context",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "links",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )
    _ok = Status(StatusCode.UNSET)

    def __init__(self, trace_id, span_id, root):
        self.context = SpanContext(trace_id, span_id, False, TraceFlags(0))
        self.parent = None if root else SpanContext(trace_id, span_id + 1, False)
        self.status = self._ok
        self.events = ()
        self.name = "s"
        self.attributes = {}
        self.kind = None
        self.start_time = 0
        self.end_time = 1
        self.resource = None
        self.links = ()
        self.instrumentation_scope = None


class Flaky(InMemorySpanExporter):
    """An exporter failing its first `failures` calls (every call for None)."""

    def __init__(self, failures):
        super().__init__()
        self.failures = failures
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            return SpanExportResult.FAILURE
        return super().export(spans)


class LoopbackServer:
    """A threaded HTTP server on a free loopback port, answering with ``handler`` until ``stop()``."""

    def _serve(self, handler: Type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
