"""JaegerRemoteSampler against a strategy server on loopback: each strategy type
and JSON encoding decides as specified, changes take effect within a polling
interval without a new sampler, failures (down, slow, malformed) keep the
strategy in force and are counted, file mode, fork, composition and the SDK's
own configurator."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

import pytest
from opentelemetry.sdk._configuration import _import_sampler

from tracesieve import BudgetSampler, ConfigError, JaegerRemoteSampler, ProbabilitySampler
from tracesieve.testing import SimClock

from helpers import LoopbackServer, metric_points

T0 = 1_767_225_600.0
N = 20_000


class StrategyServer(LoopbackServer):
    """Serves ``document`` (or ``raw`` bytes) at /sampling; ``delay`` seconds late."""

    def __init__(self, document: Any = None):
        self.document = document
        self.raw: Any = None
        self.delay = 0.0
        self.status = 200
        self.requests: list = []
        self.authorizations: list = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                server.authorizations.append(self.headers.get("Authorization"))
                time.sleep(server.delay)
                body = server.raw if server.raw is not None else json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)


@pytest.fixture
def server():
    strategy_server = StrategyServer({"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.25}})
    yield strategy_server
    strategy_server.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - started


def kept(sampler: Any, name: str = "GET /", n: int = N, seed: int = 0) -> int:
    return sum(
        sampler.should_sample(None, ((i + seed * n) * 0x9E3779B97F4A7C15) & (2**64 - 1) | 1, name).decision.is_sampled()
        for i in range(1, n + 1)
    )


def within_binomial(count: int, n: int, p: float) -> bool:
    """Within 5 standard deviations (a correct sampler fails once in ~3 million runs)."""
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def remote(server: StrategyServer, **kwargs: Any) -> JaegerRemoteSampler:
    sampler = JaegerRemoteSampler("checkout", endpoint=server.endpoint, **kwargs)
    wait_for(lambda: sampler.remote_status()["fetches"] + sampler.remote_status()["fetch_failures"] >= 1)
    return sampler


PROBABILISTIC = [
    {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.25}},
    {"strategyType": 0, "probabilisticSampling": {"samplingRate": 0.25}},
    {"strategy_type": "PROBABILISTIC", "probabilistic_sampling": {"sampling_rate": 0.25}},
    {"probabilisticSampling": {"samplingRate": 0.25}},
]


@pytest.mark.parametrize("document", PROBABILISTIC, ids=["type-name", "type-number", "snake-case", "no-type"])
def test_probabilistic_strategies_in_every_encoding(server, document):
    server.document = document
    sampler = remote(server)
    assert server.requests[0] == "/sampling?service=checkout"
    assert sampler.remote_status()["strategy"] == "probabilistic 0.25"
    assert within_binomial(kept(sampler), N, 0.25)
    result = sampler.should_sample(None, 0xFFFF_FFFF_FFFF_FFFF, "GET /")
    assert result.trace_state.get("ot") == "th:c", "a consistent threshold for 0.25"
    sampler.shutdown()


def test_per_operation_probabilities_default_and_cap(server):
    server.document = {
        "strategyType": "PROBABILISTIC",
        "operationSampling": {
            "defaultSamplingProbability": 0.1,
            "perOperationStrategies": [
                {"operation": "GET /checkout", "probabilisticSampling": {"samplingRate": 0.5}},
                {"operation": "GET /health", "probabilisticSampling": {"samplingRate": 0.0}},
                {"operation": "GET /over-the-cap", "probabilisticSampling": {"samplingRate": 1.0}},
            ],
        },
    }
    sampler = remote(server, max_operations=2)
    assert within_binomial(kept(sampler, "GET /checkout"), N, 0.5)
    assert kept(sampler, "GET /health") == 0
    assert within_binomial(kept(sampler, "GET /over-the-cap"), N, 0.1), "beyond max_operations: the default"
    assert within_binomial(kept(sampler, "anything else"), N, 0.1)
    status = sampler.stats()["remote"]
    assert status["operations"]["GET /checkout"]["decisions"] == N
    assert status["default"]["decisions"] == 2 * N
    assert status["operations_over_cap"] == 1
    sampler.shutdown()


def test_the_lower_bound_keeps_rare_operations_visible(server):
    server.document = {
        "operationSampling": {
            "defaultSamplingProbability": 0.0001,
            "defaultLowerBoundTracesPerSecond": 0.5,
            "perOperationStrategies": [{"operation": "rare", "probabilisticSampling": {"samplingRate": 0.0}}],
        }
    }
    clock = SimClock(T0)
    sampler = remote(server, clock=clock)
    kept_rare = 0
    for second in range(600):  # one call a second for ten minutes
        clock.now = T0 + second
        result = sampler.should_sample(None, (second * 0x9E3779B97F4A7C15) & (2**64 - 1) | 1, "rare")
        if result.decision.is_sampled():
            kept_rare += 1
            assert "th" not in ((result.trace_state or {}).get("ot") or ""), "a lower-bound keep is no probability sample"
    # 0.5 traces/s over 600 s, plus a burst of one: 300 to 301.
    assert 299 <= kept_rare <= 301
    assert sampler.stats()["remote"]["operations"]["rare"]["lower_bound_keeps"] == kept_rare
    sampler.shutdown()


def test_rate_limiting_keeps_at_most_the_rate(server):
    server.document = {"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 5}}
    clock = SimClock(T0)
    sampler = remote(server, clock=clock)
    total = 0
    for step in range(1000):  # 100 spans a second for 10 s
        clock.now = T0 + step / 100
        total += sampler.should_sample(None, step * 7919 + 1, "GET /").decision.is_sampled()
    assert 50 <= total <= 55, "5/s for 10 s, plus the initial burst of 5"
    assert sampler.remote_status()["type"] == "rate_limiting"
    sampler.shutdown()


def test_a_new_strategy_takes_effect_within_one_polling_interval(server):
    server.document = {"probabilisticSampling": {"samplingRate": 0.0}}
    sampler = remote(server, polling_interval=0.2)
    assert kept(sampler, n=1000) == 0
    server.document = {"probabilisticSampling": {"samplingRate": 1.0}}
    waited = wait_for(lambda: sampler.remote_status()["updates"] == 2)
    assert waited <= 0.2 * 1.1 + 0.5, "one polling interval (with its jitter), plus the fetch"
    assert kept(sampler, n=1000) == 1000, "the same sampler, the new strategy"
    sampler.shutdown()


def test_server_down_at_start_uses_the_initial_rate():
    down = StrategyServer()
    endpoint = down.endpoint
    down.stop()
    sampler = JaegerRemoteSampler("checkout", endpoint=endpoint, initial_rate=0.5, polling_interval=0.1)
    wait_for(lambda: sampler.remote_status()["fetch_failures"] >= 2)
    status = sampler.remote_status()
    assert status["strategy"].startswith("initial probabilistic 0.5") and status["fetches"] == 0
    # The exchange's own words, not wrapped in a second type ("ValueError: ConnectionRefusedError: ...").
    assert status["last_error"].startswith("ConnectionRefusedError: ")
    assert within_binomial(kept(sampler), N, 0.5)
    sampler.shutdown()


def test_server_down_later_keeps_the_last_good_strategy(server):
    server.document = {"probabilisticSampling": {"samplingRate": 1.0}}
    sampler = remote(server, polling_interval=0.1, initial_rate=0.0)
    server.stop()
    wait_for(lambda: sampler.remote_status()["fetch_failures"] >= 2)
    assert kept(sampler, n=1000) == 1000
    sampler.shutdown()


def test_a_slow_server_times_out_and_never_stalls_a_decision(server, caplog):
    server.delay = 2.0
    sampler = JaegerRemoteSampler("checkout", endpoint=server.endpoint, timeout=0.2, initial_rate=1.0)
    started = time.monotonic()
    assert sampler.should_sample(None, 12345, "GET /").decision.is_sampled()
    assert time.monotonic() - started < 0.1, "should_sample does not wait for the fetch (timeout 0.2 s, server 2 s)"
    waited = wait_for(lambda: sampler.remote_status()["fetch_failures"] == 1)
    assert waited < 1.5
    assert "timed out" in sampler.remote_status()["last_error"]
    sampler.shutdown()


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"{not json", "JSONDecodeError"),
        (json.dumps({"probabilisticSampling": {"samplingRate": "half"}}).encode(), '"half" is not a number'),
        (json.dumps({"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 2.5}}).encode(), "2.5 is not a 32-bit whole number"),
        (
            json.dumps(
                {
                    "operationSampling": {
                        "defaultSamplingProbability": 0.1,
                        "perOperationStrategies": [
                            {"operation": f"op{i}", "probabilisticSampling": {"samplingRate": 0.5}} for i in range(100_001)
                        ],
                    }
                }
            ).encode(),
            "too many",
        ),
    ],
    ids=["malformed-json", "probability-not-a-number", "fractional-rate", "huge-operation-list"],
)
def test_a_bad_document_is_rejected_whole_and_counted(server, raw, expected, caplog):
    server.document = {"probabilisticSampling": {"samplingRate": 0.25}}
    sampler = remote(server, polling_interval=0.1)
    server.raw = raw
    with caplog.at_level(logging.WARNING, logger="tracesieve.remote"):
        wait_for(lambda: sampler.remote_status()["fetch_failures"] >= 2, timeout=20)
    status = sampler.remote_status()
    assert expected in status["last_error"]
    assert status["strategy"] == "probabilistic 0.25", "never half-applied"
    assert sum(expected in record.getMessage() for record in caplog.records) == 1, "logged once"
    if expected != "JSONDecodeError":
        assert status["rejected"] >= 2
    sampler.shutdown()


def test_a_strategy_file_is_read_and_re_read_when_it_changes(tmp_path):
    path = tmp_path / "strategy.json"
    path.write_text(json.dumps({"probabilisticSampling": {"samplingRate": 0.0}}))
    sampler = JaegerRemoteSampler("checkout", endpoint=f"file://{path}", polling_interval=0.05)
    wait_for(lambda: sampler.remote_status()["fetches"] == 1)
    assert kept(sampler, n=1000) == 0
    time.sleep(0.02)
    path.write_text(json.dumps({"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 1.0}}))
    wait_for(lambda: sampler.remote_status()["updates"] == 2)
    assert kept(sampler, n=1000) == 1000
    sampler.shutdown()


@pytest.mark.timeout(30)
def test_a_named_pipe_in_place_of_the_strategy_file_is_reported_and_the_poller_lives_on(tmp_path, caplog):
    """Regression: the poller waited forever for a writer to a named pipe, silently."""
    path = tmp_path / "strategy.json"
    os.mkfifo(path)
    with caplog.at_level(logging.WARNING, logger="tracesieve.remote"):
        sampler = JaegerRemoteSampler("checkout", endpoint=f"file://{path}", polling_interval=0.05, initial_rate=0.0)
        wait_for(lambda: "not a regular file but a named pipe" in caplog.text)
    path.unlink()
    path.write_text(json.dumps({"probabilisticSampling": {"samplingRate": 1.0}}))
    wait_for(lambda: sampler.remote_status()["updates"] == 1)
    assert kept(sampler, n=100) == 100
    sampler.shutdown()


def test_a_strategy_file_every_user_may_write_is_reported_and_read_once_it_is_not(tmp_path, caplog):
    path = tmp_path / "strategy.json"
    path.write_text(json.dumps({"probabilisticSampling": {"samplingRate": 1.0}}))
    path.chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="tracesieve.remote"):
        sampler = JaegerRemoteSampler("checkout", endpoint=f"file://{path}", polling_interval=0.05, initial_rate=0.0)
        wait_for(lambda: "is not read, as every user may write it (mode 0666)" in caplog.text)
    assert kept(sampler, n=100) == 0, "the initial strategy stays"
    path.chmod(0o644)  # the same contents, the same time stamp: read now all the same
    wait_for(lambda: sampler.remote_status()["updates"] == 1)
    assert kept(sampler, n=100) == 100
    sampler.shutdown()


def test_it_composes_under_a_budget_and_follows_the_strategy(server):
    server.document = {"probabilisticSampling": {"samplingRate": 0.0}}
    inner = remote(server, polling_interval=0.1)
    budget = BudgetSampler(inner, budget=10**9, clock=SimClock(T0))  # the period's start: nothing spent yet
    assert kept(budget, n=1000) == 0
    server.document = {"probabilisticSampling": {"samplingRate": 1.0}}
    wait_for(lambda: inner.remote_status()["updates"] == 2)
    assert kept(budget, n=1000) > 900, "the budget paces what the remote strategy now keeps"
    inner.shutdown()


def test_the_poller_restarts_in_a_forked_child(server):
    server.document = {"probabilisticSampling": {"samplingRate": 0.0}}
    sampler = remote(server, polling_interval=0.1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        ok = 0
        try:
            server.document = {"probabilisticSampling": {"samplingRate": 1.0}}  # the child's copy; the server thread is gone
            before = sampler.remote_status()["fetches"] + sampler.remote_status()["fetch_failures"]
            wait_for(lambda: sampler.remote_status()["fetches"] + sampler.remote_status()["fetch_failures"] > before + 1)
            ok = 1
        finally:
            os.write(write, bytes([ok]))
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"\x01", "the child polls on its own"
    os.waitpid(pid, 0)
    sampler.shutdown()


def test_shutdown_stops_polling(server):
    sampler = remote(server, polling_interval=0.05)
    sampler.shutdown()
    count = len(server.requests)
    time.sleep(0.2)
    assert len(server.requests) == count


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"endpoint": "ftp://strategies"}, "endpoint: 'ftp://strategies' is not a strategy source"),
        ({"endpoint": "file://relative.json"}, "names no absolute path"),
        ({"endpoint": "file:relative.json"}, "names no absolute path"),  # read from the working directory, before
        ({"endpoint": "file://otherhost/etc/strategy.json"}, "names no absolute path"),
        ({"initial_rate": 2.0}, r"initial_rate: 2 is out of range; expected a number in \[0, 1\]"),
        ({"polling_interval": 0}, "polling_interval: 0 is out of range"),
        ({"max_operations": 0}, "max_operations: 0 is not a positive whole number"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, expected):
    with pytest.raises(ConfigError, match=expected):
        JaegerRemoteSampler("checkout", **kwargs)


def test_a_file_uri_is_read_as_rfc_8089_writes_it(tmp_path):
    """Regression: a percent-encoded path (a space as %20) was looked for as
    written, and file://localhost/... was refused."""
    folder = tmp_path / "jaeger strategies"
    folder.mkdir()
    (folder / "strategy.json").write_text(json.dumps({"probabilisticSampling": {"samplingRate": 1.0}}))
    for endpoint in (f"file://{folder.as_posix().replace(' ', '%20')}/strategy.json", f"file://localhost{folder}/strategy.json"):
        sampler = JaegerRemoteSampler("checkout", endpoint=endpoint, polling_interval=0.05, initial_rate=0.0)
        wait_for(lambda s=sampler: s.remote_status()["updates"] == 1)
        assert kept(sampler, n=100) == 100, endpoint
        sampler.shutdown()


