"""Jaeger's own semantics, end to end: a Jaeger collector's strategies file (its
own fixtures' cases) and a strategy server's documents give the decisions a
Jaeger-instrumented service would make, and what was read differently from
what was written is logged."""

from __future__ import annotations

import json
import logging

from test_remote import N, StrategyServer, kept, remote, wait_for, within_binomial
from tracesieve import JaegerRemoteSampler

#: Jaeger's operation_strategies.json fixture (internal/sampling/samplingstrategy/file/fixtures).
OPERATION_STRATEGIES = {
    "default_strategy": {
        "type": "probabilistic",
        "param": 0.5,
        "operation_strategies": [
            {"operation": "op0", "type": "probabilistic", "param": 0.2},
            {"operation": "op6", "type": "probabilistic", "param": 0},
            {"operation": "spam", "type": "ratelimiting", "param": 1},
            {"operation": "op7", "type": "probabilistic", "param": 1},
        ],
    },
    "service_strategies": [
        {
            "service": "foo",
            "type": "probabilistic",
            "param": 0.8,
            "operation_strategies": [
                {"operation": "op6", "type": "probabilistic", "param": 0.5},
                {"operation": "op1", "type": "probabilistic", "param": 0.2},
                {"operation": "op2", "type": "ratelimiting", "param": 10},
            ],
        },
        {
            "service": "bar",
            "type": "ratelimiting",
            "param": 5,
            "operation_strategies": [
                {"operation": "op3", "type": "probabilistic", "param": 0.3},
                {"operation": "op4", "type": "ratelimiting", "param": 100},
                {"operation": "op5", "type": "probabilistic", "param": 0.4},
            ],
        },
    ],
}


def from_file(tmp_path, service, document, **kwargs):
    path = tmp_path / "strategies.json"
    path.write_text(json.dumps(document))
    sampler = JaegerRemoteSampler(service, endpoint=f"file://{path}", **kwargs)
    wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
    return sampler


def test_a_rate_limited_service_with_operations_samples_its_operations(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tracesieve.remote"):
        sampler = from_file(tmp_path, "bar", OPERATION_STRATEGIES, respect_parent=False)
    try:
        operations = sampler.remote_status()["operations"]
        assert {name: entry["probability"] for name, entry in operations.items()} == {
            "op3": 0.3,
            "op5": 0.4,
            "op0": 0.2,
            "op6": 0.0,
            "op7": 1.0,
        }
        assert sampler.remote_status()["default"]["probability"] == 0.001
        assert within_binomial(kept(sampler, "op3"), N, 0.3)
        assert within_binomial(kept(sampler, "op4"), N, 0.001), "op4's rate limit is dropped: the default 0.001 applies"
        assert any('operation "op4" has a rate limit' in record.getMessage() for record in caplog.records)
    finally:
        sampler.shutdown()


def test_a_probabilistic_service_merges_the_defaults_operations(tmp_path):
    sampler = from_file(tmp_path, "foo", OPERATION_STRATEGIES, respect_parent=False)
    try:
        operations = sampler.remote_status()["operations"]
        assert {name: entry["probability"] for name, entry in operations.items()} == {"op6": 0.5, "op1": 0.2, "op0": 0.2, "op7": 1.0}
        assert within_binomial(kept(sampler, "op2"), N, 0.8), "op2 gets the service's probability"
    finally:
        sampler.shutdown()


def test_a_fractional_rate_limit_keeps_nothing_as_in_jaeger(tmp_path):
    now = [1_767_225_600.0]
    document = {"service_strategies": [{"service": "slow", "type": "ratelimiting", "param": 0.9}]}
    sampler = from_file(tmp_path, "slow", document, respect_parent=False, clock=lambda: now[0])
    try:
        total = 0
        for _ in range(1_000):  # 100 seconds at 10 spans a second
            now[0] += 0.1
            total += sampler.should_sample(None, 1, "GET /").decision.is_sampled()
        assert total == 0
        assert sampler.remote_status()["max_traces_per_second"] == 0
    finally:
        sampler.shutdown()


def test_a_service_entry_without_a_type_is_jaegers_default_probability(tmp_path, caplog):
    document = {"default_strategy": {"type": "probabilistic", "param": 0.5}, "service_strategies": [{"service": "svc", "param": 0.9}]}
    with caplog.at_level(logging.WARNING, logger="tracesieve.remote"):
        sampler = from_file(tmp_path, "svc", document, respect_parent=False)
    try:
        assert sampler.remote_status()["strategy"] == "probabilistic 0.001"
        assert any("a missing type is not a strategy type" in record.getMessage() for record in caplog.records)
    finally:
        sampler.shutdown()


def test_out_of_range_rates_from_a_server_are_clamped_as_the_go_client_does(caplog):
    server = StrategyServer(
        {
            "strategyType": "PROBABILISTIC",
            "operationSampling": {
                "defaultSamplingProbability": 0.1,
                "perOperationStrategies": [
                    {"operation": "never", "probabilisticSampling": {"samplingRate": -0.1}},
                    {"operation": "always", "probabilisticSampling": {"samplingRate": 1.1}},
                ],
            },
        }
    )
    try:
        with caplog.at_level(logging.WARNING, logger="tracesieve.remote"):
            sampler = remote(server, respect_parent=False)
        status = sampler.remote_status()
        assert status["rejected"] == 0
        assert {name: entry["probability"] for name, entry in status["operations"].items()} == {"never": 0.0, "always": 1.0}
        assert kept(sampler, "never") == 0 and kept(sampler, "always") == N
        assert len(status["notes"]) == 2
        assert sum("is out of [0, 1]" in record.getMessage() for record in caplog.records) == 2
        sampler.shutdown()
    finally:
        server.stop()
