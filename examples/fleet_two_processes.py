"""Two processes, one budget, one Redis: each process keeps spans with its own
TracerProvider, and the budget they share is counted in Redis.

    python examples/fleet_two_processes.py                      # starts a local redis-server on a free port
    python examples/fleet_two_processes.py redis://127.0.0.1:6379/0   # or uses yours
"""

from __future__ import annotations

import multiprocessing
import shutil
import socket
import subprocess
import sys
import time


def serve(url: str, name: str, results: multiprocessing.Queue[tuple]) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracesieve import BudgetSampler

    # 600 spans a day, shared: the calendar's share so far counts as spent, so the two keep a few.
    sampler = BudgetSampler(1.0, budget=600, period="day", store=f"{url}?interval=0.1#example")
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(name)
    time.sleep(0.5)  # the first lease
    for _ in range(2000):
        with tracer.start_as_current_span("GET /checkout"):
            pass
        time.sleep(0.001)
    time.sleep(0.3)  # the last step reports what was spent
    results.put((name, len(exporter.get_finished_spans()), sampler.budget_status()["used_spans"]))
    provider.shutdown()


def main() -> None:
    server = None
    if len(sys.argv) > 1:
        url = sys.argv[1]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        binary = shutil.which("redis-server") or sys.exit("redis-server not found: apt-get install -y redis-server")
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
        )
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}/0"
    try:
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        workers = [context.Process(target=serve, args=(url, name, results)) for name in ("checkout-a", "checkout-b")]
        for worker in workers:
            worker.start()
        for name, exported, fleet_count in sorted(results.get(timeout=60) for _ in workers):
            print(f"{name}: exported {exported} spans; the fleet's count it saw last: {fleet_count}")
        for worker in workers:
            worker.join()
    finally:
        if server is not None:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
