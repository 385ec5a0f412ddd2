"""Trace and span ids from a seeded generator, so every run of a scenario
(and every sampler compared on it) sees the same traces."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace.id_generator import IdGenerator


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1
