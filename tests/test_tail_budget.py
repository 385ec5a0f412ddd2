"""Tail keeps spend the budget: every span a tail processor exports counts
against the same pacer as the head's keeps, whole traces or none, errors
first when the allowance is short (configurable), chosen kinds exempt and
reported over, and the head paced around what the tail needs."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from tracesieve import BudgetSampler, ConfigError, ProbabilitySampler, TailSamplingProcessor
from tracesieve.testing import SimClock

DAY_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _rig(budget, *, head=0.0, **tail_options):
    clock = SimClock(DAY_START)
    sampler = BudgetSampler(ProbabilitySampler(head), budget=budget, period="day", clock=clock, defer=True)
    exporter = InMemorySpanExporter()
    tail = TailSamplingProcessor(
        exporter, clock=clock, decision_wait=1.0, latency_threshold=1.0, budget=sampler, start=False, **tail_options
    )
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(tail)
    return clock, sampler, tail, provider.get_tracer("t"), exporter


def _request(tracer, clock, *, error=False, slow=False, spans=1):
    start = clock.now
    root = tracer.start_span("root", start_time=int(start * 1e9))
    children = [tracer.start_span("child", context=set_span_in_context(root), start_time=int(start * 1e9)) for _ in range(spans - 1)]
    end = start + (1.5 if slow else 0.1)
    for child in children:
        child.end(end_time=int(end * 1e9))
    if error:
        root.set_status(Status(StatusCode.ERROR))
    root.end(end_time=int(end * 1e9))
    return root.get_span_context().trace_id


def _run_day(clock, tracer, tail, kinds, count, rng):
    """``count`` requests spread over the day, each of a kind drawn from ``kinds``."""
    ids = {kind: [] for kind in set(kinds)}
    for i in range(count):
        clock.now = DAY_START + (i + rng.random()) * 86_400 / count
        kind = rng.choice(kinds)
        ids[kind].append(_request(tracer, clock, error=kind == "error", slow=kind == "slow"))
        tail.step()
    clock.now = DAY_START + 86_399
    tail.force_flush()
    return ids


def _exported(exporter):
    return {span.context.trace_id for span in exporter.get_finished_spans()}


def test_errors_come_first_when_the_tail_outgrows_the_budget():
    clock, sampler, tail, tracer, exporter = _rig(1_000)
    # 600 error traces and 600 slow ones in a day against 1,000 spans.
    ids = _run_day(clock, tracer, tail, ["error", "slow"], 1_200, random.Random(1))
    kept = _exported(exporter)
    status = sampler.budget_status()
    assert all(tid in kept for tid in ids["error"]), "every error trace kept"
    assert len(exporter.get_finished_spans()) <= status["budget_spans"] + status["burst_spans"]
    assert status["used_spans"] == len(exporter.get_finished_spans()), "every exported span counted"
    stats = tail.stats()
    assert stats["budget_refused_error"] == 0 and stats["budget_refused_latency"] > 0
    assert status["tail"]["latency"]["refused_spans"] == stats["budget_refused_spans"]
    assert status["tail"]["error"]["kept_spans"] == len(ids["error"])
    # The budget's refusals are the tail's (the head keeps nothing here), and
    # check's line says whose they are: it counted them as the head's too.
    assert status["refused_spans"] == stats["budget_refused_spans"] > 0
    from tracesieve.cli.records import spending_notes

    (line,) = spending_notes(sampler.budget_status, "the service's record")
    assert f" 0 refused by the head, {stats['budget_refused_spans']:,} by the tail;" in line, line
    # The next day (nothing decided since) counts its own refusals: none yet.
    clock.now = DAY_START + 86_400 + 60
    status = sampler.budget_status()
    assert (status["used_spans"], status["refused_spans"], status["tail"]["latency"]["refused_spans"]) == (0, 0, 0)
    assert sampler.stats()["budget_refused"] == stats["budget_refused_spans"], "this process's counter goes on"


def test_priorities_are_configurable():
    clock, _, tail, tracer, exporter = _rig(1_000, budget_priorities=("latency", "error", "rule"))
    ids = _run_day(clock, tracer, tail, ["error", "slow"], 1_200, random.Random(1))
    kept = _exported(exporter)
    assert all(tid in kept for tid in ids["slow"]), "latency first, as configured"
    assert tail.stats()["budget_refused_error"] > 0 and tail.stats()["budget_refused_latency"] == 0


def test_an_exempt_kind_is_kept_over_the_budget_and_the_report_says_how_far():
    clock, sampler, tail, tracer, exporter = _rig(100, budget_exempt=("error",))
    ids = _run_day(clock, tracer, tail, ["error"], 300, random.Random(2))
    assert _exported(exporter) == set(ids["error"])
    status = sampler.budget_status()
    assert status["used_spans"] == 300 and status["over_budget_spans"] == 200


def test_a_trace_is_kept_or_refused_whole():
    clock, sampler, tail, tracer, exporter = _rig(100)
    for i in range(60):
        clock.now = DAY_START + 86_000 + i
        _request(tracer, clock, error=True, spans=3)
        tail.step()
    tail.force_flush()
    by_trace = {}
    for span in exporter.get_finished_spans():
        by_trace.setdefault(span.context.trace_id, []).append(span)
    assert by_trace and all(len(spans) == 3 for spans in by_trace.values()), "never a part of a trace"
    assert sampler.budget_status()["used_spans"] <= 100
    assert tail.stats()["budget_refused_error"] > 0


def test_the_head_is_paced_around_what_the_tail_needs():
    # Errors at a steady 20% of 2,000 requests; the head at 100% would take everything.
    clock, sampler, tail, tracer, exporter = _rig(1_000, head=1.0)
    ids = _run_day(clock, tracer, tail, ["error"] + ["plain"] * 4, 2_000, random.Random(4))
    kept = _exported(exporter)
    assert all(tid in kept for tid in ids["error"]), "the head left room for every error trace"
    status = sampler.budget_status()
    assert 950 <= status["used_spans"] <= 1_000 + status["burst_spans"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"budget_priorities": ("error", "latency")}, "must name each of"),
        ({"budget_priorities": ("error", "latency", "rule", "error")}, "must name each of"),
        ({"budget_exempt": ("panic",)}, "is no tail reason"),
    ],
)
def test_bad_budget_settings_are_config_errors(options, message):
    sampler = BudgetSampler(1.0, budget=100, store="memory")
    with pytest.raises(ConfigError, match=message):
        TailSamplingProcessor(InMemorySpanExporter(), budget=sampler, start=False, **options)
    with pytest.raises(ConfigError, match="budget: expected a BudgetSampler"):
        TailSamplingProcessor(InMemorySpanExporter(), budget=ProbabilitySampler(0.5), start=False)
