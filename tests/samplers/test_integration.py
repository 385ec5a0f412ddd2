"""Through a real TracerProvider and the SDK's InMemorySpanExporter."""

from __future__ import annotations

import pytest
from opentelemetry import context as context_api
from opentelemetry.trace import SpanKind, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracesieve import ProbabilitySampler, TraceIdRatioSampler, _core

from helpers import ot_value

PROPAGATOR = TraceContextTextMapPropagator()
KEEP_ID = 0x0AF7651916CD43DD_FFFFFFFFFFFFFFFF  # randomness at the top: kept at any rate > 0
DROP_ID = 0x0AF7651916CD43DD_0000000000000001  # randomness near zero: dropped below rate 1


def remote_headers(trace_id: int, sampled: bool, tracestate: str) -> dict:
    flags = "01" if sampled else "00"
    return {"traceparent": f"00-{trace_id:032x}-00f067aa0ba902b7-{flags}", "tracestate": tracestate}


@pytest.mark.parametrize("cls", [ProbabilitySampler, TraceIdRatioSampler])
def test_attributes_survive_on_exported_spans(cls, provider_factory):
    provider, exporter = provider_factory(cls(1.0))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(
        "GET /api/order", kind=SpanKind.SERVER, attributes={"http.route": "/api/order", "user.tier": "premium"}
    ):
        pass
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes) == {"http.route": "/api/order", "user.tier": "premium"}


def test_remote_parent_foreign_entries_survive_and_th_is_kept(provider_factory):
    provider, exporter = provider_factory(ProbabilitySampler(0.5))
    tracer = provider.get_tracer("t")
    incoming = remote_headers(KEEP_ID, True, "vendor1=opaque,ot=th:8;rv:ffffffffffffff,vendor2=x")
    ctx = PROPAGATOR.extract(incoming)
    with tracer.start_as_current_span("handle", context=ctx, kind=SpanKind.SERVER):
        outgoing: dict = {}
        PROPAGATOR.inject(outgoing)
    (span,) = exporter.get_finished_spans()
    assert list(span.context.trace_state.items()) == [
        ("vendor1", "opaque"),
        ("ot", "th:8;rv:ffffffffffffff"),
        ("vendor2", "x"),
    ]
    assert outgoing["tracestate"] == "vendor1=opaque,ot=th:8;rv:ffffffffffffff,vendor2=x"
    assert outgoing["traceparent"].endswith("-01")


def test_children_follow_local_parent_and_share_th(provider_factory):
    provider, exporter = provider_factory(ProbabilitySampler(0.25))
    tracer = provider.get_tracer("t")
    for _i in range(400):
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("child"):
                with tracer.start_as_current_span("grandchild"):
                    pass
    spans = exporter.get_finished_spans()
    by_trace: dict = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    for trace_spans in by_trace.values():
        assert len(trace_spans) == 3, "a kept trace is kept whole"
        assert {ot_value(s.context.trace_state) for s in trace_spans} == {"th:c"}
    assert 50 <= len(by_trace) <= 150  # 400 traces at 25%: mean 100, sd 8.7


def test_children_follow_remote_parent_decision(provider_factory):
    provider, exporter = provider_factory(ProbabilitySampler(1.0))
    tracer = provider.get_tracer("t")
    # A remote parent that was not sampled: the child follows it and is dropped
    # even though our own rate would keep it.
    ctx = PROPAGATOR.extract(remote_headers(KEEP_ID, False, "vendor=1"))
    span = tracer.start_span("child", context=ctx)
    assert not span.is_recording()
    assert span.get_span_context().trace_state.get("vendor") == "1"
    span.end()
    # A sampled remote parent: the child is kept though our rate would drop it.
    provider2, exporter2 = provider_factory(ProbabilitySampler(0.0))
    ctx = PROPAGATOR.extract(remote_headers(DROP_ID, True, ""))
    with provider2.get_tracer("t").start_as_current_span("child", context=ctx):
        pass
    assert len(exporter2.get_finished_spans()) == 1
    assert exporter.get_finished_spans() == ()


def test_respect_parent_false_decides_afresh_with_remote_rv(provider_factory):
    provider, exporter = provider_factory(ProbabilitySampler(0.5, respect_parent=False))
    tracer = provider.get_tracer("t")
    # rv at the top keeps the span whatever the trace id and the parent flag say.
    ctx = PROPAGATOR.extract(remote_headers(DROP_ID, False, "ot=rv:ffffffffffffff,v=1"))
    with tracer.start_as_current_span("independent", context=ctx):
        pass
    (span,) = exporter.get_finished_spans()
    assert list(span.context.trace_state.items()) == [("ot", "th:8;rv:ffffffffffffff"), ("v", "1")]


def test_rate_zero_drops_everything_and_rate_one_keeps_everything(provider_factory):
    for rate, expected in ((0.0, 0), (1.0, 60)):
        provider, exporter = provider_factory(ProbabilitySampler(rate))
        tracer = provider.get_tracer("t")
        for _ in range(30):
            with tracer.start_as_current_span("root"):
                with tracer.start_as_current_span("child"):
                    pass
        assert len(exporter.get_finished_spans()) == expected


def test_current_context_is_used_when_parent_context_is_none(provider_factory):
    sampler = ProbabilitySampler(0.0)
    provider, _exporter = provider_factory(ProbabilitySampler(1.0))
    with provider.get_tracer("t").start_as_current_span("outer") as outer:
        # Called the way the SDK does it when the caller passes no context.
        result = sampler.should_sample(None, outer.get_span_context().trace_id, "inner")
        assert result.decision.is_sampled()
        assert ot_value(result.trace_state) == "th:0"
    token = context_api.attach(set_span_in_context(outer))
    try:
        assert sampler.should_sample(None, 1, "x").decision.is_sampled()
    finally:
        context_api.detach(token)
    assert not sampler.should_sample(None, 1, "x").decision.is_sampled()


def test_a_runtime_context_swapped_in_later_is_followed(provider_factory, monkeypatch):
    """The stock runtime context is read natively; one installed later (as
    OTEL_PYTHON_CONTEXT or a test would) is asked instead, from the next call on."""
    sampler = ProbabilitySampler(0.0)
    provider, _exporter = provider_factory(ProbabilitySampler(1.0))
    with provider.get_tracer("t").start_as_current_span("outer") as outer:
        pass
    stock = context_api._RUNTIME_CONTEXT
    with_outer = set_span_in_context(outer, context_api.Context())

    class WithParent(type(stock)):
        def get_current(self):
            return with_outer

    for _ in range(3):
        assert not sampler.should_sample(None, 1, "x").decision.is_sampled()
    monkeypatch.setattr(context_api, "_RUNTIME_CONTEXT", WithParent())
    assert all(sampler.should_sample(None, 1, "x").decision.is_sampled() for _ in range(3))
    monkeypatch.setattr(context_api, "_RUNTIME_CONTEXT", stock)
    assert not any(sampler.should_sample(None, 1, "x").decision.is_sampled() for _ in range(3))


def test_adjusted_counts_estimate_the_true_traffic(provider_factory):
    provider, exporter = provider_factory(ProbabilitySampler(0.1))
    tracer = provider.get_tracer("t")
    total = 5000
    for _ in range(total):
        with tracer.start_as_current_span("root"):
            pass
    spans = exporter.get_finished_spans()
    estimate = sum(_core.adjusted_count(_core.read_ot(ot_value(s.context.trace_state))[0]) for s in spans)
    # Binomial(5000, 0.1): sd of the estimate is 10 * sqrt(450) ~ 212; allow 6 sd.
    assert abs(estimate - total) < 1300
