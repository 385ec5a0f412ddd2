"""A real pre-fork server: gunicorn with 4 sync workers serving a WSGI app
instrumented with OpenTelemetry, its sampling pipeline on a host store. The
spans kept across all workers follow one budget count and one rate limit, and
an error burst sent to the app raises the boost in every worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import pytest

APP = textwrap.dedent(
    """
    import json, os
    from opentelemetry import trace
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from tracesieve import from_config

    HERE = os.path.dirname(os.path.abspath(__file__))
    sampler = from_config(json.load(open(os.path.join(HERE, "sampling.json"))))

    class CountingExporter(SpanExporter):
        def export(self, spans):
            with open(os.path.join(HERE, f"kept-{os.getpid()}.txt"), "a") as out:
                out.write("x\\n" * len(spans))
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(sampler.processor)
    provider.add_span_processor(SimpleSpanProcessor(CountingExporter()))
    trace.set_tracer_provider(provider)

    def plain_app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/error":
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"failed"]
        if path == "/status":
            stats = sampler.stats()
            body = {"pid": os.getpid(), "boost": stats["boost"], "budget": sampler.budget_status(), "store": stats["store"]}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = OpenTelemetryMiddleware(plain_app, tracer_provider=provider)
    """
)

RATE = 100.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        return error.read()


@pytest.fixture(params=["preload", "no-preload"])
def server(request, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    document = {
        "store": f"file://{tmp_path}/sampling.tracesieve",
        "defer": True,  # drops are recorded, so every error reaches the shared windows
        "adaptive": {"window": 120, "error_steps": [[5, 2.0], [10, 3.0]]},
        "probability": {"rate": 1.0},  # so the rate limit binds however fast the machine serves
        "budget": {"budget": 1e9, "period": "day"},
        "rate_limit": {"traces_per_second": RATE},
    }
    (tmp_path / "sampling.json").write_text(json.dumps(document))
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "app:app"]
    if request.param == "preload":
        command.insert(3, "--preload")
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            _get(base + "/")
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError((tmp_path / "gunicorn.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield base, tmp_path, time.monotonic()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _load(url: str, requests: int, threads: int = 8) -> float:
    """Send ``requests`` GETs from ``threads`` threads; returns the seconds taken."""
    started = time.monotonic()

    def run(count: int) -> None:
        for _ in range(count):
            _get(url)

    workers = [threading.Thread(target=run, args=(requests // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.monotonic() - started


def _statuses(base: str) -> dict:
    """Each worker's /status (by pid), asked until all four answered."""
    seen: dict = {}
    deadline = time.monotonic() + 30
    while len(seen) < 4 and time.monotonic() < deadline:
        status = json.loads(_get(base + "/status"))
        seen[status["pid"]] = status
    assert len(seen) == 4, f"only {len(seen)} workers answered"
    return seen


def test_workers_share_one_budget_one_rate_limit_and_one_error_signal(server):
    base, folder, ready_at = server
    before = _statuses(base)
    assert all(s["store"]["shared"] == ["budget", "rate_limit", "signals"] for s in before.values())
    load_seconds = _load(base + "/", 3000)
    seconds = time.monotonic() - ready_at
    kept_files = list(folder.glob("kept-*.txt"))
    kept = sum(len(f.read_text().splitlines()) for f in kept_files)
    # One rate limit for the host: R*t plus the burst (R) since the server was
    # ready (and the readiness probe), not 4 x R x t.
    assert kept <= RATE * seconds + RATE + 2, (kept, seconds)
    assert kept >= 0.8 * RATE * load_seconds, "the limit, not the load, bound what was kept"
    assert len(kept_files) >= 2, "several workers served and kept spans"
    # One budget count for the host: what every worker kept, counted once.
    after = _statuses(base)
    budget = json.loads(_get(base + "/status"))["budget"]  # this request's own span is counted at its start
    time.sleep(0.3)  # and exported once its response is done
    kept = sum(len(f.read_text().splitlines()) for f in folder.glob("kept-*.txt"))
    assert budget["used_spans"] - budget["assumed_spans"] == kept
    # No errors yet: no boost anywhere. Then a burst of 12 errors, wherever they land.
    assert all(s["boost"] == 1.0 for s in after.values())
    for _ in range(12):
        _get(base + "/error")
    time.sleep(1.1)  # each worker re-reads the windows once per resolution tick (1 s)
    boosted = _statuses(base)
    assert sorted(s["boost"] for s in boosted.values()) == [3.0] * 4
