"""``tracesieve check CONFIG``: validate a configuration and print the
compiled plan in plain words (the words come from the plan itself)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("check", help="validate a configuration and print the compiled policy in plain words")
    parser.add_argument("config", help="a pipeline configuration or a rules file (.toml, .yaml or .json)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tracesieve.config import POLICY_KEYS, ConfigError, load_config
    from tracesieve.pipeline import build
    from tracesieve.samplers import RuleSampler

    document = load_config(args.config)  # the file is read once
    where = f"{args.config}: "
    if isinstance(document.get("rules"), list) and set(document) <= set(POLICY_KEYS):
        try:
            sampler = RuleSampler(**document)
        except ConfigError as error:
            raise ConfigError(f"{where}{error}") from None
        kind, description, lines = "rules file for OTEL_TRACES_SAMPLER=tracesieve_rules", sampler.get_description(), sampler.description
    else:
        native, _, _, lines = build(document, where=where)
        kind, description = "pipeline", native.get_description()
    print(f"{args.config}: valid {kind} ({description})")
    for line in lines:
        print(f"  {line}")
    return 0
