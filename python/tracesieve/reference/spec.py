"""The specification's oracle: consistent probability sampling (OpenTelemetry
tracestate probability sampling, OTEP 235) written plainly in Python from the
spec's text, favouring clarity over speed. Tests compare the native samplers
against it; benchmarks run it beside them. Not for production use.
"""

from __future__ import annotations

import math
import re
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


_MEMBER = re.compile(r"[a-z][a-z0-9]*:[A-Za-z0-9._-]*")
_TH = re.compile(r"[0-9a-f]{1,14}")
_RV = re.compile(r"[0-9a-f]{14}")


def parse_ot(value: Optional[str]) -> Optional[List[Tuple[str, str]]]:
    """The ``key:value`` sub-keys of an `ot` tracestate value, in order, or None
    when the value breaks the grammar (tracestate-handling.md: members joined by
    `;`, unique keys, at most 256 characters)."""
    if not value or len(value) > 256:
        return None
    members = value.split(";")
    if not all(_MEMBER.fullmatch(member) for member in members):
        return None
    fields = [(member.partition(":")[0], member.partition(":")[2]) for member in members]
    if len({key for key, _ in fields}) != len(fields):
        return None
    return fields


def _hex_field(fields: Optional[List[Tuple[str, str]]], key: str) -> Optional[int]:
    """A valid `th` (1 to 14 lowercase hex digits) or `rv` (exactly 14), else None."""
    text = dict(fields or []).get(key)
    if text is None or not (_RV if key == "rv" else _TH).fullmatch(text):
        return None
    return int(text, 16) << (0 if key == "rv" else 4 * (14 - len(text)))


def _sound(fields: Optional[List[Tuple[str, str]]]) -> bool:
    """No `th` or `rv` in the value that is invalid."""
    keys = dict(fields or [])
    return all(key not in keys or _hex_field(fields, key) is not None for key in ("th", "rv"))


def inherited(state: Optional[TraceState], fields: Optional[List[Tuple[str, str]]]) -> Optional[TraceState]:
    """The parent's tracestate as a child inherits it: a malformed `ot` dropped,
    an invalid `th` or `rv` taken out of it."""
    if state is None or "ot" not in state:
        return state
    if fields is None:
        return state.delete("ot")
    if _sound(fields):
        return state
    return with_th(state, fields, _hex_field(fields, "th"))


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
        rv = _hex_field(fields, "rv")
        randomness = rv if rv is not None else trace_id & RANDOMNESS_MASK
        if parent.is_valid and self._respect_parent:
            if not parent.trace_flags.sampled:
                return SamplingResult(Decision.DROP, None, inherited(parent_state, fields))
            th = _hex_field(fields, "th")
            if th is not None and randomness < th:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, with_th(parent_state, fields, None))
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, inherited(parent_state, fields))
        if self._threshold < MAX_THRESHOLD and randomness >= self._threshold:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, with_th(parent_state, fields, self._threshold))
        return SamplingResult(Decision.DROP, None, inherited(parent_state, fields))

    def get_description(self) -> str:
        return f"ReferenceProbabilitySampler{{{self._rate}}}"


def with_th(state: Optional[TraceState], fields: Optional[List[Tuple[str, str]]], threshold: Optional[int]) -> TraceState:
    """The `ot` value with `th` set (or removed), then a valid `rv`, then the
    other sub-keys in order, cut at a sub-key boundary to 256 characters."""
    members = [] if threshold is None else [f"th:{threshold_to_th(threshold)}"]
    rv = _hex_field(fields, "rv")
    if rv is not None:
        members.append(f"rv:{rv:014x}")
    members.extend(f"{key}:{value}" for key, value in fields or [] if key not in ("th", "rv"))
    while len(";".join(members)) > 256:
        members.pop()
    state = state or TraceState()
    if not members:
        return state.delete("ot") if "ot" in state else state
    return state.update("ot", ";".join(members))
