"""tracesieve capture: a trace kept after the fact by every service sharing
tail decisions through a real redis-server, announced from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tracesieve.cli import main
from tracesieve.local_redis import RedisServer

#: Two services of the fleet, in a process of their own: each drops its span
#: of one trace and retains it, then exports what a capture brings back.
SERVICES = """
import json, sys, time
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tracesieve import ProbabilitySampler, TracerProvider

exporter = InMemorySpanExporter()
providers = []
for name in ("orders", "payments"):
    provider = TracerProvider(
        sampler=ProbabilitySampler(0.0, defer=True), decision_wait=0.05, share=sys.argv[1], share_interval=0.02, shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    providers.append(provider)
propagator = TraceContextTextMapPropagator()
with providers[0].get_tracer("orders").start_as_current_span("GET /api/orders", kind=SpanKind.SERVER) as root:
    carrier = {}
    propagator.inject(carrier)
    with providers[1].get_tracer("payments").start_as_current_span("POST /charge", context=propagator.extract(carrier)):
        pass
for provider in providers:
    provider.force_flush()
# Dropped and retained, and reading the fleet's stream (from its newest entry on) before the capture comes.
while not all(p.stats()["retained_spans"] and p.sharing_status()["connected"] for p in providers):
    time.sleep(0.02)
print(f"{root.get_span_context().trace_id:032x}", len(exporter.get_finished_spans()), flush=True)
sys.stdin.readline()  # the capture was announced
deadline = time.monotonic() + 10
while len(exporter.get_finished_spans()) < 2 and time.monotonic() < deadline:
    time.sleep(0.02)
for provider in providers:
    provider.force_flush()
print(json.dumps(sorted((s.name, s.attributes.get("tracesieve.tail.reason")) for s in exporter.get_finished_spans())), flush=True)
for provider in providers:
    provider.shutdown()
"""


def _capture(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracesieve", "capture", *args], capture_output=True, text=True, timeout=60)


def test_a_capture_from_the_command_line_keeps_the_trace_in_every_service(redis_server: RedisServer) -> None:
    share = f"{redis_server.url}#checkout"
    services = subprocess.Popen([sys.executable, "-c", SERVICES, share], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        trace_id, exported = services.stdout.readline().split()
        assert exported == "0", "both services dropped their spans, and retain them"
        done = _capture(trace_id, "--share", share)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(f"announced 1 trace to the services sharing tail decisions at {redis_server.url}#checkout: ")
        out, _ = services.communicate("go\n", timeout=60)
    finally:
        services.kill()
    assert json.loads(out) == [["GET /api/orders", "shared:rule"], ["POST /charge", "shared:rule"]]


def test_trace_ids_piped_in_are_announced_in_batches_a_reader_takes(redis_server: RedisServer) -> None:
    """``-`` reads the ids from standard input (from grep, say); 2,500 of them
    go out in batches of at most 1,000, the most a service's reader takes."""
    ids = [f"{number:032x}" for number in range(1, 2_501)]
    done = subprocess.run(
        [sys.executable, "-m", "tracesieve", "capture", "-", "--share", f"{redis_server.url}#piped"],
        input="\n".join(" ".join(ids[i : i + 3]) for i in range(0, len(ids), 3)) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("announced 2,500 traces to ")
    entries = redis_server.client().xrange("tracesieve:piped:tail")
    assert [(len(fields[b"b"]) - 9) // 25 for _, fields in entries] == [1_000, 1_000, 500], "9 bytes of header, 25 per trace"
    empty = subprocess.run(
        [sys.executable, "-m", "tracesieve", "capture", "-", "--share", f"{redis_server.url}#piped"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 2 and empty.stderr == "tracesieve: error: TRACE_ID: standard input held no trace id\n"


def test_a_stream_a_capture_makes_expires_as_the_services_do(redis_server: RedisServer) -> None:
    """With no announcement lately the fleet's stream has expired: the capture
    makes it (services waiting on it read it), with the services' idle expiry,
    so it does not stay in Redis for good; a live stream's expiry is left."""
    key = "tracesieve:quiet:tail"
    assert _capture("4bf92f3577b34da6a3ce929d0e0e4736", "--share", f"{redis_server.url}#quiet").returncode == 0
    client = redis_server.client()
    assert client.xlen(key) == 1 and 0 < client.pttl(key) <= 60_000
    client.pexpire(key, 600_000)  # as services with share_ttl=600 keep it
    assert _capture("4bf92f3577b34da6a3ce929d0e0e4736", "--share", f"{redis_server.url}#quiet").returncode == 0
    assert client.xlen(key) == 2 and client.pttl(key) > 60_000


def test_a_capture_with_a_bad_trace_id_or_url_or_an_unreachable_redis(capsys) -> None:
    assert main(["capture", "4bf9", "--share", "redis://127.0.0.1:1/0#x"]) == 2
    assert capsys.readouterr().err.startswith("tracesieve: error: trace_id: expected 32 hexadecimal digits (as logs show it), ")
    assert main(["capture", "4bf92f3577b34da6a3ce929d0e0e4736", "--share", "http://x"]) == 2
    assert "--share" in capsys.readouterr().err
    done = _capture("4bf92f3577b34da6a3ce929d0e0e4736", "--share", "redis://user:s3cret@127.0.0.1:1/0#x")
    assert done.returncode == 1
    assert done.stdout.startswith("tracesieve: redis://user:***@127.0.0.1:1/0#x: the capture was not announced: "), done.stdout
    assert "s3cret" not in done.stdout + done.stderr
    assert (
        "the password in --share shows to every user of this host in its process list; give it in TRACESIEVE_REDIS_PASSWORD" in done.stderr
    )
    done = _capture("4bf92f3577b34da6a3ce929d0e0e4736", "--share", "redis://127.0.0.1:1/0?password=s3cret#x")
    assert "s3cret" not in done.stdout + done.stderr and "process list" in done.stderr


def test_a_password_is_taken_from_the_environment_out_of_the_process_list() -> None:
    """A password on the command line is readable by every user of the host
    (``ps``, /proc/PID/cmdline); from TRACESIEVE_REDIS_PASSWORD it is not."""
    server = RedisServer(password="s3cret-pass").start()
    try:
        env = {**os.environ, "TRACESIEVE_REDIS_PASSWORD": "s3cret-pass"}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tracesieve",
                "capture",
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "--share",
                f"redis://127.0.0.1:{server.port}/0#guarded",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
        assert server.client().xlen("tracesieve:guarded:tail") == 1
    finally:
        server.stop()


def test_a_trace_id_is_read_in_the_forms_logs_and_headers_show() -> None:
    from tracesieve._trace_ids import parse_trace_id

    number = 0x5759E988BD862E3FE1BE46A994272793
    for text in (
        "5759e988bd862e3fe1be46a994272793",
        " 5759E988BD862E3FE1BE46A994272793\n",
        "0x5759e988bd862e3fe1be46a994272793",
        "00-5759e988bd862e3fe1be46a994272793-00f067aa0ba902b7-01",
        "1-5759e988-bd862e3fe1be46a994272793",  # X-Ray: its parts joined are the OpenTelemetry trace id
    ):
        assert parse_trace_id(text) == number, text
    for wrong in ("5759e988bd862e3fe1be46a99427279", "1-5759e988-bd862e3f", "0" * 32, "zz" * 16, 1 << 128, True, 2.5):
        with pytest.raises(ValueError, match=r"^trace_id: expected "):
            parse_trace_id(wrong)
