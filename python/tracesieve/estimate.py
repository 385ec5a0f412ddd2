"""Reading back how many spans a kept span stands for, so counts computed
from sampled data stay unbiased."""

from __future__ import annotations

import sys
from typing import Any, Optional

from tracesieve import _core

__all__ = ["ADJUSTED_COUNT", "adjusted_count", "threshold_of"]

#: The span attribute a tail stage writes on spans it kept (1 for an error or
#: rule keep, 1/q for a latency keep at probability q).
ADJUSTED_COUNT = "tracesieve.adjusted_count"


def _checked(span: Any) -> Any:
    """``span``, if it reads as a finished span; else a TypeError."""
    if getattr(span, "context", None) is None or not hasattr(span, "attributes"):
        raise TypeError(f"span: expected a finished span (a ReadableSpan), got {type(span).__name__}")
    return span


def threshold_of(span: Any) -> Optional[int]:
    """The ``th`` threshold in a span's ``ot`` tracestate entry, or None."""
    state = getattr(_checked(span).context, "trace_state", None)
    ot = state.get("ot") if state is not None else None
    return _core.read_ot(ot)[0] if isinstance(ot, str) and ot else None


def adjusted_count(span: Any) -> Optional[float]:
    """How many spans one kept span stands for: the tail stage's
    ``tracesieve.adjusted_count`` when present, else ``1 / p`` from the span's
    ``th``; None when neither says (the probability is unknown). Spans come
    from anywhere, so an ``adjusted_count`` that is no count (text, negative,
    NaN) is passed over for the ``th``, as if absent."""
    count = (_checked(span).attributes or {}).get(ADJUSTED_COUNT)
    if isinstance(count, (int, float)) and not isinstance(count, bool) and 0 <= count <= sys.float_info.max:
        return float(count)
    th = threshold_of(span)
    return None if th is None else _core.adjusted_count(th)
