"""The specification oracle itself: it reproduces the spec's published
threshold table and its consistency law, so comparing against it means
comparing against the spec."""

from __future__ import annotations

import pytest

from tracesieve.reference.spec import ReferenceProbabilitySampler, parse_ot, probability_to_th, th_to_threshold, threshold_to_th

from helpers import parent_context

# Rows of the spec's "1-in-N" table (precision 3, 4, 5).
SPEC_TABLE = [
    (0.5, ("8", "8", "8")),
    (1 / 3, ("aab", "aaab", "aaaab")),
    (0.1, ("e66", "e666", "e6666")),
    (0.01, ("fd71", "fd70a", "fd70a4")),
    (0.001, ("ffbe7", "ffbe77", "ffbe76d")),
]


@pytest.mark.parametrize("probability,expected", SPEC_TABLE)
def test_the_oracle_reproduces_the_spec_table(probability, expected):
    assert tuple(probability_to_th(probability, p) for p in (3, 4, 5)) == expected


def test_th_text_and_threshold_round_trip():
    for th in ("8", "c", "e6666", "fd70a4", "ffffffffffffff"):
        assert threshold_to_th(th_to_threshold(th)) == th
    assert threshold_to_th(0) == "0"


def test_the_oracle_keeps_iff_randomness_clears_the_threshold():
    sampler = ReferenceProbabilitySampler(0.25)
    t = th_to_threshold("c")
    assert sampler.should_sample(None, t, "x").decision.is_sampled()
    assert not sampler.should_sample(None, t - 1, "x").decision.is_sampled()
    kept = sampler.should_sample(None, t, "x")
    assert kept.trace_state.get("ot") == "th:c"


def test_the_oracle_follows_a_parent_and_erases_an_inconsistent_th():
    sampler = ReferenceProbabilitySampler(0.0)
    consistent = sampler.should_sample(parent_context(1 << 55, True, [("ot", "th:8")]), 1 << 55, "x")
    assert consistent.decision.is_sampled() and consistent.trace_state.get("ot") == "th:8"
    inconsistent = sampler.should_sample(parent_context(1, True, [("ot", "th:8")]), 1, "x")
    assert inconsistent.decision.is_sampled() and "ot" not in inconsistent.trace_state


def test_ot_parsing_follows_the_grammar():
    assert parse_ot("th:8;rv:0123456789abcd;x:Y") == [("th", "8"), ("rv", "0123456789abcd"), ("x", "Y")]
    for malformed in ["th:8;bad;rv:0123456789abcd", "th:8;X:y", "th:8;", "th:8;th:c", "a:" + "b" * 300, ""]:
        assert parse_ot(malformed) is None, malformed
