"""The Jaeger remote poller under attack and fault: documents that used to
kill its thread (100,000-deep nesting, a 400-digit number), a server that
sends a byte a second, rates beyond any bucket, and redirects to another
origin. Nothing a server sends stops the poller, ends a decision, or changes
the source behind ``source``'s back."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from test_remote import StrategyServer, wait_for
from tracesieve import ConfigError, JaegerRemoteSampler

from helpers import LoopbackServer

GOOD = {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 1.0}}


def _kept(sampler: Any, n: int = 1000) -> int:
    return sum(sampler.should_sample(None, t * 0x9E3779B97F4A7C15 % 2**128 or 1, "GET /").decision.is_sampled() for t in range(1, n + 1))


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000 + b"]" * 100_000, b'{"probabilisticSampling": {"samplingRate": ' + b"9" * 400 + b"}}", b"\xff\xfe garbage"],
    ids=["deep", "huge-number", "not-utf8"],
)
def test_a_bad_document_is_counted_and_the_poller_lives_on(raw):
    server = StrategyServer(GOOD)
    server.raw = raw
    sampler = JaegerRemoteSampler("svc", endpoint=server.endpoint, polling_interval=0.05, initial_rate=0.0)
    try:
        wait_for(lambda: sampler.remote_status()["fetch_failures"] >= 2)
        assert sampler.poller is not None and sampler.poller._thread.alive, "the poller thread is alive"
        server.raw = None  # a good document next: applied
        wait_for(lambda: sampler.remote_status()["fetches"] >= 1)
        assert _kept(sampler) == 1000
    finally:
        sampler.shutdown()
        server.stop()


class TrickleServer:
    """Accepts a connection and sends its answer a byte a second, forever."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(client,), daemon=True).start()

    def _trickle(self, client: socket.socket) -> None:
        try:
            client.recv(4096)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b" " * 100:
                if self.stopping.is_set():
                    return
                client.sendall(bytes([byte]))
                time.sleep(1.0)
        except OSError:
            pass
        finally:
            client.close()

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()


def test_a_trickling_server_is_cut_at_the_deadline_and_shutdown_ends_the_thread():
    server = TrickleServer()
    sampler = JaegerRemoteSampler("svc", endpoint=server.endpoint, polling_interval=60, timeout=2.0)
    try:
        started = time.monotonic()
        wait_for(lambda: sampler.remote_status()["fetch_failures"] >= 1, timeout=10)
        assert time.monotonic() - started < 3.5, "a fetch ends within its timeout, in all"
        assert "timed out" in sampler.remote_status()["last_error"]
        # A fetch in flight when shutdown comes: shutdown ends the thread within its timeout.
        threading.Thread(target=sampler.poller.poll, daemon=True).start()  # type: ignore[union-attr]
        time.sleep(0.3)
        stopping = time.monotonic()
        sampler.shutdown()
        assert time.monotonic() - stopping < 2.0
        assert not sampler.poller._thread.alive  # type: ignore[union-attr]
    finally:
        server.stop()


@pytest.mark.parametrize("rate", [1_048_575, 1_048_576, 2e6, 2**31 - 1, 1e308])
def test_large_rates_keep_every_trace(rate):
    sampler = JaegerRemoteSampler("svc", initial_rate=0.0, start=False)
    limit = {"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": rate}}
    if rate < 2**31:
        sampler.update(limit)
        assert _kept(sampler) == 1000
    else:
        # maxTracesPerSecond is a 32-bit integer in Jaeger's protocol: its Go client refuses more.
        with pytest.raises(ConfigError, match="not a 32-bit whole number"):
            sampler.update(limit)
    per_operation = {
        "operationSampling": {
            "defaultSamplingProbability": 0.0,
            "defaultLowerBoundTracesPerSecond": rate,
            "perOperationStrategies": [],
        }
    }
    sampler.update(per_operation)
    assert _kept(sampler) == 1000, "a large lower bound keeps every trace"
    assert sampler.remote_status()["rejected"] == (0 if rate < 2**31 else 1)


class Redirector(LoopbackServer):
    """Answers every request with a redirect to ``target``."""

    def __init__(self, target: str) -> None:
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", redirector.target + self.path)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.target = target
        self._serve(Handler)


def test_a_redirect_to_another_origin_is_refused_and_counted():
    other = StrategyServer(GOOD)
    redirector = Redirector(other.endpoint)
    sampler = JaegerRemoteSampler("svc", endpoint=redirector.endpoint, polling_interval=0.05, initial_rate=0.0)
    try:
        wait_for(lambda: sampler.remote_status()["fetch_failures"] >= 2)
        status = sampler.remote_status()
        assert "another origin" in status["last_error"] and status["fetches"] == 0
        assert other.requests == [], "the other server was never asked"
        assert _kept(sampler) == 0, "the initial rate stays in force"
        assert status["source"].startswith(redirector.endpoint)
    finally:
        sampler.shutdown()
        redirector.stop()
        other.stop()