def test_the_sdk_configurator_builds_both_entry_points(server, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "payments")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", f"endpoint={server.endpoint},pollingIntervalMs=100,initialSamplingRate=0.25")
    plain = _import_sampler("jaeger_remote")
    parented = _import_sampler("parentbased_jaeger_remote")
    for sampler, respect_parent in ((plain, False), (parented, True)):
        assert isinstance(sampler, JaegerRemoteSampler)
        assert sampler.respect_parent is respect_parent
        assert sampler.service_name == "payments"
        assert sampler.poller is not None and sampler.poller.interval == 0.1
        wait_for(lambda s=sampler: s.remote_status()["fetches"] >= 1)
        sampler.shutdown()
    assert "/sampling?service=payments" in server.requests


def test_a_bad_entry_point_argument_falls_back_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "endpoint=http://localhost:5778,pollingInterval=5")
    with caplog.at_level(logging.ERROR):
        sampler = _import_sampler("jaeger_remote")
    assert isinstance(sampler, ProbabilitySampler) and sampler.rate == 0.01
    assert "'pollingInterval=5' is not a setting" in caplog.text


def test_a_configuration_document_puts_remote_strategies_inside_a_budget(server, tmp_path):
    from tracesieve import from_config

    server.document = {"probabilisticSampling": {"samplingRate": 1.0}}
    path = tmp_path / "sampling.json"
    document = {
        "jaeger_remote": {"service_name": "checkout", "endpoint": server.endpoint, "polling_interval": 0.1, "initial_rate": 0.0},
        "budget": {"budget": 10**9, "period": "day"},
    }
    path.write_text(json.dumps(document))
    sampler = from_config(path)
    wait_for(lambda: sampler.remote_status()["updates"] == 1)
    assert sampler.remote_status()["strategy"] == "probabilistic 1.0"
    assert any("jaeger_remote: the strategy for service 'checkout'" in line for line in sampler.description)
    # A reload with the same source keeps the strategy in force and its poller.
    poller = sampler._poller
    path.write_text(json.dumps({**document, "budget": {"budget": 10**8, "period": "day"}}))
    assert sampler.reload()
    assert sampler._poller is poller and sampler.remote_status()["strategy"] == "probabilistic 1.0"
    sampler.close()
    with pytest.raises(ConfigError, match="give either probability or jaeger_remote"):
        from_config({"probability": {"rate": 0.5}, "jaeger_remote": {"service_name": "x"}})
    with pytest.raises(ConfigError, match=r"jaeger_remote\.endpoint"):
        from_config({"jaeger_remote": {"service_name": "x", "endpoint": "ftp://x"}})


