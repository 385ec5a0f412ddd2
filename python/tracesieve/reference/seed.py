"""The seed tutorial's approach, written by us so it can run: its error window,
its cost pacing and its multi-stage sampler. These are the baselines our
native versions are compared against (see the class docstrings for what was
fixed to make each run and what was kept exactly)."""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import get_current_span

from tracesieve.reference.rules import ReferenceRuleSampler

__all__ = ["SeedCostAwareSampler", "SeedErrorWindow", "SeedPipelineSampler", "seed_dedup_key"]


class SeedErrorWindow:
    """The seed tutorial's error window, as written there: a list of timestamps
    rebuilt on every error to drop those older than five minutes. Kept as the
    baseline our lock-free window is measured against (it grows with the number
    of errors in the window: every error costs a pass over all of them)."""

    def __init__(self, window_seconds: float = 300.0, clock=None):
        import threading
        import time

        self._window = window_seconds
        self._clock = clock or time.time
        self._errors: list = []
        self._lock = threading.Lock()

    def record_error(self) -> None:
        with self._lock:
            now = self._clock()
            self._errors.append(now)
            cutoff = now - self._window
            self._errors = [t for t in self._errors if t > cutoff]

    def count(self) -> int:
        with self._lock:
            return len(self._errors)


class SeedCostAwareSampler:
    """The seed tutorial's budget pacing, in Python, as the baseline our pacer is
    compared against: a hard span limit per calendar month, and a slow-down to
    70% / 30% sampling when spending runs 1.0x / 1.2x ahead of the calendar.

    Written by us after the seed, with its two crashes fixed so it can run a
    whole year (December's ``month + 1`` and an unsynchronised counter); the
    pacing rule itself is kept exactly, because that rule is what we measure.
    """

    def __init__(self, monthly_budget: float, cost_per_span: float = 0.001, clock=None, seed: int = 0):
        import random
        import threading
        import time

        self.monthly_span_limit = int(monthly_budget / cost_per_span)
        self.current_span_count = 0
        self._clock = clock or time.time
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.month_start = self._month_start(self._now())

    def _now(self):
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self._clock(), timezone.utc)

    @staticmethod
    def _month_start(now):
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def should_sample(self) -> bool:
        with self._lock:
            now = self._now()
            current_month_start = self._month_start(now)
            if current_month_start > self.month_start:
                self.month_start = current_month_start
                self.current_span_count = 0
            if self.current_span_count >= self.monthly_span_limit:
                return False
            year, month = current_month_start.year + current_month_start.month // 12, current_month_start.month % 12 + 1
            days_in_month = (current_month_start.replace(year=year, month=month) - current_month_start).days
            days_passed = (now - current_month_start).days + 1
            expected_usage = (days_passed / days_in_month) * self.monthly_span_limit
            usage_ratio = self.current_span_count / max(expected_usage, 1)
            if usage_ratio > 1.2:
                return self._random.random() < 0.3
            if usage_ratio > 1.0:
                return self._random.random() < 0.7
            return True

    def record_span(self) -> None:
        with self._lock:
            self.current_span_count += 1


class SeedPipelineSampler(Sampler):
    """The seed's multi-stage decision (force-keep, adaptive, rules, budget)
    written plainly in Python as a Sampler: the baseline for the pipeline.
    Like the seed, it draws with ``random.random()`` (so it is not consistent),
    records its rule's rate as ``sampling.rate`` (not the probability the span
    was actually kept with) and, with ``follow_parent=False``, lets every
    service decide on its own, as the seed's tracer did."""

    def __init__(
        self, policy, monthly_budget: float = 1e9, cost_per_span: float = 0.001, seed: int = 0, clock=None, follow_parent: bool = True
    ):
        import random

        self._random = random.Random(seed)
        self._rules = ReferenceRuleSampler(**policy, clock=clock)
        self._errors = SeedErrorWindow(clock=clock)
        self._budget = SeedCostAwareSampler(monthly_budget, cost_per_span, clock=clock, seed=seed)
        self._follow_parent = follow_parent
        self._base = {rule.get("name"): rule.get("rate") for rule in policy["rules"]}
        self._default = policy["default_rate"]
        self._dropped = 0

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        attributes = dict(attributes or {})
        parent = get_current_span(parent_context).get_span_context()
        rule, action, probability = self._rules.evaluate(name, kind, attributes, not parent.is_valid)
        if action == "keep":
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state if parent.is_valid else None)
        if parent.is_valid and self._follow_parent:
            decision = Decision.RECORD_AND_SAMPLE if parent.trace_flags.sampled else Decision.DROP
            self._dropped += decision is Decision.DROP
            return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None, parent.trace_state)
        errors = self._errors.count()
        probability *= 3.0 if errors > 10 else 2.0 if errors > 5 else 1.0
        if action != "drop" and self._budget.should_sample() and self._random.random() < min(1.0, probability):
            self._budget.record_span()
            attributes["sampling.rate"] = self._base.get(rule) or self._default
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, None)
        self._dropped += 1
        return SamplingResult(Decision.DROP, None, None)

    def stats(self) -> dict:
        """Spans dropped so far (counted where the decision is made)."""
        return {"dropped": self._dropped}

    def get_description(self) -> str:
        return "SeedPipelineSampler"


def seed_dedup_key(span) -> str:
    """The seed's dedup hash: md5 of the span's fields as sorted JSON (the
    baseline our Rust hashing is measured against)."""
    import hashlib
    import json

    payload = {
        "name": span.name,
        "trace_id": span.context.trace_id,
        "span_id": span.context.span_id,
        "parent": span.parent.span_id if span.parent else None,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
