"""Workloads run through both the SDK's provider and tracesieve's, for the
fidelity tests: each takes a provider and uses the span API the way
applications and instrumentations do. Explicit timestamps are small numbers
(``EXPLICIT`` and up) so they tell apart from clock readings."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Dict

from opentelemetry import baggage, context, trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

EXPLICIT = 1_000
#: A span context from elsewhere, linked to.
FOREIGN = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "x")]))


def _tracer(provider: Any) -> Any:
    return provider.get_tracer("fidelity", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26.0", attributes={"team": "core"})


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def nested(provider: Any) -> None:
    """Context managers, kinds, attributes of every type, later attributes, events, names, status rules."""
    tracer = _tracer(provider)
    attributes = {"http.method": "GET", "count": 3, "ratio": 0.5, "flag": True, "tags": ["a", "b"], "sizes": [1, 2], "weights": (0.5, 1.5)}
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER, attributes=attributes) as root:
        root.set_attribute("late", "x")
        root.set_attributes({"count": 4, "more": [True, False]})
        with tracer.start_as_current_span("db", kind=SpanKind.CLIENT) as db:
            db.add_event("query", {"rows": 3, "table": "orders"})
            db.add_event("explicit", timestamp=EXPLICIT)
            db.add_event("no attributes")
        child = tracer.start_span("manual")
        child.update_name("manual renamed")
        child.set_status(StatusCode.ERROR, "failed")
        child.set_status(Status(StatusCode.UNSET))
        child.end()
        producer = tracer.start_span("send", kind=SpanKind.PRODUCER, links=[Link(FOREIGN, {"why": "batch"})])
        producer.add_link(FOREIGN)
        producer.add_link(SpanContext(0, 0, False), {"kept": "for its attributes"})
        producer.add_link(SpanContext(0, 0, False))
        producer.end()
        consumer = tracer.start_span("receive", kind=SpanKind.CONSUMER)
        consumer.set_status(Status(StatusCode.OK, "described"))
        consumer.end()
        root.set_status(Status(StatusCode.OK))
        root.set_status(StatusCode.ERROR, "ignored after OK")


def unusual_values(provider: Any) -> None:
    """Invalid keys and values, nested values, bytes, None, mixed sequences, a description with OK."""
    tracer = _tracer(provider)
    span = tracer.start_span(
        "values",
        attributes={"none": None, "bytes": b"raw", "mixed": [1, "a"], "map": {"x": 1, "y": [1, 2]}, "object": object(), "": "empty key"},
    )
    span.set_attribute("", "empty")
    span.set_attribute(1, "number key")  # type: ignore[arg-type]
    span.set_attribute("with none", [1, None, 3])
    span.set_attribute("long", "x" * 300)
    span.set_attributes({"a": 1, "": 2, "b": {"nested": True}})
    span.add_event("odd", {"object": object(), "ok": 1})
    span.set_status(Status(StatusCode.OK), "a description with a Status")
    span.end()
    span2 = tracer.start_span("described ok")
    span2.set_status(StatusCode.OK, "dropped for OK")
    span2.end()


def exceptions(provider: Any) -> None:
    """Exceptions leaving blocks, recorded by hand, and the flags that turn that off."""
    tracer = _tracer(provider)
    try:
        with tracer.start_as_current_span("raises"):
            raise ValueError("bad order")
    except ValueError:
        pass
    try:
        with tracer.start_as_current_span("quiet", record_exception=False, set_status_on_exception=False):
            raise KeyError("k")
    except KeyError:
        pass
    try:
        with tracer.start_span("span as manager") as span:
            span.set_attribute("step", 1)
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    manual = tracer.start_span("recorded")
    try:
        {}["missing"]
    except KeyError as error:
        manual.record_exception(error, attributes={"extra": 1, "exception.message": "overridden"}, timestamp=EXPLICIT + 1, escaped=True)
    manual.record_exception(ZeroDivisionError("never raised"))
    manual.end()
    try:
        with tracer.start_as_current_span("keyboard"):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass


def timestamps_and_ends(provider: Any) -> None:
    """Explicit start and end times, ending twice, calls on an ended span, end_on_exit, use_span."""
    tracer = _tracer(provider)
    span = tracer.start_span("explicit", start_time=EXPLICIT + 10)
    span.end(end_time=EXPLICIT + 20)
    span.end()
    span.set_attribute("after end", 1)
    span.set_attributes({"after": "end"})
    span.add_event("after end")
    span.add_link(FOREIGN)
    span.update_name("renamed after end")
    span.set_status(StatusCode.ERROR, "after end")
    with tracer.start_as_current_span("kept open", end_on_exit=False) as open_span:
        pass
    open_span.add_event("still open")
    open_span.end()
    outer = tracer.start_span("used")
    with trace.use_span(outer, end_on_exit=True):
        tracer.start_span("inside use_span").end()
    try:
        with trace.use_span(tracer.start_span("use_span raises"), end_on_exit=True):
            raise ValueError("in use_span")
    except ValueError:
        pass
    remote = SpanContext(
        0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("ot", "th:0"), ("other", "1")])
    )
    with tracer.start_as_current_span("remote child", context=trace.set_span_in_context(NonRecordingSpan(remote))):
        pass
    unsampled = SpanContext(0x4321, 0x8765, is_remote=True, trace_flags=TraceFlags(0))
    with tracer.start_as_current_span("child of unsampled", context=trace.set_span_in_context(NonRecordingSpan(unsampled))):
        pass
    with tracer.start_as_current_span("new root", context=context.Context()):
        pass


def decorated(provider: Any) -> None:
    """``start_as_current_span`` as a decorator, on functions and coroutines."""
    tracer = _tracer(provider)

    @tracer.start_as_current_span("decorated", attributes={"via": "decorator"})
    def work(x: int) -> int:
        trace.get_current_span().set_attribute("x", x)
        return x * 2

    @tracer.start_as_current_span("decorated async")
    async def work_async() -> str:
        await asyncio.sleep(0)
        return "done"

    assert work(21) == 42
    assert asyncio.run(work_async()) == "done"


def threads(provider: Any) -> None:
    """Children in threads, each attaching the parent's context."""
    tracer = _tracer(provider)
    with tracer.start_as_current_span("fan out"):
        parent = context.get_current()

        def work(i: int) -> None:
            token = context.attach(parent)
            try:
                with tracer.start_as_current_span(f"worker {i}") as span:
                    span.set_attribute("worker", i)
                    with tracer.start_as_current_span(f"worker {i} step"):
                        pass
            finally:
                context.detach(token)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


