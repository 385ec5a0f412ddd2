"""``tracesieve explain CONFIG --name NAME --attr k=v``: how the plan would
decide a span like this, stage by stage, with the boost and pace in force."""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List

from tracesieve.config import ConfigError


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("explain", help="which rule decides a span, and with what probability")
    parser.add_argument("config", help="a pipeline configuration or a rules file (.toml, .yaml or .json), as tracesieve check reads them")
    parser.add_argument("--name", required=True, help="span name")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="a start attribute (repeatable)")
    parser.add_argument(
        "--kind", choices=["internal", "server", "client", "producer", "consumer"], help="the span's kind (default: unset, as internal)"
    )
    parser.add_argument("--child", action="store_true", help="the span has a parent")
    parser.add_argument("--at", help="time of the decision, ISO 8601; with no offset, this machine's local time (default: now)")
    parser.set_defaults(run=run)


def _value(text: str) -> Any:
    """A command-line attribute value: a boolean, a number, else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _as_pipeline(path: str) -> Any:
    """A rules file (RuleSampler's arguments) as the one-stage pipeline that
    decides the same way, so ``explain`` reads every file ``check`` accepts;
    anything else as it is."""
    from tracesieve.config import check_policy, is_rules_file, load_config

    document = load_config(path)
    if not is_rules_file(document):
        return path
    try:
        check_policy(document)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    stage_keys = ("rules", "default_rate", "multipliers")
    pipeline = {key: value for key, value in document.items() if key not in stage_keys}
    pipeline["rules"] = {key: document[key] for key in stage_keys if key in document}
    return pipeline


def run(args: argparse.Namespace) -> int:
    from tracesieve.cli.records import reading_only

    # Explaining makes no record: the pace comes from the service's, when it exists.
    with reading_only():
        return _explain(args)


def _explain(args: argparse.Namespace) -> int:
    from datetime import datetime

    from opentelemetry.trace import SpanKind

    from tracesieve.cli.records import explain_notes
    from tracesieve.cli.usage import UsageError
    from tracesieve.declarative import from_config

    attributes: Dict[str, Any] = {}
    for item in args.attr:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--attr: {item!r} is not KEY=VALUE")
        attributes[key] = _value(value)
    try:
        now = datetime.fromisoformat(args.at).timestamp() if args.at else time.time()
    except ValueError:
        raise UsageError(f"--at: {args.at!r} is not an ISO 8601 time such as 2026-01-15T12:00:00+09:00") from None
    sampler = from_config(_as_pipeline(args.config))
    explain = getattr(sampler, "explain", None)
    if explain is None:
        raise UsageError(f"{args.config}: its sampler, {sampler.get_description()}, is not tracesieve's; nothing to explain")
    kind = getattr(SpanKind, args.kind.upper()) if args.kind else None
    walk = explain(args.name, attributes, kind=kind, parent=args.child, now=now)
    for line in [*walk["lines"], *explain_notes(), *_pace_notes(sampler)]:
        print(line)
    return 0


def _pace_notes(sampler: Any) -> List[str]:
    """Where the budget's pace came from when no host record holds it (those
    ``explain_notes`` names): the state file, or nothing a start can read."""
    from tracesieve.pipeline import stage

    resolved = getattr(sampler, "resolved", None)
    budget = None if resolved is None else stage(resolved, "budget")
    if budget is None:
        return []
    state = getattr(sampler, "_state", None)
    if state is not None:
        if state.restored:
            return [f"the budget's pace was read from its state file, {state.path}"]
        if not state.path.exists():
            return [f"the budget's pace is a first start's: its state file, {state.path}, is not made yet"]
        return [f"the budget's pace is a start's with no record: its state file, {state.path}, holds no count of this period"]
    store = sampler._native.store_info()
    if store["fleet"] is not None:
        return ["the budget's pace is this process's at a start: the fleet's count is in Redis, which explain does not read"]
    if store["url"] is None:
        return [
            "the budget's pace is a start's with no record: store = \"memory\" keeps none, so each process starts on its start allowance"
        ]
    return []
