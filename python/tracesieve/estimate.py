"""Reading back how many spans a kept span stands for, so counts computed
from sampled data stay unbiased, and how sure such a count is."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional

from tracesieve import _core

__all__ = ["ADJUSTED_COUNT", "Estimate", "adjusted_count", "estimate", "threshold_of"]

#: The span attribute a tail stage writes on spans it kept (1 for an error or
#: rule keep, 1/q for a latency keep at probability q).
ADJUSTED_COUNT = "tracesieve.adjusted_count"


#: The largest count a kept span can stand for: 1 / the smallest probability a ``th`` says (2**-56).
LARGEST_COUNT = float(2**56)


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
    from anywhere, so an ``adjusted_count`` that is no count a kept span can
    have (text, NaN, below 1, above the 2**56 of the smallest probability a
    ``th`` can say) is passed over for the ``th``, as if absent: one 1e308
    would make every total infinite."""
    count = (_checked(span).attributes or {}).get(ADJUSTED_COUNT)
    if isinstance(count, (int, float)) and not isinstance(count, bool) and 1 <= count <= LARGEST_COUNT:
        return float(count)
    th = threshold_of(span)
    return None if th is None else _core.adjusted_count(th)


class Estimate(NamedTuple):
    """How many spans some kept spans stand for, and how sure that is."""

    #: The sum of the spans' adjusted counts: an unbiased estimate of how many
    #: spans like them there were.
    total: float
    #: Its standard error, estimated from the same spans (see ``estimate``).
    standard_error: float
    #: Spans counted.
    spans: int
    #: Spans that say nothing of what they stand for (no ``th``, no adjusted
    #: count), left out of ``total``.
    unweighted: int


def estimate(spans: Iterable[Any], count: Callable[[Any], Optional[float]] = adjusted_count) -> Estimate:
    """The total the kept ``spans`` stand for (the sum of their adjusted
    counts, or of what ``count`` reads from each) and its standard error,
    both read from the spans alone.

    A span kept with probability p counts 1/p; the variance of such a sum is
    estimated without bias by adding, over each pair of kept spans of one
    trace, max(c, c') * (min(c, c') - 1) for their counts c and c' (so c(c - 1)
    for a span alone). Spans of one trace are kept by the same randomness, so
    they add up together; different traces draw independently, so they add
    nothing to each other. A certain keep (count 1) adds no uncertainty. The
    formula holds when each probability was set before the span's draw, as a
    budget's pace is, however it changed over time.
    """
    by_trace: Dict[int, List[float]] = defaultdict(list)
    total, counted, unweighted = 0.0, 0, 0
    for span in spans:
        weight = count(span)
        if weight is None:
            unweighted += 1
            continue
        total += weight
        counted += 1
        if weight > 1.0:
            by_trace[span.context.trace_id].append(weight)
    variance = 0.0
    for counts in by_trace.values():
        counts.sort()
        # Each pair (k <= l) of sorted counts adds c_l * (c_k - 1), twice when k < l.
        below = 0.0
        for c in counts:
            variance += c * (c - 1.0) + 2.0 * c * below
            below += c - 1.0
    return Estimate(total, math.sqrt(variance), counted, unweighted)
