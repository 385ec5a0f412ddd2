"""Instructions per `should_sample` decision, counted by valgrind: a figure
that stays the same run after run on machines whose timings drift, for
comparing two builds. Each workload is the X-Ray benchmark's call (root spans,
its four HTTP attributes, random trace ids); the count is the whole Python
loop's, so the difference of a long and a short run, per decision.

The two span workloads count a whole span instead, ``start_span`` with three
attributes and ``end``: the SDK's provider with ``ALWAYS_OFF`` (span-sdk), and
``tracesieve.TracerProvider`` recording every span for tail decisions at a 1%
head sample (span-tracesieve), its decisions stepped on the same thread every
1,000 spans so that their instructions are counted too (in production the
worker thread makes them beside the application's).

Run: python benches/instructions.py [xray|rule|probability|sdk|span-sdk|span-tracesieve ...]
     (needs valgrind: apt-get install -y valgrind)
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BATCH = 1000
SHORT, LONG = 1, 11
WORKLOADS = ("xray", "rule", "probability", "sdk", "span-sdk", "span-tracesieve")
SPAN_ATTRIBUTES = {"http.request.method": "GET", "http.route": "/api/order", "customer.tier": "silver"}


def sampler(workload: str, endpoint: str):
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from test_xray_speed import RESOURCE
    from tracesieve import ProbabilitySampler, RuleSampler, XRayRemoteSampler

    if workload == "xray":
        made = XRayRemoteSampler(RESOURCE, endpoint=endpoint, polling_interval=300, report_interval=3600)
        deadline = time.monotonic() + 10
        while made.remote_status()["fetches"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        return made
    if workload == "rule":
        return RuleSampler([{"name": "orders", "route": "/api/v1/orders/*", "rate": 0.1}], default_rate=0.05)
    if workload == "probability":
        return ProbabilitySampler(0.05)
    return ParentBased(TraceIdRatioBased(0.05))


def spans(workload: str, batches: int) -> None:
    """The measured loop of a span workload: `batches` x 1,000 spans."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    import tracesieve

    if workload == "span-sdk":
        provider: Any = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    else:
        sampler = tracesieve.ProbabilitySampler(0.01, defer=True)
        provider = tracesieve.TracerProvider(sampler=sampler, decision_wait=0.05, shutdown_on_exit=False, start=False)
    tracer = provider.get_tracer("instructions")
    for _ in range(batches):
        for _ in range(BATCH):
            tracer.start_span("GET /api/order", attributes=SPAN_ATTRIBUTES).end()
        if workload == "span-tracesieve":
            provider.step()


def decide(workload: str, batches: int) -> None:
    """The measured loop: `batches` x 1,000 decisions of `workload`."""
    if workload.startswith("span-"):
        spans(workload, batches)
        return
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent / "tests")]
    from test_xray_speed import ATTRIBUTES, RULES
    from xray_fake import FakeXRay

    server = FakeXRay(RULES)
    should_sample = sampler(workload, server.endpoint).should_sample
    rng = random.Random(11)
    trace_ids = [rng.getrandbits(128) for _ in range(BATCH)]
    for _ in range(batches):
        for trace_id in trace_ids:
            should_sample(None, trace_id, "GET /api/v2/orders/{id}", None, ATTRIBUTES, ())
    server.stop()


def counted(workload: str, batches: int) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--loop", workload, str(batches)],
        capture_output=True,
        text=True,
        # Both runs compile or both read the same bytecode: a first run writing .pyc files
        # would count the compilation in one of the two and skew the difference.
        env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    line = next(line for line in run.stderr.splitlines() if "Collected" in line)
    return int(line.split()[-1].replace(",", ""))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--loop"]:
        decide(argv[1], int(argv[2]))
        return
    for workload in argv or WORKLOADS:
        if workload not in WORKLOADS:
            raise SystemExit(f"workload {workload!r}: expected one of {', '.join(WORKLOADS)}")
        per_decision = (counted(workload, LONG) - counted(workload, SHORT)) / ((LONG - SHORT) * BATCH)
        unit = "span" if workload.startswith("span-") else "decision"
        print(f"{workload}: {per_decision:,.0f} instructions per {unit}")


if __name__ == "__main__":
    main(sys.argv[1:])
