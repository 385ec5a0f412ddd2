"""Pure-Python reference implementations of tracesieve's algorithms.

They are the baselines our benchmarks run beside the native samplers, and the
oracles our tests compare against. They follow the OpenTelemetry specification's
text directly and favour clarity over speed. Not meant for production use.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

MAX_THRESHOLD = 1 << 56
RANDOMNESS_MASK = MAX_THRESHOLD - 1


def probability_to_th(probability: float, precision: int) -> str:
    """The spec's reference conversion (probability in (0, 1]) to a `th` string."""
    if probability == 1:
        return "0"
    _, exp = math.frexp(probability)
    precision = max(1, min(12, precision + exp // -4))
    rejection = 2 - probability + math.ldexp(0.5, -4 * precision)
    digits = "fffffffffffff" if rejection >= 2.0 else rejection.hex()[4:][:-3]
    return digits[:precision].rstrip("0") or "0"


def th_to_threshold(th: str) -> int:
    return int(th, 16) << (4 * (14 - len(th)))


def threshold_to_th(threshold: int) -> str:
    return "0" if threshold == 0 else f"{threshold:014x}".rstrip("0")


def parse_ot(value: Optional[str]) -> List[Tuple[str, str]]:
    """The well-formed ``key:value`` sub-keys of an `ot` tracestate value, in order."""
    fields: List[Tuple[str, str]] = []
    if not value or len(value) > 256:
        return fields
    for member in value.split(";"):
        key, sep, sub_value = member.partition(":")
        if sep and key.isascii() and key[:1].islower() and key.isalnum() and key == key.lower():
            if sub_value.isascii() and all(c.isalnum() or c in "._-" for c in sub_value):
                fields.append((key, sub_value))
    return fields


def _hex_field(fields: List[Tuple[str, str]], key: str, exact: bool) -> Optional[int]:
    values = [v for k, v in fields if k == key]
    if len(values) != 1:
        return None
    text = values[0]
    if not text or len(text) > 14 or (exact and len(text) != 14) or any(c not in "0123456789abcdef" for c in text):
        return None
    return int(text, 16) << (0 if exact else 4 * (14 - len(text)))


class ReferenceProbabilitySampler(Sampler):
    """Consistent probability sampling, written plainly in Python."""

    def __init__(self, rate: float, respect_parent: bool = True, precision: int = 5):
        self._rate = rate
        self._respect_parent = respect_parent
        self._threshold = MAX_THRESHOLD if rate == 0 else th_to_threshold(probability_to_th(rate, precision))

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        parent_state = parent.trace_state if parent.is_valid else None
        fields = parse_ot(parent_state.get("ot") if parent_state else None)
        rv = _hex_field(fields, "rv", exact=True)
        randomness = rv if rv is not None else trace_id & RANDOMNESS_MASK
        if parent.is_valid and self._respect_parent:
            if not parent.trace_flags.sampled:
                return SamplingResult(Decision.DROP, None, parent_state)
            th = _hex_field(fields, "th", exact=False)
            if th is not None and randomness < th:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, _with_th(parent_state, fields, None))
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent_state)
        if self._threshold < MAX_THRESHOLD and randomness >= self._threshold:
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE, attributes, _with_th(parent_state, fields, self._threshold)
            )
        return SamplingResult(Decision.DROP, None, parent_state)

    def get_description(self) -> str:
        return f"ReferenceProbabilitySampler{{{self._rate}}}"


def _with_th(state: Optional[TraceState], fields: List[Tuple[str, str]], threshold: Optional[int]) -> TraceState:
    members = [] if threshold is None else [f"th:{threshold_to_th(threshold)}"]
    members.extend(f"{key}:{value}" for key, value in fields if key != "th")
    state = state or TraceState()
    if not members:
        return state.delete("ot") if "ot" in state else state
    return state.update("ot", ";".join(members))


_KIND_NAMES = ["internal", "server", "client", "producer", "consumer"]
_ROUTE_KEYS = ("http.route", "url.path", "http.target")


def _number(value: object) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _equals(literal: object, value: object) -> bool:
    if isinstance(literal, bool) or isinstance(value, bool):
        return isinstance(literal, bool) and isinstance(value, bool) and literal == value
    if isinstance(literal, str) or isinstance(value, str):
        return isinstance(literal, str) and isinstance(value, str) and literal == value
    a, b = _number(literal), _number(value)
    return a is not None and b is not None and a == b


def _glob(pattern: str, text: str) -> bool:
    import re

    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.S) is not None


def _holds(spec: object, present: bool, value: object) -> bool:
    ops = spec if isinstance(spec, dict) else {"==": spec}
    for op, operand in ops.items():
        if op == "exists":
            ok = present == operand
        elif not present:
            ok = False
        elif op == "==":
            ok = _equals(operand, value)
        elif op == "in":
            ok = any(_equals(item, value) for item in operand)
        elif op in ("<", "<=", ">", ">="):
            number = _number(value)
            ok = number is not None and {
                "<": number < operand, "<=": number <= operand, ">": number > operand, ">=": number >= operand
            }[op]
        elif op == "glob":
            ok = isinstance(value, str) and _glob(operand, value)
        elif op == "prefix":
            ok = isinstance(value, str) and value.startswith(operand)
        else:
            raise ValueError(f"unknown operator {op!r}")
        if not ok:
            return False
    return True


