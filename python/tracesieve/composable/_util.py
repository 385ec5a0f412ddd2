"""Threshold constants and arithmetic of consistent probability sampling, by
the names the OpenTelemetry SDK's composable samplers use."""

from __future__ import annotations

RANDOM_VALUE_BITS = 56
#: A threshold that rejects every span (probability 0).
MAX_THRESHOLD = 1 << RANDOM_VALUE_BITS
#: A threshold that keeps every span (probability 1).
MIN_THRESHOLD = 0
MAX_RANDOM_VALUE = MAX_THRESHOLD - 1
#: No threshold: the span is dropped, and no adjusted count can be read.
INVALID_THRESHOLD = -1
INVALID_RANDOM_VALUE = -1

_SCALE = float(MAX_THRESHOLD)


def calculate_threshold(sampling_probability: float) -> int:
    """The exact 56-bit threshold of a probability: ``2**56 - round(p * 2**56)``."""
    return MAX_THRESHOLD - round(sampling_probability * _SCALE)


def is_valid_threshold(threshold: int) -> bool:
    return MIN_THRESHOLD <= threshold <= MAX_THRESHOLD


def is_valid_random_value(random_value: int) -> bool:
    return 0 <= random_value <= MAX_RANDOM_VALUE
