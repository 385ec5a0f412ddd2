"""The specification's oracle: consistent probability sampling (OpenTelemetry
tracestate probability sampling, OTEP 235) written plainly in Python from the
spec's text, favouring clarity over speed. Tests compare the native samplers
against it; benchmarks run it beside them. Not for production use.
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
    # The tracestate grammar allows either case; what we write is lowercase.
    if not text or len(text) > 14 or (exact and len(text) != 14) or any(c not in "0123456789abcdefABCDEF" for c in text):
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
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, with_th(parent_state, fields, None))
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent_state)
        if self._threshold < MAX_THRESHOLD and randomness >= self._threshold:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, with_th(parent_state, fields, self._threshold))
        return SamplingResult(Decision.DROP, None, parent_state)

    def get_description(self) -> str:
        return f"ReferenceProbabilitySampler{{{self._rate}}}"


def with_th(state: Optional[TraceState], fields: List[Tuple[str, str]], threshold: Optional[int]) -> TraceState:
    members = [] if threshold is None else [f"th:{threshold_to_th(threshold)}"]
    members.extend(
        f"{key}:{value.lower() if key == 'rv' and _hex_field([(key, value)], 'rv', True) is not None else value}"
        for key, value in fields
        if key != "th"
    )
    state = state or TraceState()
    if not members:
        return state.delete("ot") if "ot" in state else state
    return state.update("ot", ";".join(members))
