"""Observed keep rates lie within binomial bounds (fixed seeds; 6-sigma bounds,
which a correct sampler fails with probability below 1e-8)."""

from __future__ import annotations

import math
import random

import pytest

from tracesieve import ProbabilitySampler, TraceIdRatioSampler, _core

N = 100_000


def within_binomial(kept: int, n: int, p: float, sigmas: float = 6.0) -> bool:
    sd = math.sqrt(n * p * (1 - p))
    return abs(kept - n * p) <= sigmas * sd + 1


@pytest.mark.parametrize("cls", [ProbabilitySampler, TraceIdRatioSampler])
@pytest.mark.parametrize("rate", [0.001, 0.01, 0.1, 0.25, 0.5, 0.9])
def test_root_keep_rate_is_binomial(cls, rate):
    rng = random.Random(20261125 + int(rate * 1000))
    sampler = cls(rate)
    kept = sum(sampler.should_sample(None, rng.getrandbits(128), "s").decision.is_sampled() for _ in range(N))
    # The consistent sampler keeps at its rounded threshold's probability.
    actual_p = _core.probability_for_threshold(_core.threshold_for_probability(rate)) if cls is ProbabilitySampler else rate
    assert within_binomial(kept, N, actual_p), (kept, N * actual_p)
    assert sampler.stats()["sampled"] == kept
