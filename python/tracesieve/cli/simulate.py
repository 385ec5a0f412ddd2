"""``tracesieve simulate``: run a policy on simulated traffic through real
TracerProviders and report what it keeps, what it costs and what can still be
seen, for head sampling only, tail processors deciding alone, and tail
processors sharing decisions, side by side (see ``services`` for the
three-service chain, ``scenarios`` for the traffic and the faults, and
``chain`` for the services run as separate processes)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

DEFAULT_REQUESTS = {"traffic": 20_000, "errors": 20_000, "month": 60_000, "spike": 30_000}
#: Requests sent through the separately running services (real time).
DEFAULT_PROCESS_REQUESTS = 1_000
#: The most requests one simulation runs: each holds about 1.7 KB until the report.
MAX_REQUESTS = 1_000_000
APPROACHES = {
    "shared": "shared tail (decisions shared)",
    "tail": "per-process tail",
    "head": "head sampling only",
    "naive": "naive (the tutorial's approach)",
}


def add_parser(commands: Any) -> None:
    from tracesieve.cli.scenarios import DESCRIPTIONS, ERROR_ORIGIN, PROPAGATION, SLOW_ORIGIN, SLOW_RATE

    parser = commands.add_parser("simulate", help="run a policy on simulated traffic and report what it keeps")
    # argparse formats help with %, so the descriptions' own % signs are escaped.
    scenarios = "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()).replace("%", "%%")
    parser.add_argument("scenario", nargs="?", help=f"{scenarios} (default: traffic)")
    parser.add_argument("--config", help="pipeline configuration (.toml/.yaml/.json); default: the example policy")
    parser.add_argument("--requests", type=int, help="requests to simulate (default depends on the scenario)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--approaches",
        default="shared,tail,head",
        help="comma-separated, side by side: shared (tail decisions shared between services), tail (each service's tail "
        "decides alone), head (head sampling only), naive (the tutorial's approach); default shared,tail,head",
    )
    parser.add_argument("--compare", choices=["naive"], help="also run the tutorial's approach (pure Python) on the same traffic")
    parser.add_argument("--no-tail", action="store_true", help="head sampling only (the same as --approaches head)")
    parser.add_argument("--error-origin", default=ERROR_ORIGIN, help=f"the service where errors start (default {ERROR_ORIGIN})")
    parser.add_argument(
        "--propagation", type=float, default=PROPAGATION, help=f"probability a failure reaches each caller in turn (default {PROPAGATION})"
    )
    parser.add_argument("--slow-origin", default=SLOW_ORIGIN, help=f"the service that is slow in slow requests (default {SLOW_ORIGIN})")
    parser.add_argument("--slow-rate", type=float, default=SLOW_RATE, help=f"the share of slow requests (default {SLOW_RATE})")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run the three services as separate processes over HTTP on loopback, sharing through a local redis-server "
        f"(real time; default {DEFAULT_PROCESS_REQUESTS:,} requests)",
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--out", help="write PNG charts to this folder (needs the plot extra)")
    parser.set_defaults(run=run)


def _document(config: Optional[str]) -> Dict[str, Any]:
    """The policy to simulate: the file, read once and checked, or the example policy."""
    from tracesieve.cli.records import reading_only
    from tracesieve.config import load_config
    from tracesieve.pipeline import build
    from tracesieve.policies import seed_pipeline

    if config is None:
        return seed_pipeline()
    document = load_config(config)
    remote = next((stage for stage in ("jaeger_remote", "xray_remote") if stage in document), None)
    if remote is not None:
        # It would poll a server from every simulated service, and decide by its start-up rate throughout.
        raise ValueError(
            f"{config}: {remote}: decides by what a server sends, which a simulation has none of; "
            "put a probability or rules stage in its place to simulate that rate"
        )
    # Checked as check does, reading records only: the simulation keeps its own state in
    # memory, and must neither make a record nor open the service's (its budget is real).
    with reading_only():
        build(document, where=f"{config}: ")
    return document


def run(args: argparse.Namespace) -> int:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracesieve.cli import report
    from tracesieve.cli.scenarios import SCENARIOS, Faults, generate
    from tracesieve.cli.services import budget_note, budget_status_of, build_naive, build_ours, drive, measure
    from tracesieve.cli.usage import UsageError
    from tracesieve.testing import SimClock

    faults = Faults(args.error_origin, args.propagation, args.slow_origin, args.slow_rate)
    try:
        faults.check()
    except ValueError as error:
        raise UsageError(str(error)) from None
    approaches = _approaches(args)
    if args.processes:
        return _run_processes(args, faults, approaches)
    args.scenario = args.scenario or "traffic"
    if args.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {args.scenario!r}; expected one of {', '.join(SCENARIOS)}")
    count = _request_count(args.requests, DEFAULT_REQUESTS[args.scenario], example=20_000)
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out: {args.out} is not a directory; expected a directory for the charts (made if missing)")
        try:
            import matplotlib  # noqa: F401  (checked before a long run, not after)
        except ImportError:
            from tracesieve.cli.report import PLOT_HINT

            raise UsageError(PLOT_HINT) from None
        # Made now, so a folder that cannot be made or written fails before the run, not after it.
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--out: cannot make the folder {out}: {error.strerror or error}") from None
        if not os.access(out, os.W_OK | os.X_OK):
            raise UsageError(f"--out: the folder {out} is not writable; expected a folder for the charts")
    try:
        document = _document(args.config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    scenario = generate(args.scenario, count, args.seed, faults)
    runs = [(APPROACHES[a], a) for a in approaches]
    results, seconds = [], {}
    progress = _progress(len(scenario.requests) * len(runs), quiet=args.json)
    for label, kind in runs:
        clock = SimClock(scenario.start)
        exporter = InMemorySpanExporter()
        rigs = (
            build_naive(scenario, clock, exporter, args.seed)
            if kind == "naive"
            else build_ours(scenario, document, clock, exporter, kind, args.seed)
        )
        boost: List[List[float]] = []
        spend: List[List[float]] = []

        def observe(now: float, rigs: Any = rigs, boost: Any = boost, spend: Any = spend) -> None:
            sampler = rigs[0].sampler
            stats = sampler.stats() if hasattr(sampler, "stats") else {}
            if "boost" in stats:
                boost.append([now, stats["boost"]])
            if scenario.budget_spans:
                status = budget_status_of(sampler)
                if status is not None:
                    spend.append([now, status["used_spans"]])
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
    note = budget_note(scenario, document)
    notes = [note] if note else []
    if args.json:
        print(report.as_json(scenario, results, seconds, notes))
    else:
        print(report.terminal(scenario, results, seconds, notes))
    if args.out:
        try:
            for path in report.charts(scenario, results, Path(args.out)):
                print(f"chart: {path}", file=sys.stderr if args.json else sys.stdout)
        except (ImportError, OSError) as error:
            print(f"tracesieve: error: {error}", file=sys.stderr)
            return 2
    return 0


def _request_count(requests: Optional[int], default: int, example: int) -> int:
    """``--requests``, or ``default``: positive, and no more than one run holds in memory."""
    from tracesieve.cli.usage import UsageError

    count = requests if requests is not None else default
    if count <= 0:
        raise UsageError(f"--requests: {count} is not positive; expected a number of requests, such as {example}")
    if count > MAX_REQUESTS:
        raise UsageError(
            f"--requests: {count:,} is more than one simulation holds in memory (about 1.7 KB a request); "
            f"expected at most {MAX_REQUESTS:,}, such as {example}"
        )
    return count


def _approaches(args: argparse.Namespace) -> List[str]:
    from tracesieve.cli.usage import UsageError

    chosen = ["head"] if args.no_tail else [a.strip() for a in args.approaches.split(",") if a.strip()]
    unknown = [a for a in chosen if a not in APPROACHES]
    if unknown or not chosen:
        problem = f"no approach {', '.join(map(repr, unknown))}" if unknown else "names no approach"
        raise UsageError(f"--approaches: {args.approaches!r}: {problem}; expected some of {', '.join(APPROACHES)}, comma-separated")
    if args.compare and "naive" not in chosen:
        chosen.append("naive")
    return list(dict.fromkeys(chosen))


def _run_processes(args: argparse.Namespace, faults: Any, approaches: List[str]) -> int:
    """The services as separate processes over real HTTP, with a local redis-server."""
    from tracesieve.cli import report
    from tracesieve.cli.chain import ChainSettings, measure_chain, run_chain, stopped_cleanly
    from tracesieve.cli.scenarios import plans
    from tracesieve.cli.usage import UsageError
    from tracesieve.local_redis import RedisServer

    count = _request_count(args.requests, DEFAULT_PROCESS_REQUESTS, example=1_000)
    given = [
        shown for shown, value in ((args.scenario, args.scenario), ("--config", args.config), ("--out", args.out)) if value is not None
    ]
    if given:
        # Passed over, they would make a report that reads as theirs.
        raise UsageError(
            "--processes runs a fixed policy (a 10% head sample and tail decisions) on its own traffic, in real time: "
            f"it takes no scenario, --config or --out (given: {', '.join(given)})"
        )
    if "naive" in approaches:
        raise UsageError("--processes runs shared, tail and head; the tutorial's approach runs in one process only")
    requests = plans(count, args.seed, faults)
    server = None
    with stopped_cleanly():
        if "shared" in approaches:
            try:
                # A password of its own: the server listens on loopback, which every user of the host shares.
                server = RedisServer(password=secrets.token_hex(16)).start()
            except RuntimeError as error:
                raise UsageError(f"--processes: {error}") from None
        try:
            results = {}
            for approach in approaches:
                settings = ChainSettings(approach, redis_url=server.url if server else None)
                results[APPROACHES[approach]] = measure_chain(run_chain(settings, requests), requests)
        finally:
            if server is not None:
                server.stop()
    print(report.chain_json(faults, results) if args.json else report.chain_terminal(faults, count, results))
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