def test_metrics_report_operations_and_fetches(server):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    server.document = {
        "operationSampling": {
            "defaultSamplingProbability": 0.5,
            "perOperationStrategies": [{"operation": "GET /a", "probabilisticSampling": {"samplingRate": 1.0}}],
        }
    }
    reader = InMemoryMetricReader()
    sampler = JaegerRemoteSampler("checkout", endpoint=server.endpoint, meter_provider=MeterProvider(metric_readers=[reader]))
    wait_for(lambda: sampler.remote_status()["updates"] == 1)
    kept(sampler, "GET /a", n=10)
    kept(sampler, "other", n=5)
    points = metric_points(reader)
    assert points[("tracesieve.remote.operation_decisions", (("operation", "GET /a"),))] == 10
    assert points[("tracesieve.remote.operation_decisions", (("operation", ""),))] == 5
    assert points[("tracesieve.remote.fetches", (("outcome", "applied"),))] == 1
    assert points[("tracesieve.sampler.decisions", (("outcome", "sampled"),))] >= 10
    sampler.shutdown()


def test_it_is_a_base_for_adaptive_boosts(server):
    from tracesieve import AdaptiveSampler

    server.document = {"probabilisticSampling": {"samplingRate": 0.1}}
    base = remote(server)
    wait_for(lambda: base.remote_status()["updates"] == 1)
    boosted = AdaptiveSampler(base, error_steps=[(5, 2.0), (10, 3.0)])
    assert within_binomial(kept(boosted), N, 0.1)
    boosted.record_error(11)
    time.sleep(1.05)  # the boost is re-read once per window resolution
    assert within_binomial(kept(boosted, seed=1), N, 0.3), "the remote probability, boosted x3"
    base.shutdown()


def test_a_urls_user_info_is_sent_as_basic_credentials(server):
    """Regression: http://user:password@host endpoints (an authenticating proxy in
    front of the strategy server) were fetched with no credentials at all."""
    import base64

    host_port = server.endpoint.partition("://")[2]
    sampler = JaegerRemoteSampler("checkout", endpoint=f"http://sampler:p%2Fw%40rd@{host_port}")
    try:
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        assert server.authorizations[-1] == "Basic " + base64.b64encode(b"sampler:p/w@rd").decode()
        assert "p%2Fw%40rd" not in str(sampler.remote_status()) and "p/w@rd" not in str(sampler.remote_status())
    finally:
        sampler.shutdown()
    plain = JaegerRemoteSampler("checkout", endpoint=server.endpoint)
    try:
        wait_for(lambda: plain.remote_status()["fetches"] >= 1)
        assert server.authorizations[-1] is None
    finally:
        plain.shutdown()
    # Unencoded, a password's '/' ends the host: refused, and none of it shown.
    with pytest.raises(ConfigError, match="percent-encoded") as refused:
        JaegerRemoteSampler("checkout", endpoint=f"http://sampler:12/very-secret@{host_port}")
    assert "very-secret" not in str(refused.value)
