"""``tracesieve simulate``: run a policy on simulated traffic through real
TracerProviders and report what it keeps, what it costs and what can still be
seen (see ``services`` for the three-service chain and ``scenarios`` for the
traffic)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

DEFAULT_REQUESTS = {"traffic": 20_000, "errors": 20_000, "month": 60_000, "spike": 30_000}


def add_parser(commands: Any) -> None:
    from tracesieve.cli.scenarios import DESCRIPTIONS

    parser = commands.add_parser("simulate", help="run a policy on simulated traffic and report what it keeps")
    # argparse formats help with %, so the descriptions' own % signs are escaped.
    scenarios = "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()).replace("%", "%%")
    parser.add_argument("scenario", nargs="?", default="traffic", help=scenarios)
    parser.add_argument("--config", help="pipeline configuration (.toml/.yaml/.json); default: the seed's policy")
    parser.add_argument("--requests", type=int, help="requests to simulate (default depends on the scenario)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--compare", choices=["naive"], help="also run the seed's approach (pure Python) on the same traffic")
    parser.add_argument("--no-tail", action="store_true", help="head sampling only (no deferred spans, no tail decisions)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--out", help="write PNG charts to this folder (needs the plot extra)")
    parser.set_defaults(run=run)


def _document(config: Optional[str]) -> Dict[str, Any]:
    """The policy to simulate: the file, read once and checked, or the seed's."""
    from tracesieve.config import load_config
    from tracesieve.pipeline import build
    from tracesieve.policies import seed_pipeline

    if config is None:
        return seed_pipeline()
    document = load_config(config)
    build(document, where=f"{config}: ")
    return document


def run(args: argparse.Namespace) -> int:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracesieve.cli import report
    from tracesieve.cli.scenarios import SCENARIOS, generate
    from tracesieve.cli.services import build_naive, build_ours, drive, measure, size_budget
    from tracesieve.cli.usage import UsageError
    from tracesieve.testing import SimClock

    if args.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {args.scenario!r}; expected one of {', '.join(SCENARIOS)}")
    count = args.requests if args.requests is not None else DEFAULT_REQUESTS[args.scenario]
    if count <= 0:
        raise UsageError(f"--requests: {count} is not positive; expected a number of requests, such as 20000")
    if args.out:
        try:
            import matplotlib  # noqa: F401  (checked before a long run, not after)
        except ImportError:
            from tracesieve.cli.report import PLOT_HINT

            raise UsageError(PLOT_HINT) from None
    try:
        document = _document(args.config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    scenario = generate(args.scenario, count, args.seed)
    size_budget(scenario, document)
    runs = [("tracesieve", "ours")] + ([("naive (the seed's approach)", "naive")] if args.compare else [])
    results, seconds = [], {}
    progress = _progress(len(scenario.requests) * len(runs), quiet=args.json)
    for label, kind in runs:
        clock = SimClock(scenario.start)
        exporter = InMemorySpanExporter()
        tail = kind == "ours" and not args.no_tail
        rigs = (
            build_ours(scenario, document, clock, exporter, tail, args.seed)
            if kind == "ours"
            else build_naive(scenario, clock, exporter, args.seed)
        )
        boost: List[List[float]] = []
        spend: List[List[float]] = []

        def observe(now: float, rigs: Any = rigs, boost: Any = boost, spend: Any = spend) -> None:
            sampler = rigs[0].sampler
            stats = sampler.stats() if hasattr(sampler, "stats") else {}
            if "boost" in stats:
                boost.append([now, stats["boost"]])
            if scenario.budget_spans:
                if hasattr(sampler, "budget_status"):
                    spend.append([now, sampler.budget_status()["used_spans"]])
                elif hasattr(sampler, "_budget"):
                    spend.append([now, sampler._budget.current_span_count])

        started = time.perf_counter()
        traces = drive(rigs, scenario, clock, progress=progress.update, observe=observe)
        seconds[label] = time.perf_counter() - started
        results.append(measure(label, scenario, rigs, exporter, traces, boost))
        results[-1].spend = spend
        for rig in rigs:
            rig.provider.shutdown()
    progress.close()
    if args.json:
        print(report.as_json(scenario, results, seconds))
    else:
        print(report.terminal(scenario, results, seconds))
    if args.out:
        try:
            for path in report.charts(scenario, results, Path(args.out)):
                print(f"chart: {path}", file=sys.stderr if args.json else sys.stdout)
        except ImportError as error:
            print(f"tracesieve: {error}", file=sys.stderr)
            return 2
    return 0


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, unit="req", desc="simulating", leave=False)
