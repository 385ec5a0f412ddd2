"""The seed's approach as our baselines run it: its error window counts the
last five minutes, its cost pacing slows to 70% and 30% ahead of the calendar
and stops at the limit, and its pipeline draws on its own in every service."""

from __future__ import annotations

from tracesieve.policies import seed_policy
from tracesieve.reference.seed import SeedCostAwareSampler, SeedErrorWindow, SeedPipelineSampler, seed_dedup_key
from tracesieve.testing import SimClock, month_start


def test_the_seed_error_window_forgets_after_five_minutes():
    clock = SimClock(1000.0)
    window = SeedErrorWindow(clock=clock)
    for _ in range(7):
        window.record_error()
    assert window.count() == 7
    clock.now += 301
    window.record_error()
    assert window.count() == 1


def test_the_seed_pacing_slows_ahead_of_the_calendar_and_stops_at_the_limit():
    clock = SimClock(month_start(2026, 1) + 3600)
    sampler = SeedCostAwareSampler(monthly_budget=0.31, cost_per_span=0.001, clock=clock, seed=3)  # 310 spans
    assert sampler.monthly_span_limit == 310
    # Day 1 of 31 expects 10 spans: at 12 (1.2x) it keeps about 70%, past that about 30%.
    kept = 0
    for _ in range(2000):
        if sampler.should_sample():
            sampler.record_span()
            kept += 1
    assert sampler.current_span_count == kept
    assert kept <= 310
    clock.now = month_start(2026, 1) + 30.5 * 86400
    while sampler.should_sample():
        sampler.record_span()
    assert sampler.current_span_count == 310, "the limit is hard"
    clock.now = month_start(2026, 2) + 10
    assert sampler.should_sample(), "a new month starts afresh"


def test_the_seed_pipeline_draws_independently_in_each_service():
    a = SeedPipelineSampler(seed_policy(), seed=1, follow_parent=False)
    b = SeedPipelineSampler(seed_policy(), seed=2, follow_parent=False)
    attributes = {"http.route": "/api/catalog", "user.tier": "standard"}
    decisions_a = [a.should_sample(None, i, "GET", None, attributes).decision.is_sampled() for i in range(2000)]
    decisions_b = [b.should_sample(None, i, "GET", None, attributes).decision.is_sampled() for i in range(2000)]
    assert decisions_a != decisions_b, "same trace ids, different draws: traces break across services"


def test_the_seed_dedup_key_is_content_based():
    class Span:
        name, parent, start_time, end_time, attributes = "s", None, 1, 2, {"a": 1}

        class context:
            trace_id, span_id = 1, 2

    assert seed_dedup_key(Span) == seed_dedup_key(Span)
    assert len(seed_dedup_key(Span)) == 32