class ReferenceRuleSampler(Sampler):
    """The RuleSampler's policy language, interpreted plainly in Python."""

    def __init__(self, rules, default_rate, multipliers=(), respect_parent=True, precision=5, clock=None):
        import time
        from zoneinfo import ZoneInfo

        self._rules = list(rules)
        self._default_rate = default_rate
        self._multipliers = []
        for multiplier in multipliers or ():
            if "schedule" in multiplier:
                schedule = multiplier["schedule"]
                factors = {}
                for window in schedule["windows"]:
                    start, end = window["start"], window["end"] % 24
                    hours = range(start, end) if start < end else list(range(start, 24)) + list(range(0, end))
                    for hour in hours:
                        factors[hour] = window["factor"]
                self._multipliers.append(("schedule", ZoneInfo(schedule["timezone"]), factors))
            else:
                self._multipliers.append(("attribute", multiplier["attribute"], multiplier["factors"], multiplier.get("default", 1.0)))
        self._respect_parent = respect_parent
        self._precision = precision
        self._clock = clock or time.time

    def evaluate(self, name: str, kind, attributes, root: bool):
        """(rule name, action, probability) for a span, before parent and randomness."""
        from datetime import datetime, timezone

        attributes = attributes or {}
        route = next((attributes[k] for k in _ROUTE_KEYS if isinstance(attributes.get(k), str)), name)
        kind_name = _KIND_NAMES[kind.value] if kind is not None else None
        for index, rule in enumerate(self._rules):
            checks = []
            if "span_name" in rule:
                checks.append(_holds(rule["span_name"], True, name))
            if "route" in rule:
                checks.append(_holds(rule["route"], True, route))
            if "kind" in rule:
                kinds = [rule["kind"]] if isinstance(rule["kind"], str) else rule["kind"]
                checks.append(kind_name in [k.lower() for k in kinds])
            if "root" in rule:
                checks.append(rule["root"] == root)
            for key, spec in rule.get("match", {}).items():
                checks.append(_holds(spec, key in attributes, attributes.get(key)))
            if all(checks):
                label = rule.get("name", f"rules[{index}]")
                if "action" in rule:
                    return label, rule["action"], 1.0 if rule["action"] == "keep" else 0.0
                rate = rule["rate"]
                break
        else:
            label, rate = "default", self._default_rate
        for multiplier in self._multipliers:
            if multiplier[0] == "schedule":
                local = datetime.fromtimestamp(self._clock(), timezone.utc).astimezone(multiplier[1])
                rate *= multiplier[2][local.hour]
            else:
                value = attributes.get(multiplier[1])
                rate *= multiplier[2].get(value, multiplier[3]) if isinstance(value, str) else multiplier[3]
        return label, "rate", min(1.0, max(0.0, rate))

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        parent = get_current_span(parent_context).get_span_context()
        parent_state = parent.trace_state if parent.is_valid else None
        _, action, probability = self.evaluate(name, kind, attributes, not parent.is_valid)
        if action == "keep":
            fields = parse_ot(parent_state.get("ot") if parent_state else None)
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, _with_th(parent_state, fields, 0))
        if parent.is_valid and self._respect_parent:
            return ReferenceProbabilitySampler(1.0, True).should_sample(parent_context, trace_id, name, kind, attributes)
        if action == "drop" or probability == 0.0:
            return SamplingResult(Decision.DROP, None, parent_state)
        return ReferenceProbabilitySampler(probability, False, self._precision).should_sample(
            parent_context, trace_id, name, kind, attributes
        )

    def get_description(self) -> str:
        return f"ReferenceRuleSampler{{rules={len(self._rules)}}}"


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


class PythonErrorWindowProcessor:
    """A plain-Python span processor doing what ErrorWindowProcessor.on_end does
    (status, exception events, duration, a deque window), as an on_end baseline."""

    def __init__(self, slow_threshold: float = 2.0, window_seconds: float = 300.0):
        import collections
        import threading
        import time

        from opentelemetry.trace import StatusCode

        self._error = StatusCode.ERROR
        self._slow_ns = slow_threshold * 1e9
        self._window = window_seconds
        self._spans: collections.deque = collections.deque()
        self._errors: collections.deque = collections.deque()
        self._slow: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._clock = time.time

    def on_end(self, span) -> None:
        now = self._clock()
        error = span.status.status_code is self._error or any(e.name == "exception" for e in span.events)
        slow = span.end_time - span.start_time >= self._slow_ns
        with self._lock:
            cutoff = now - self._window
            for queue, hit in ((self._spans, True), (self._errors, error), (self._slow, slow)):
                if hit:
                    queue.append(now)
                while queue and queue[0] <= cutoff:
                    queue.popleft()


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

    def __init__(self, policy, monthly_budget: float = 1e9, cost_per_span: float = 0.001, seed: int = 0, clock=None, follow_parent: bool = True):
        import random

        self._random = random.Random(seed)
        self._rules = ReferenceRuleSampler(**policy, clock=clock)
        self._errors = SeedErrorWindow(clock=clock)
        self._budget = SeedCostAwareSampler(monthly_budget, cost_per_span, clock=clock, seed=seed)
        self._follow_parent = follow_parent
        self._base = {rule.get("name"): rule.get("rate") for rule in policy["rules"]}
        self._default = policy["default_rate"]

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        attributes = dict(attributes or {})
        parent = get_current_span(parent_context).get_span_context()
        rule, action, probability = self._rules.evaluate(name, kind, attributes, not parent.is_valid)
        if action == "keep":
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state if parent.is_valid else None)
        if parent.is_valid and self._follow_parent:
            decision = Decision.RECORD_AND_SAMPLE if parent.trace_flags.sampled else Decision.DROP
            return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None, parent.trace_state)
        errors = self._errors.count()
        probability *= 3.0 if errors > 10 else 2.0 if errors > 5 else 1.0
        if action != "drop" and self._budget.should_sample() and self._random.random() < min(1.0, probability):
            self._budget.record_span()
            attributes["sampling.rate"] = self._base.get(rule) or self._default
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, None)
        return SamplingResult(Decision.DROP, None, None)

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