def tasks(provider: Any) -> None:
    """Nesting across asyncio tasks (each task copies the context it was created in)."""
    tracer = _tracer(provider)

    async def leaf(i: int) -> None:
        with tracer.start_as_current_span(f"task {i}"):
            await asyncio.sleep(0.001 * (3 - i))
            with tracer.start_as_current_span(f"task {i} inner") as inner:
                inner.add_event("awaited")

    async def main() -> None:
        with tracer.start_as_current_span("async root"):
            await asyncio.gather(*(leaf(i) for i in range(3)))

    asyncio.run(main())


def with_baggage(provider: Any) -> None:
    """Baggage in the context a span starts in (what processors' ``on_start`` read)."""
    tracer = _tracer(provider)
    ctx = baggage.set_baggage("customer.tier", "gold")
    ctx = baggage.set_baggage("region", "eu", ctx)
    token = context.attach(ctx)
    try:
        with tracer.start_as_current_span("with baggage"):
            with tracer.start_as_current_span("child with baggage"):
                pass
    finally:
        context.detach(token)


def limits(provider: Any) -> None:
    """Enough of everything to meet every limit."""
    tracer = _tracer(provider)
    span = tracer.start_span(
        "crowded",
        attributes={f"start {i}": "v" * i for i in range(8)},
        links=[Link(FOREIGN, {f"l{i}": i for i in range(5)}) for _ in range(4)],
    )
    for i in range(10):
        span.set_attribute(f"later {i}", "w" * (i + 2))
    span.set_attribute("start 2", "moved")
    for i in range(6):
        span.add_event(f"event {i}", {f"e{j}": "long value" for j in range(i)}, timestamp=EXPLICIT + 100 + i)
        span.add_link(FOREIGN, {f"a{j}": j for j in range(i)})
    span.record_exception(ValueError("crowded"))
    span.end()


WORKLOADS: Dict[str, Callable[[Any], None]] = {
    "nested": nested,
    "unusual_values": unusual_values,
    "exceptions": exceptions,
    "timestamps_and_ends": timestamps_and_ends,
    "decorated": decorated,
    "threads": threads,
    "tasks": tasks,
    "with_baggage": with_baggage,
    "limits": limits,
}


def flask_app(provider: Any) -> None:
    """A real Flask app with its instrumentation, calling itself through
    ``requests`` and ``urllib3`` (both instrumented), one route failing."""
    import requests
    import urllib3
    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from werkzeug.serving import make_server

    tracer = provider.get_tracer("shop")
    app = Flask("shop")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"

    @app.route("/orders/<int:order>")
    def order(order: int) -> Dict[str, Any]:
        stock = requests.get(f"{base}/inventory", timeout=5).json()
        trace.get_current_span().set_attribute("order.id", order)
        return {"order": order, "stock": stock}

    @app.route("/inventory")
    def inventory() -> Dict[str, Any]:
        with tracer.start_as_current_span("count stock") as span:
            span.set_attribute("items", 3)
            span.add_event("counted", {"warehouse": "north"})
        return {"items": 3}

    @app.route("/fail")
    def fail() -> str:
        raise RuntimeError("the shop is closed")

    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    URLLib3Instrumentor().instrument(tracer_provider=provider)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        assert requests.get(f"{base}/orders/7", timeout=5).json()["stock"] == {"items": 3}
        assert requests.get(f"{base}/fail", timeout=5).status_code == 500
        assert urllib3.PoolManager().request("GET", f"{base}/inventory", timeout=5).status == 200
    finally:
        server.shutdown()
        serving.join(5)
        RequestsInstrumentor().uninstrument()
        URLLib3Instrumentor().uninstrument()
        FlaskInstrumentor().uninstrument_app(app)
