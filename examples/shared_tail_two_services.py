"""Two services, two processes, one Redis: checkout calls payments over a
queue (the W3C traceparent travels with each message), payments fails now and
then without telling checkout, and both keep whole traces because their tail
processors share decisions.

    python examples/shared_tail_two_services.py                  # starts a local redis-server on a free port
    python examples/shared_tail_two_services.py redis://127.0.0.1:6379/0   # or uses yours
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any

REQUESTS = 200


def service(name: str, url: str, inbox: Any, outbox: Any, results: Any) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from tracesieve import ProbabilitySampler, TailSamplingProcessor

    exporter = InMemorySpanExporter()
    tail = TailSamplingProcessor(exporter, decision_wait=0.5, share=f"{url}#example")
    provider = TracerProvider(sampler=ProbabilitySampler(0.05, defer=True), resource=Resource.create({"service.name": name}))
    provider.add_span_processor(tail)
    tracer = provider.get_tracer(name)
    propagator = TraceContextTextMapPropagator()
    for index in range(REQUESTS):
        if name == "checkout":
            with tracer.start_as_current_span("POST /checkout"):
                carrier: dict = {}
                propagator.inject(carrier)
                outbox.put((index, carrier))
                inbox.get()  # the reply: always "ok", even when the payment failed
        else:
            index, carrier = inbox.get()
            with tracer.start_as_current_span("charge card", context=propagator.extract(carrier)) as span:
                if index % 10 == 0:
                    span.set_status(Status(StatusCode.ERROR, "card declined, retried later"))
            outbox.put("ok")
    provider.shutdown()  # the last traces get their decision_wait to hear announcements first
    results.put((name, {s.context.trace_id for s in exporter.get_finished_spans()}, tail.stats()))


def main() -> None:
    server = None
    if len(sys.argv) > 1:
        url = sys.argv[1]
    else:
        from tracesieve.local_redis import RedisServer

        server = RedisServer().start()
        url = server.url
    try:
        spawn = multiprocessing.get_context("spawn")
        to_payments, to_checkout, results = spawn.Queue(), spawn.Queue(), spawn.Queue()
        services = [
            spawn.Process(target=service, args=("checkout", url, to_checkout, to_payments, results)),
            spawn.Process(target=service, args=("payments", url, to_payments, to_checkout, results)),
        ]
        for process in services:
            process.start()
        kept = dict(results.get(timeout=60)[:2] for _ in services)
        for process in services:
            process.join()
    finally:
        if server is not None:
            server.stop()
    both = kept["checkout"] & kept["payments"]
    print(f"payments kept {len(kept['payments'])} traces (its {REQUESTS // 10} failures and the 5% head sample)")
    print(f"checkout kept {len(kept['checkout'])} traces; {len(both)} are whole in both services")


if __name__ == "__main__":
    main()
