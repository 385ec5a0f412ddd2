"""Three services as separate processes over real HTTP on loopback (frontend
-> orders -> payments), each with its own TracerProvider: a head sampler at a
fixed rate, then head sampling only, a tail processor deciding alone, or tail
processors sharing decisions through Redis. Each request carries a plan
(which services fail, which one is slow) in a header, next to the W3C trace
context. Used by ``tracesieve simulate --processes`` and the tests."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import multiprocessing
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence

from tracesieve.cli.scenarios import SERVICES, Plan

MODES = ("head", "tail", "shared")
_PLAN_HEADER = "X-Tracesieve-Plan"


@dataclass
class ChainSettings:
    mode: str
    head_rate: float = 0.1
    decision_wait: float = 1.0
    latency_threshold: float = 0.2
    redis_url: Optional[str] = None
    share_interval: float = 0.05


@dataclass
class KeptSpan:
    service: str
    trace_id: int
    name: str
    local_root: bool
    reason: Optional[str]
    adjusted_count: Optional[float]


@dataclass
class ChainRun:
    spans: List[KeptSpan]
    stats: Dict[str, Dict[str, Any]]
    #: Trace id of each request, in order.
    trace_ids: List[int] = field(default_factory=list)
    seconds: float = 0.0


def _serve(name: str, downstream: Optional[int], settings: ChainSettings, conn: Any) -> None:
    """One service: an HTTP server on a free loopback port (sent back on
    ``conn``) until ``conn`` says stop; then what it exported and its stats."""
    # Ctrl-C reaches the terminal's whole process group: the command stops the services itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from tracesieve.estimate import adjusted_count
    from tracesieve.samplers import ProbabilitySampler
    from tracesieve.tail import REASON, TailSamplingProcessor

    planned = threading.local()

    class PlannedIds(RandomIdGenerator):
        """The plan's trace id for the request's root: the same plans draw the same head decisions in every run."""

        def generate_trace_id(self) -> int:
            return getattr(planned, "trace_id", 0) or super().generate_trace_id()

    tail = settings.mode != "head"
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=ProbabilitySampler(settings.head_rate, defer=tail),
        resource=Resource.create({"service.name": name}),
        id_generator=PlannedIds(),
    )
    processor: Any = None
    if tail:
        share = f"{settings.redis_url}#chain" if settings.mode == "shared" else None
        processor = TailSamplingProcessor(
            exporter,
            decision_wait=settings.decision_wait,
            latency_threshold=settings.latency_threshold,
            schedule_delay=0.2,
            share=share,
            share_interval=settings.share_interval,
        )
        provider.add_span_processor(processor)
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tracesieve.chain")
    propagator = TraceContextTextMapPropagator()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            plan = json.loads(self.headers[_PLAN_HEADER])
            planned.trace_id = plan["trace_id"]
            context = propagator.extract(dict(self.headers))
            with tracer.start_as_current_span(f"{name} {self.path}", context=context, kind=SpanKind.SERVER) as span:
                span.set_attribute("http.route", self.path)
                if downstream is not None:
                    with tracer.start_as_current_span(f"call {self.path}", kind=SpanKind.CLIENT):
                        headers = {_PLAN_HEADER: self.headers[_PLAN_HEADER]}
                        propagator.inject(headers)
                        call = http.client.HTTPConnection("127.0.0.1", downstream, timeout=30)
                        call.request("GET", self.path, headers=headers)
                        call.getresponse().read()
                        call.close()
                with tracer.start_as_current_span(f"{name} work"):
                    if plan["slow"] == name:
                        time.sleep(plan["slow_seconds"])
                if name in plan["errors"]:
                    span.set_status(Status(StatusCode.ERROR, "simulated failure"))
                trace_id = span.get_span_context().trace_id
            body = f"{trace_id:032x}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"chain-{name}", daemon=True).start()
    conn.send(server.server_address[1])
    conn.recv()  # stop
    server.shutdown()
    provider.shutdown()
    kept = [
        KeptSpan(
            name,
            s.context.trace_id,
            s.name,
            s.parent is None or s.parent.is_remote,
            str((s.attributes or {}).get(REASON) or "") or None,
            adjusted_count(s),
        )
        for s in exporter.get_finished_spans()
    ]
    stats = processor.stats() if processor is not None else {}
    conn.send((kept, stats))


@contextlib.contextmanager
def stopped_cleanly() -> Iterator[None]:
    """While the block runs, a hang-up (the terminal closed) or a SIGTERM ends
    the command as Ctrl-C does, through its ``finally`` blocks, so the services
    and the Redis it started stop with it rather than run on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def end(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    before = {signum: signal.signal(signum, end) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def run_chain(settings: ChainSettings, plans: Sequence[Plan], concurrency: int = 8) -> ChainRun:
    """Start the three services (spawned processes), send every plan's
    request to the frontend, wait for the last decisions and collect."""
    if settings.mode not in MODES:
        raise ValueError(f"mode: {settings.mode!r}; expected one of {', '.join(MODES)}")
    spawn = multiprocessing.get_context("spawn")
    processes, links = [], []
    port: Optional[int] = None
    stopped = False
    try:
        for name in reversed(SERVICES):  # the leaf first: each caller needs its callee's port
            parent, child = spawn.Pipe()
            process = spawn.Process(target=_serve, args=(name, port, settings, child), daemon=True)
            process.start()
            if not parent.poll(60):
                raise RuntimeError(f"the {name} service did not start")
            port = parent.recv()
            processes.append(process)
            links.append(parent)
        assert port is not None
        frontend = port
        started = time.perf_counter()

        def send(plan: Plan) -> int:
            call = http.client.HTTPConnection("127.0.0.1", frontend, timeout=60)
            call.request("GET", plan.endpoint, headers={_PLAN_HEADER: json.dumps(plan.as_header())})
            trace_id = int(call.getresponse().read(), 16)
            call.close()
            return trace_id

        pool = ThreadPoolExecutor(concurrency)
        try:
            trace_ids = list(pool.map(send, plans))
        finally:
            # Interrupted (Ctrl-C): the requests not sent yet are dropped, not all sent first.
            pool.shutdown(wait=True, cancel_futures=True)
        seconds = time.perf_counter() - started
        # The last traces' decisions: the wait, plus one announcement's trip.
        time.sleep(settings.decision_wait + 4 * settings.share_interval + 0.5)
        for link in links:
            link.send("stop")
        spans: List[KeptSpan] = []
        stats: Dict[str, Dict[str, Any]] = {}
        for name, link in zip(reversed(SERVICES), links):
            if not link.poll(60):
                raise RuntimeError(f"the {name} service did not stop")
            kept, service_stats = link.recv()
            spans += kept
            stats[name] = service_stats
        stopped = True
        return ChainRun(spans, stats, trace_ids, seconds)
    finally:
        for process in processes:
            # Told to stop, a service ends on its own; otherwise (an error, an interrupt) nothing will tell it.
            process.join(10 if stopped else 0)
            if process.is_alive():
                process.kill()
                process.join(10)


def measure_chain(run: ChainRun, plans: Sequence[Plan]) -> Dict[str, Any]:
    """Error and slow traces kept whole across the three services, spans kept
    per service (also of clean traces, which nobody announces), and what each
    tail processor counted."""
    services_of: Dict[int, set] = {}
    for span in run.spans:
        services_of.setdefault(span.trace_id, set()).add(span.service)
    clean = {tid for tid, plan in zip(run.trace_ids, plans) if not plan.errors and not plan.slow}
    errors = [tid for tid, plan in zip(run.trace_ids, plans) if plan.errors]
    slow = [tid for tid, plan in zip(run.trace_ids, plans) if plan.slow]

    def whole(ids: List[int]) -> int:
        return sum(1 for tid in ids if len(services_of.get(tid, ())) == len(SERVICES))

    keys = ("announced", "heard", "heard_too_late", "shared_kept", "announcements_dropped", "share_redis_calls", "share_failures")
    return {
        "requests": len(plans),
        "seconds": round(run.seconds, 2),
        "error_traces": len(errors),
        "error_traces_whole": whole(errors),
        "slow_traces": len(slow),
        "slow_traces_whole": whole(slow),
        "spans_by_service": {s: sum(1 for span in run.spans if span.service == s) for s in SERVICES},
        "clean_spans_by_service": {s: sum(1 for span in run.spans if span.service == s and span.trace_id in clean) for s in SERVICES},
        "sharing": {s: {k: run.stats[s].get(k, 0) for k in keys} for s in SERVICES if run.stats.get(s)},
    }
