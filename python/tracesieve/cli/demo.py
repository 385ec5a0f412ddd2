"""tracesieve demo: the samplers at work in a real TracerProvider.

Runs the same synthetic traffic (root span -> two services, three spans per trace)
through each sampler into an in-memory exporter and reports what was kept,
whether traces stayed whole, how well adjusted counts estimate the true traffic,
and what a decision costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Sequence, Tuple

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from tracesieve.cli.ids import SeededIds
from tracesieve.estimate import adjusted_count
from tracesieve.samplers import ProbabilitySampler, TraceIdRatioSampler

SPANS_PER_TRACE = 3


#: Most traces a demo sends: its exporter holds every kept span in memory.
MAX_TRACES = 100_000


def run_traffic(sampler: Sampler, traces: int, seed: int) -> Tuple[List, float]:
    """Send `traces` three-span traces through a provider; return kept spans and seconds."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tracesieve.demo")
    started = time.perf_counter()
    for i in range(traces):
        with tracer.start_as_current_span("GET /api/order", kind=trace.SpanKind.SERVER, attributes={"request": i}):
            with tracer.start_as_current_span("inventory.reserve"):
                pass
            with tracer.start_as_current_span("payment.charge", attributes={"payment.amount": 10 + i % 90}):
                pass
    elapsed = time.perf_counter() - started
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans, elapsed


def summarise(name: str, spans: Sequence, traces: int, elapsed: float) -> Dict[str, object]:
    per_trace = Counter(span.context.trace_id for span in spans)
    whole = sum(1 for count in per_trace.values() if count == SPANS_PER_TRACE)
    estimate = 0.0
    for span in spans:
        if span.parent is None:
            count = adjusted_count(span)
            estimate += count if count is not None else float("nan")
    return {
        "sampler": name,
        "kept_traces": len(per_trace),
        "kept_spans": len(spans),
        "whole_traces": whole,
        "estimated_traces": estimate,
        "us_per_trace": elapsed / traces * 1e6,
    }


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("demo", help="the samplers at work in a TracerProvider", description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20_000, help="traces to send (default 20000)")
    parser.add_argument("--rate", type=float, default=0.1, help="sampling rate for every sampler (default 0.1)")
    parser.add_argument("--seed", type=int, default=7, help="seed for trace ids (default 7)")
    parser.set_defaults(run=run)


def main(argv: Sequence[str] = ()) -> int:
    """``python -m tracesieve.cli.demo``: the same as ``tracesieve demo``."""
    from tracesieve.cli import main as cli_main

    return cli_main(["demo", *argv])


def run(args: argparse.Namespace) -> int:
    from tracesieve.cli.usage import UsageError

    if args.traces <= 0:
        raise UsageError(f"--traces: {args.traces} is not positive; expected a whole number of traces, such as 20000")
    if args.traces > MAX_TRACES:
        raise UsageError(
            f"--traces: {args.traces:,} is more than the demo holds in memory (every kept span, about 17 KB a trace at "
            f"--rate 1); expected at most {MAX_TRACES:,}, such as 20000"
        )
    if not 0.0 <= args.rate <= 1.0:
        raise UsageError(f"--rate: {args.rate} is out of range; expected a number in [0, 1]")

    candidates: List[Tuple[str, Callable[[], Sampler]]] = [
        (f"tracesieve ProbabilitySampler({args.rate})", lambda: ProbabilitySampler(args.rate)),
        (f"tracesieve TraceIdRatioSampler({args.rate})", lambda: TraceIdRatioSampler(args.rate)),
        (f"SDK ParentBased(TraceIdRatioBased({args.rate}))", lambda: ParentBased(TraceIdRatioBased(args.rate))),
    ]
    print(f"Sending {args.traces} traces of {SPANS_PER_TRACE} spans through a TracerProvider per sampler...\n")
    rows: List[Dict[str, Any]] = []
    kept_ids: Dict[str, set] = {}
    for name, make in candidates:
        sampler = make()
        spans, elapsed = run_traffic(sampler, args.traces, args.seed)
        rows.append(summarise(name, spans, args.traces, elapsed))
        kept_ids[name] = {span.context.trace_id for span in spans}
        if hasattr(sampler, "stats"):
            rows[-1]["stats"] = sampler.stats()

    header = f"{'sampler':46} {'traces kept':>11} {'spans kept':>10} {'whole':>7} {'estimated total':>16} {'us/trace':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        estimate = row["estimated_traces"]
        shown = "n/a (no th)" if estimate != estimate else f"{estimate:,.0f}"
        print(
            f"{row['sampler']:46} {row['kept_traces']:>11,} {row['kept_spans']:>10,} "
            f"{row['whole_traces'] / max(1, row['kept_traces']):>7.0%} {shown:>16} {row['us_per_trace']:>9.1f}"
        )
    legacy, sdk = kept_ids[candidates[1][0]], kept_ids[candidates[2][0]]
    print(f"\ntrue total: {args.traces:,} traces")
    print(f"TraceIdRatioSampler and the SDK kept the same traces: {'yes' if legacy == sdk else 'NO'} ({len(legacy ^ sdk)} differ)")
    print(f"ProbabilitySampler stats: {rows[0]['stats']}")
    print("\nKept spans carry th in the 'ot' tracestate entry; 1/probability is each span's adjusted count.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
