"""The ``tracesieve`` command: simulate a policy on realistic traffic, check
and explain a configuration, time the samplers, run the demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

DEFAULT_REQUESTS = {"traffic": 20_000, "errors": 20_000, "month": 60_000, "spike": 30_000}


class UsageError(Exception):
    """A bad command line: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    from tracesieve.scenarios import DESCRIPTIONS, SCENARIOS

    parser = _Parser(prog="tracesieve", description="Smart trace sampling for OpenTelemetry Python: simulate, check, explain, bench.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    simulate = commands.add_parser("simulate", help="run a policy on simulated traffic and report what it keeps")
    simulate.add_argument("scenario", nargs="?", default="traffic", help="; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    simulate.add_argument("--config", help="pipeline configuration (.toml/.yaml/.json); default: the seed's policy")
    simulate.add_argument("--requests", type=int, help="requests to simulate (default depends on the scenario)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    simulate.add_argument("--compare", choices=["naive"], help="also run the seed's approach (pure Python) on the same traffic")
    simulate.add_argument("--no-tail", action="store_true", help="head sampling only (no deferred spans, no tail decisions)")
    simulate.add_argument("--json", action="store_true", help="print the numbers as JSON")
    simulate.add_argument("--out", help="write PNG charts to this folder (needs the plot extra)")
    check = commands.add_parser("check", help="validate a configuration and print the compiled policy in plain words")
    check.add_argument("config")
    explain = commands.add_parser("explain", help="which rule decides a span, and with what probability")
    explain.add_argument("config")
    explain.add_argument("--name", required=True, help="span name")
    explain.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="a start attribute (repeatable)")
    explain.add_argument("--kind", choices=["internal", "server", "client", "producer", "consumer"])
    explain.add_argument("--child", action="store_true", help="the span has a parent")
    explain.add_argument("--at", help="time of the decision, ISO 8601 (default: now)")
    bench = commands.add_parser("bench", help="a quick side-by-side timing of the samplers")
    bench.add_argument("--calls", type=int, default=20_000)
    commands.add_parser("demo", help="the samplers at work in a TracerProvider (tracesieve demo --help)")
    parser.set_defaults(command=None)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        from tracesieve._demo import main as demo_main

        return demo_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
        if args.command in (None, "simulate"):
            if args.command is None:
                args = _parser().parse_args(["simulate", *argv])
            return simulate(args)
        if args.command == "check":
            return check(args.config)
        if args.command == "explain":
            return explain(args)
        return bench(args.calls)
    except UsageError as error:
        print(f"tracesieve: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as error:
        print(f"tracesieve: error: {error}", file=sys.stderr)
        return 2


def _document(config: Optional[str]) -> Dict[str, Any]:
    from tracesieve._pipeline import from_config, load_config
    from tracesieve.policies import seed_pipeline

    if config is None:
        return seed_pipeline()
    document = load_config(config)
    from_config(config)  # validate now, with the file's name in any error
    return document


def simulate(args: argparse.Namespace) -> int:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracesieve import report
    from tracesieve.scenarios import SCENARIOS, generate
    from tracesieve.simulate import build_naive, build_ours, drive, measure
    from tracesieve.simulation import SimClock

    if args.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {args.scenario!r}; expected one of {', '.join(SCENARIOS)}")
    count = args.requests if args.requests is not None else DEFAULT_REQUESTS[args.scenario]
    if count <= 0:
        raise UsageError(f"--requests: {count} is not positive; expected a number of requests, such as 20000")
    try:
        document = _document(args.config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    scenario = generate(args.scenario, count, args.seed)
    runs = [("tracesieve", "ours")] + ([("naive (the seed's approach)", "naive")] if args.compare else [])
    results, seconds = [], {}
    progress = _progress(len(scenario.requests) * len(runs), quiet=args.json)
    for label, kind in runs:
        clock = SimClock(scenario.start)
        exporter = InMemorySpanExporter()
        tail = kind == "ours" and not args.no_tail
        rigs = build_ours(scenario, document, clock, exporter, tail, args.seed) if kind == "ours" else build_naive(scenario, clock, exporter, args.seed)
        boost: List[List[float]] = []
        spend: List[List[float]] = []

        def observe(now: float, rigs=rigs, boost=boost, spend=spend) -> None:
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


def _progress(total: int, quiet: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        quiet = True
    if quiet or not sys.stderr.isatty():

        class Silent:
            def update(self, n: int) -> None:
                pass

            def close(self) -> None:
                pass

        return Silent()
    return tqdm(total=total, unit="req", desc="simulating", leave=False)


def _words(spec: Any) -> str:
    """A condition in plain words."""
    if not isinstance(spec, dict):
        return f"is {spec!r}"
    parts = []
    for op, operand in spec.items():
        parts.append(
            {
                "==": f"is {operand!r}",
                "in": f"is one of {operand!r}",
                "<": f"is below {operand}",
                "<=": f"is at most {operand}",
                ">": f"is above {operand}",
                ">=": f"is at least {operand}",
                "exists": "is present" if operand else "is absent",
                "glob": f"matches {operand!r}",
                "prefix": f"starts with {operand!r}",
            }.get(op, f"{op} {operand!r}")
        )
    return " and ".join(parts)


def _conditions(rule: Dict[str, Any]) -> str:
    parts = []
    for key, label in (("span_name", "the span name"), ("route", "the route"), ("kind", "the kind")):
        if key in rule:
            parts.append(f"{label} {_words(rule[key])}")
    if "root" in rule:
        parts.append("the span is a root" if rule["root"] else "the span has a parent")
    for attribute, spec in rule.get("match", {}).items():
        parts.append(f"{attribute} {_words(spec)}")
    return " and ".join(parts) or "always"


def describe(document: Dict[str, Any]) -> List[str]:
    lines = []
    stages = [k for k in document if k in ("force_keep", "adaptive", "rules", "probability", "budget", "rate_limit")]
    lines.append(f"stages, in order: {', '.join(stages) or '(none: keep everything)'}")
    lines.append("children follow their parent's decision" if document.get("respect_parent", True) else "every span is decided afresh")
    for stage in stages:
        spec = document[stage]
        if stage == "force_keep":
            capped = "capped" if spec.get("capped_by_budget") else "never capped"
            lines.append(f"force_keep ({capped} by the budget): always keep a span when")
            lines += [f"  - {rule.get('name', f'rules[{i}]')}: {_conditions(rule)}" for i, rule in enumerate(spec["rules"])]
        elif stage == "adaptive":
            if "error_rate_target" in spec:
                lines.append(f"adaptive: boost by error fraction / {spec['error_rate_target']} (at most x{spec.get('max_boost', 10)})")
            else:
                steps = spec.get("error_steps", [[5, 2.0], [10, 3.0]])
                lines.append("adaptive: " + ", ".join(f"more than {c} errors in {spec.get('window', 300):g} s gives x{m}" for c, m in steps))
            lines.append(f"  slow spans (>= {spec.get('slow_threshold', 2.0)} s) boost their route x{spec.get('latency_boost', 2.0)}")
        elif stage == "rules":
            lines.append("rules, first match wins:")
            for i, rule in enumerate(spec["rules"]):
                action = f"rate {rule['rate']}" if "rate" in rule else rule.get("action", "keep")
                lines.append(f"  - {rule.get('name', f'rules[{i}]')}: {action} when {_conditions(rule)}")
            lines.append(f"  - default: rate {spec['default_rate']}")
            for multiplier in spec.get("multipliers", []):
                if "attribute" in multiplier:
                    factors = ", ".join(f"{k} x{v}" for k, v in multiplier["factors"].items())
                    lines.append(f"  rates are multiplied by {multiplier['attribute']}: {factors} (others x{multiplier.get('default', 1.0)})")
                else:
                    schedule = multiplier["schedule"]
                    windows = ", ".join(f"{w['start']:02d}-{w['end']:02d} x{w['factor']}" for w in schedule["windows"])
                    lines.append(f"  rates are multiplied by the hour in {schedule['timezone']}: {windows}")
            lines.append("  products are capped at 1; the result goes into the decision and th")
        elif stage == "probability":
            lines.append(f"probability: keep {spec['rate']:.2%} of traces, consistently")
        elif stage == "budget":
            cost = spec.get("cost_per_span", 1.0)
            spans = int(spec["budget"] / cost + 1e-9)
            lines.append(f"budget: {spans:,} spans per {spec.get('period', 'month')} ({spec.get('timezone', 'UTC')}), paced evenly, never exceeded")
        elif stage == "rate_limit":
            lines.append(f"rate_limit: at most {spec['traces_per_second']} new traces per second (bursts of {spec.get('burst', spec['traces_per_second'])})")
    if document.get("record_rule"):
        lines.append("kept spans carry tracesieve.rule naming the rule that decided")
    if document.get("defer"):
        lines.append("dropped spans are recorded (RECORD_ONLY) for tail decisions")
    return lines


def check(config: str) -> int:
    from tracesieve._pipeline import from_config, load_config

    document = load_config(config)
    sampler = from_config(config)
    print(f"{config}: valid ({sampler.get_description()})")
    for line in describe(document):
        print(f"  {line}")
    return 0


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def explain(args: argparse.Namespace) -> int:
    from datetime import datetime

    from opentelemetry.trace import SpanKind

    from tracesieve._pipeline import from_config, load_config
    from tracesieve._samplers import RuleSampler

    document = load_config(args.config)
    from_config(args.config)
    attributes = {}
    for item in args.attr:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--attr: {item!r} is not KEY=VALUE")
        attributes[key] = _value(value)
    kind = getattr(SpanKind, args.kind.upper()) if args.kind else None
    now = datetime.fromisoformat(args.at).timestamp() if args.at else time.time()
    force = document.get("force_keep")
    if force:
        keeper = RuleSampler([{**r, "action": "keep"} for r in force["rules"]], default_rate=0.0)
        verdict = keeper.explain(args.name, attributes, kind=kind, root=not args.child, now=now)
        if verdict["action"] == "keep":
            print(f"force_keep rule {verdict['rule']!r} keeps it: probability 1 (th:0), even under a parent that was not sampled")
            return 0
    if args.child and document.get("respect_parent", True):
        print("it has a parent: it follows the parent's decision (only force_keep rules override)")
        return 0
    if "rules" in document:
        rules = document["rules"]
        sampler = RuleSampler(rules["rules"], default_rate=rules["default_rate"], multipliers=rules.get("multipliers"))
        verdict = sampler.explain(args.name, attributes, kind=kind, root=not args.child, now=now)
        if verdict["action"] == "drop":
            print(f"rule {verdict['rule']!r} drops it (route {verdict['route']!r})")
            return 0
        words = f"rule {verdict['rule']!r}" if verdict["rule"] != "default" else "no rule matches: the default rate"
        print(f"{words} (route {verdict['route']!r}): probability {verdict['probability']:.4g}, th:{verdict.get('th')}")
    elif "probability" in document:
        print(f"probability {document['probability']['rate']}")
    else:
        print("no rate stage: kept (probability 1)")
    notes = []
    if "adaptive" in document:
        notes.append("times the adaptive boost in force (x1 while errors and latency are normal)")
    if "budget" in document:
        notes.append("times the budget's pacing probability")
    if "rate_limit" in document:
        notes.append("subject to the rate limit")
    for note in notes:
        print(f"  {note}")
    return 0


def bench(calls: int) -> int:
    import random

    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import SpanKind

    from tracesieve import ProbabilitySampler, RuleSampler
    from tracesieve.policies import seed_policy
    from tracesieve.reference import ReferenceProbabilitySampler, ReferenceRuleSampler
    from tracesieve.scenarios import generate

    if calls <= 0:
        raise UsageError(f"--calls: {calls} is not positive")
    rng = random.Random(2)
    ids = [rng.getrandbits(128) for _ in range(calls)]
    requests = generate("traffic", min(calls, 5000), 3).requests
    server = SpanKind.SERVER

    def timed(should_sample, with_attributes: bool) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            if with_attributes:
                for i, trace_id in enumerate(ids):
                    r = requests[i % len(requests)]
                    should_sample(None, trace_id, r.endpoint, server, r.attributes, ())
            else:
                for trace_id in ids:
                    should_sample(None, trace_id, "GET", None, None, ())
            best = min(best, time.perf_counter() - started)
        return best / calls * 1e9

    groups = [
        (
            "should_sample at 10%",
            False,
            [
                ("sdk TraceIdRatioBased(0.1)", TraceIdRatioBased(0.1)),
                ("sdk ParentBased(TraceIdRatioBased(0.1))", ParentBased(TraceIdRatioBased(0.1))),
                ("python reference", ReferenceProbabilitySampler(0.1)),
                ("tracesieve ProbabilitySampler(0.1)", ProbabilitySampler(0.1)),
            ],
        ),
        (
            "should_sample, the seed's rule policy",
            True,
            [
                ("sdk TraceIdRatioBased(0.1)", TraceIdRatioBased(0.1)),
                ("python reference", ReferenceRuleSampler(**seed_policy())),
                ("tracesieve RuleSampler", RuleSampler(**seed_policy())),
            ],
        ),
    ]
    for title, with_attributes, samplers in groups:
        print(title)
        base = None
        for name, sampler in samplers:
            ns = timed(sampler.should_sample, with_attributes)
            base = base or ns
            print(f"  {name:42} {ns:9.0f} ns   {ns / base:5.2f}x")
    print("\nbest of 3, on a shared machine: quote ratios. The full suite: pytest benches --benchmark-only")
    return 0
