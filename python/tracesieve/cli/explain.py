"""``tracesieve explain CONFIG --name NAME --attr k=v``: how the plan would
decide a span like this, stage by stage, with the boost and pace in force."""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("explain", help="which rule decides a span, and with what probability")
    parser.add_argument("config")
    parser.add_argument("--name", required=True, help="span name")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="a start attribute (repeatable)")
    parser.add_argument("--kind", choices=["internal", "server", "client", "producer", "consumer"])
    parser.add_argument("--child", action="store_true", help="the span has a parent")
    parser.add_argument("--at", help="time of the decision, ISO 8601 (default: now)")
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


def run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from opentelemetry.trace import SpanKind

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
    sampler = from_config(args.config)
    explain = getattr(sampler, "explain", None)
    if explain is None:
        raise UsageError(f"{args.config}: its sampler, {sampler.get_description()}, is not tracesieve's; nothing to explain")
    kind = getattr(SpanKind, args.kind.upper()) if args.kind else None
    walk = explain(args.name, attributes, kind=kind, parent=args.child, now=now)
    for line in walk["lines"]:
        print(line)
    return 0
