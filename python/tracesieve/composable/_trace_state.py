"""The OpenTelemetry (`ot`) tracestate entry as a value, the SDK's class of the
same name for code written against it (tracesieve's own samplers never use it:
they read and pass on `ot` natively, by the specification's rules).

`th` and `rv` are read by the specification's rules: `th` is 1 to 14 lowercase
hex digits, `rv` exactly 14; an invalid one is dropped, and nothing is read
from a value that breaks the grammar (a trailing `;`, a repeated or upper-case
key, a member with no `:`). The other members are kept in `rest` as the SDK's
class keeps them, malformed ones included, so that a trace-state update built
on this class passes on what the SDK's would: `a` round-trips as `a`. (What
tracesieve's samplers pass on drops such a value whole, as the specification,
the Collector and the Java contrib's table do.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from opentelemetry.trace import TraceState

from tracesieve import _core
from tracesieve.composable._util import (
    INVALID_RANDOM_VALUE,
    INVALID_THRESHOLD,
    MAX_THRESHOLD,
    is_valid_random_value,
    is_valid_threshold,
)

OTEL_TRACE_STATE_KEY = "ot"

_TRACE_STATE_SIZE_LIMIT = 256


@dataclass
class OtelTraceState:
    """The sampling fields of an `ot` tracestate value, and its other sub-keys."""

    random_value: int
    threshold: int
    rest: Sequence[str]

    @staticmethod
    def invalid() -> OtelTraceState:
        return OtelTraceState(INVALID_RANDOM_VALUE, INVALID_THRESHOLD, ())

    @staticmethod
    def parse(trace_state: Optional[TraceState]) -> OtelTraceState:
        value = trace_state.get(OTEL_TRACE_STATE_KEY) if trace_state else None
        if not value or len(value) > _TRACE_STATE_SIZE_LIMIT:
            return OtelTraceState.invalid()
        threshold, random_value, rest = _core.parse_ot(value)
        if rest is None:  # breaks the grammar: no th or rv read; the rest carried as the SDK's class carries it
            rest = [member for member in value.split(";") if member and not member.startswith(("th:", "rv:"))]
        return OtelTraceState(
            random_value=INVALID_RANDOM_VALUE if random_value is None else random_value,
            threshold=INVALID_THRESHOLD if threshold is None else threshold,
            rest=tuple(rest or ()),
        )

    def serialize(self) -> str:
        parts = []
        if is_valid_threshold(self.threshold) and self.threshold != MAX_THRESHOLD:
            parts.append(f"th:{serialize_th(self.threshold)}")
        if is_valid_random_value(self.random_value):
            parts.append(f"rv:{self.random_value:014x}")
        parts.extend(self.rest)
        while parts and len(";".join(parts)) > _TRACE_STATE_SIZE_LIMIT:
            parts.pop()
        return ";".join(parts)


def serialize_th(threshold: int) -> str:
    """A threshold as its `th` text: 14 hex digits, trailing zeros dropped (`0` for 0)."""
    return _core.encode_th(threshold)
