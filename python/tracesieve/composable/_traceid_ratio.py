"""The composable probability sampler (the specification's ComposableProbability)."""

from __future__ import annotations

from typing import Any, Dict

from tracesieve._checks import quoted
from tracesieve._core import ConfigError
from tracesieve.composable._composable import Composable, ComposableSampler, Foreign
from tracesieve.composable._trace_state import serialize_th
from tracesieve.composable._util import MAX_THRESHOLD, calculate_threshold


class ComposableTraceIDRatioBased(Composable):
    """Every span at one probability, its exact 56-bit threshold reliable."""

    def __init__(self, ratio: float):
        self._ratio = ratio
        threshold = calculate_threshold(ratio)
        threshold_text = "max" if threshold == MAX_THRESHOLD else serialize_th(threshold)
        self._description = f"ComposableTraceIDRatioBased{{threshold={threshold_text}, ratio={ratio}}}"

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"probability": {"ratio": float(self._ratio)}}

    def get_description(self) -> str:
        return self._description


def composable_traceid_ratio_based(ratio: float) -> ComposableSampler:
    """A composable sampler that keeps each span with probability ``ratio``:
    threshold ``2**56 - round(ratio * 2**56)``, reliable, no attributes. A ratio
    too small for 56 bits (0 included) drops every span, as always-off does."""
    # The range alone: NaN fails it, and math.isnan would overflow on a huge integer.
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"ratio: {quoted(ratio)} is out of range; expected a sampling ratio between 0.0 and 1.0")
    return ComposableTraceIDRatioBased(ratio)
