"""Estimates read back from kept spans: the total they stand for and its
standard error, by the formula on hand-made spans, and against what
repeated sampling through a real TracerProvider actually spreads."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

from tracesieve import ProbabilitySampler, RuleSampler
from tracesieve.cli.ids import SeededIds
from tracesieve.estimate import ADJUSTED_COUNT, estimate


class Kept:
    """What `estimate` reads of a finished span."""

    def __init__(self, trace_id: int, th: str = "", attributes: dict = {}) -> None:  # noqa: B006 (never mutated)
        state = TraceState([("ot", f"th:{th}")]) if th else TraceState()
        self.context = SpanContext(trace_id, 1, is_remote=False, trace_flags=TraceFlags(1), trace_state=state)
        self.attributes = attributes


def test_the_formula_on_spans_made_by_hand():
    # th:c keeps a quarter (count 4), th:8 a half (2), th:e an eighth (8), th:0 everything (1).
    alone = estimate([Kept(1, "c")])
    assert alone == (4.0, math.sqrt(4 * 3), 1, 0)
    # Two spans of one trace are kept together: their counts add up before squaring.
    assert estimate([Kept(1, "c"), Kept(1, "c")]).standard_error == pytest.approx(math.sqrt(4 * 4 * 3))
    # Two traces draw independently.
    assert estimate([Kept(1, "c"), Kept(2, "c")]).standard_error == pytest.approx(math.sqrt(2 * 4 * 3))
    # Nested keeps in one trace (counts 2 and 8): 2*1 + 8*7 + 2 * 8 * (2 - 1).
    assert estimate([Kept(1, "8"), Kept(1, "e")]).standard_error == pytest.approx(math.sqrt(2 + 56 + 16))
    # Certain keeps and the tail's count 1 add no uncertainty; a span that says nothing is left out.
    certain = estimate([Kept(3, "0"), Kept(4, attributes={ADJUSTED_COUNT: 1}), Kept(5), Kept(1, "c")])
    assert certain == (6.0, math.sqrt(12), 3, 1)


def totals(sampler_for, spans: int, runs: int, attributes=lambda i: {}):
    """Estimated totals and standard errors of `runs` repetitions of `spans`
    root spans through a real TracerProvider."""
    out = []
    for run in range(runs):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler_for(), id_generator=SeededIds(run))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("estimate")
        for i in range(spans):
            tracer.start_span("GET /x", attributes=attributes(i)).end()
        result = estimate(exporter.get_finished_spans())
        out.append((result.total, result.standard_error))
        provider.shutdown()
    return out


@pytest.mark.parametrize("mixed", [False, True], ids=["one probability", "probabilities from 0.01 to 0.5"])
def test_the_standard_error_is_the_spread_sampling_gives(mixed):
    rules = [
        {"name": "rare", "match": {"kind": "rare"}, "rate": 0.01},
        {"name": "common", "match": {"kind": "common"}, "rate": 0.5},
    ]
    sampler_for = (lambda: RuleSampler(rules, default_rate=0.1)) if mixed else (lambda: ProbabilitySampler(0.05))
    picks = random.Random(7)
    kinds = [picks.choice(["rare", "common", "other"]) for _ in range(2_000)]
    results = totals(sampler_for, 2_000, 300, attributes=lambda i: {"kind": kinds[i]})
    estimates = [total for total, _ in results]
    spread = statistics.pstdev(estimates)
    typical = statistics.mean(error for _, error in results)
    # Unbiased: the mean of 300 estimates is within 4 of its standard errors of the truth.
    assert abs(statistics.mean(estimates) - 2_000) < 4 * spread / math.sqrt(300)
    # The estimated standard error is the spread that sampling gives, within 15% (from 300 runs
    # the spread itself is known to about 4%, one standard deviation).
    assert typical == pytest.approx(spread, rel=0.15)
    # About 95% of the estimates fall within two of their own standard errors.
    covered = sum(abs(total - 2_000) <= 2 * error for total, error in results) / len(results)
    assert 0.88 <= covered <= 0.99, covered
