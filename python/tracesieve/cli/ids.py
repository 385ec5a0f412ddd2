"""Trace and span ids from a seeded generator, so every run of a scenario
(and every sampler compared on it) sees the same traces."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace.id_generator import IdGenerator


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        # A stream of their own: the scenarios draw traffic from
        # random.Random(seed), and ids repeating those draws would tie a
        # trace's randomness to the load a budget paced it by.
        self._random = random.Random(f"tracesieve-ids:{seed}")

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1
