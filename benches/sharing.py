"""Shared tail decisions: the figures in docs/whole-traces.md, against a real
redis-server started here.

1. Three services as separate processes over HTTP on loopback (the chain of
   ``tracesieve simulate --processes``): error traces kept whole with errors
   starting in the leaf at q = 0 and q = 0.5, slow traces (slow in the
   frontend, after the leaf's span ended), and spans kept per service, for
   head sampling only, per-process tail and shared tail.
2. Announcement latency: a process ends a failing span every 20 ms (random
   phase); another process polls what it heard. From the first process's
   ``on_end`` to the second one knowing, at share_interval 0.05 and 0.01.
3. Throughput: one process ends 1,000,000 spans (100,000 traces, a tenth
   failing) as fast as it can while another listens: announcements per second
   and Redis calls per second (Redis's own command counts), and the stream's
   memory per announced trace.

    python benches/sharing.py
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import sys
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from tracesieve.cli.chain import ChainSettings, measure_chain, run_chain
from tracesieve.cli.scenarios import Faults, plans
from tracesieve.local_redis import RedisServer


def chain_table(server: RedisServer) -> None:
    print("1. three services as processes over HTTP (1,120 requests: 500 at q=0 and 500 at q=0.5 with 30% failing, 120 slow)")
    labelled = [("q=0", p) for p in plans(500, 11, Faults(propagation=0.0), error_rate=0.3)]
    labelled += [("q=0.5", p) for p in plans(500, 12, Faults(propagation=0.5), error_rate=0.3)]
    labelled += [("slow", p) for p in plans(120, 13, Faults(slow_rate=1.0), error_rate=0.0)]
    random.Random(5).shuffle(labelled)
    requests = [plan for _, plan in labelled]
    print(f"   {'approach':20} {'errors, q=0':>12} {'errors, q=0.5':>14} {'slow':>8} {'spans kept f/o/p':>18} {'clean spans f/o/p':>18}")
    for mode, label in (("head", "head only"), ("tail", "per-process tail"), ("shared", "shared tail")):
        run = run_chain(ChainSettings(mode, redis_url=server.url), requests)
        cells = []
        for group in ("q=0", "q=0.5", "slow"):
            chosen = [plan for g, plan in labelled if g == group and (plan.errors or plan.slow)]
            cells.append(f"{measure_whole(run, chosen):.1%}")
        measured = measure_chain(run, requests)
        spans = "/".join(str(v) for v in measured["spans_by_service"].values())
        clean = "/".join(str(v) for v in measured["clean_spans_by_service"].values())
        print(f"   {label:20} {cells[0]:>12} {cells[1]:>14} {cells[2]:>8} {spans:>18} {clean:>18}")
        if mode == "shared":
            for service, counts in measured["sharing"].items():
                print(f"     {service}: {counts}")


def measure_whole(run: Any, chosen: List[Any]) -> float:
    services_of: Dict[int, set] = {}
    for span in run.spans:
        services_of.setdefault(span.trace_id, set()).add(span.service)
    return sum(1 for plan in chosen if len(services_of.get(plan.trace_id, ())) == 3) / len(chosen)


def _listen(url: str, interval: float, seconds: float, conn: Any) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracesieve import TailSamplingProcessor

    tail = TailSamplingProcessor(InMemorySpanExporter(), share=url, share_interval=interval)
    while not tail.stats()["share_connected"]:
        time.sleep(0.01)
    conn.send("ready")
    heard_at: List[float] = []
    heard = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = tail.stats()["heard"]
        stamp = time.monotonic()
        heard_at += [stamp] * (now - heard)
        heard = now
        time.sleep(0.0005)
    conn.send(heard_at)
    tail.shutdown()


def latency(server: RedisServer, interval: float, count: int = 200) -> None:
    from opentelemetry.trace import Status, StatusCode

    from tracesieve import TailSamplingProcessor

    from helpers import FakeSpan

    url = f"{server.url}#latency{interval:g}"
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    listener = spawn.Process(target=_listen, args=(url, interval, count * 0.02 + 3, child))
    listener.start()
    parent.recv()
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    tail = TailSamplingProcessor(InMemorySpanExporter(), share=url, share_interval=interval)
    while not tail.stats()["share_connected"]:
        time.sleep(0.01)
    rng = random.Random(4)
    sent: List[float] = []
    for _ in range(count):
        time.sleep(0.02 * rng.uniform(0.5, 1.5))
        span = FakeSpan(rng.getrandbits(128) | 1, 2, root=True)
        span.status = Status(StatusCode.ERROR)
        sent.append(time.monotonic())
        tail.on_end(span)
    heard_at = parent.recv()
    listener.join()
    tail.shutdown()
    delays = sorted((h - s) * 1000 for s, h in zip(sent, heard_at))
    print(
        f"   share_interval {interval:g} s: {len(heard_at)} of {count} heard; from on_end to heard: "
        f"median {statistics.median(delays):.1f} ms, p99 {delays[int(len(delays) * 0.99) - 1]:.1f} ms, max {delays[-1]:.1f} ms"
    )


def throughput(server: RedisServer) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    from tracesieve import TailSamplingProcessor

    from helpers import FakeSpan

    url = f"{server.url}#throughput"
    client = server.client()
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    listener = spawn.Process(target=_listen, args=(url, 0.05, 20.0, child))
    listener.start()
    parent.recv()
    tail = TailSamplingProcessor(InMemorySpanExporter(), share=url, decision_wait=0.05, max_queue_size=10_000)
    while not tail.stats()["share_connected"]:
        time.sleep(0.01)
    client.config_resetstat()
    error = Status(StatusCode.ERROR)
    rng = random.Random(9)
    started = time.perf_counter()
    for trace in range(100_000):
        trace_id = rng.getrandbits(128) | 1
        for span in range(10):
            fake = FakeSpan(trace_id, span + 2, root=span == 9)
            if span == 0 and trace % 10 == 0:
                fake.status = error
            tail.on_end(fake)
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    calls = {
        k[len("cmdstat_") :]: v["calls"]
        for k, v in client.info("commandstats").items()
        if k.startswith("cmdstat_x") or k == "cmdstat_pexpire"
    }
    memory = client.memory_usage("tracesieve:throughput:tail") or 0
    entries = client.xlen("tracesieve:throughput:tail")
    stats = tail.stats()
    tail.shutdown()
    heard = parent.recv()
    listener.join()
    total_calls = sum(calls.values())
    print(
        f"   1,000,000 spans in {seconds:.1f} s ({1e6 / seconds:,.0f} spans/s); {stats['announced']:,} announced "
        f"({stats['announced'] / seconds:,.0f}/s), {len(heard):,} heard by the other process"
    )
    print(f"   Redis calls by both processes: {total_calls:,} ({total_calls / seconds:,.0f}/s) {calls}")
    print(
        f"   stream: {entries} entries, {memory:,} bytes ({memory / max(1, stats['announced']):.1f} bytes per announced trace still held)"
    )


def main() -> None:
    server = RedisServer().start()
    try:
        chain_table(server)
        print("2. announcement latency across processes")
        for interval in (0.05, 0.01):
            latency(server, interval)
        print("3. throughput")
        throughput(server)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
