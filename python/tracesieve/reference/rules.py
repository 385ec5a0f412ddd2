"""The rule policy language interpreted plainly in Python: the oracle the
native ``RuleSampler`` is tested against and the baseline it is benchmarked
beside. Not for production use."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import get_current_span

from tracesieve.reference.spec import ReferenceProbabilitySampler, parse_ot, with_th

__all__ = ["ReferenceRuleSampler"]

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


def _holds(spec: Any, present: bool, value: Any) -> bool:
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
            ok = number is not None and {"<": number < operand, "<=": number <= operand, ">": number > operand, ">=": number >= operand}[op]
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
        self._multipliers: List[Tuple[Any, ...]] = []
        for multiplier in multipliers or ():
            if "schedule" in multiplier:
                schedule = multiplier["schedule"]
                factors = {}
                for window in schedule["windows"]:
                    start, end = window["start"], window["end"] % 24
                    hours = range(start, end) if start < end else list(range(start, 24)) + list(range(end))
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
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, with_th(parent_state, fields, 0))
        if parent.is_valid and self._respect_parent:
            return ReferenceProbabilitySampler(1.0, True).should_sample(parent_context, trace_id, name, kind, attributes)
        if action == "drop" or probability == 0.0:
            return SamplingResult(Decision.DROP, None, parent_state)
        return ReferenceProbabilitySampler(probability, False, self._precision).should_sample(
            parent_context, trace_id, name, kind, attributes
        )

    def get_description(self) -> str:
        return f"ReferenceRuleSampler{{rules={len(self._rules)}}}"
