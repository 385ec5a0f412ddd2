"""Shared helpers: parent contexts and a provider wired to an in-memory exporter."""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from opentelemetry.trace.span import TraceState


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


def ot_value(trace_state: Optional[TraceState]) -> Optional[str]:
    return None if trace_state is None else trace_state.get("ot")
