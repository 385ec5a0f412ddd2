"""``tracesieve check CONFIG``: validate a configuration and print the
compiled plan in plain words (the words come from the plan itself)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("check", help="validate a configuration and print the compiled policy in plain words")
    parser.add_argument("config", help="pipeline configuration (.toml, .yaml or .json)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tracesieve.pipeline import from_config

    sampler = from_config(args.config)
    print(f"{args.config}: valid ({sampler.get_description()})")
    for line in sampler.description:
        print(f"  {line}")
    return 0
