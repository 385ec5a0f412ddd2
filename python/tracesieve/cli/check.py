"""``tracesieve check CONFIG``: validate a configuration and print the
compiled plan in plain words (the words come from the plan itself)."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any, Dict, List


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("check", help="validate a configuration and print the compiled policy in plain words")
    parser.add_argument(
        "config",
        help="a pipeline configuration, a rules file (.toml, .yaml or .json), or an OpenTelemetry configuration file",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tracesieve.cli.records import reading_only

    # A check makes no record: it reads the service's, when it exists.
    with reading_only():
        return _check(args)


def _check(args: argparse.Namespace) -> int:
    from tracesieve.cli.records import as_the_service_keeps_it, check_notes, record_spending_notes
    from tracesieve.config import ConfigError, check_policy, is_rules_file, load_config
    from tracesieve.declarative import is_otel_config
    from tracesieve.pipeline import anchored, build, stage
    from tracesieve.samplers import RuleSampler

    document = load_config(args.config)
    where = f"{args.config}: "
    budget_status = None
    spending: List[str] = []
    if is_otel_config(document):
        return check_otel_config(args.config)
    if is_rules_file(document):
        try:
            sampler = RuleSampler(**check_policy(document))
        except ConfigError as error:
            raise ConfigError(f"{where}{error}") from None
        kind, description, lines = "rules file for OTEL_TRACES_SAMPLER=tracesieve_rules", sampler.get_description(), sampler.description
    else:
        # A relative state_path is read from the file's folder, as the service reads it.
        native, _, resolved, lines = build(anchored(document, Path(args.config).absolute()), where=where)
        if "tail" in document:
            from tracesieve.provider import check_tail_section

            check_tail_section(document, where)
            lines = [
                *lines,
                "the tail section is read by tracesieve.TracerProvider (TracerProvider.from_config, or "
                "OTEL_PYTHON_TRACER_PROVIDER=tracesieve with TRACESIEVE_CONFIG), not by OTEL_TRACES_SAMPLER=tracesieve",
            ]
        budget = stage(resolved, "budget")
        if budget is not None:
            budget_status = functools.partial(_budget_status, native, budget)
            if budget["state_path"] is not None:
                spending = _state_file_notes(native, budget)
        if native.fleet_connection() is not None:
            from tracesieve.fleet import require_client

            try:
                require_client()
            except ConfigError as error:
                raise ConfigError(f"{where}{error}") from None
        kind, description = "pipeline", native.get_description()
        if budget_status is not None:
            from tracesieve.cli.fleet_count import fleet_spending_notes

            spending.extend(fleet_spending_notes(native, budget_status()))
    print(f"{args.config}: valid {kind} ({description})")
    for line in [*lines, *check_notes(), *record_spending_notes(budget_status), *spending]:
        print(f"  {as_the_service_keeps_it(line)}")
    return 0


def _budget_status(native: Any, budget: Dict[str, Any]) -> Dict[str, Any]:
    """The budget stage's status as a pipeline reports it (in the units the budget was given)."""
    from tracesieve.budget import status_report

    return status_report(native.budget_status(), budget["budget"], budget["cost_per_span"])


class _Reading:
    """A pipeline's native sampler, as a state file restores into it."""

    def __init__(self, native: Any):
        self._native = native


def _state_file_notes(native: Any, budget: Dict[str, Any]) -> List[str]:
    """Where a budget's state file keeps its count, and what it has spent as
    the file stands (restored into ``native``; read only, never saved)."""
    from tracesieve.cli.records import spending_notes
    from tracesieve.state import StateFile

    path = Path(budget["state_path"])
    said = f"the budget's count is saved to {path} (every {budget['save_interval']:g} s and at exit) and restored at a start"
    reading = _Reading(native)
    if StateFile(path, reading, budget["save_interval"]).restored:
        return [said, *spending_notes(functools.partial(_budget_status, native, budget), "the state file")]
    if not path.exists():
        return [said, f"{path}: not made yet; the service makes it when it first saves"]
    return [
        said,
        f"{path}: holds no count of this {budget['period']}: it is an earlier {budget['period']}'s, or was not read (a warning says why)",
    ]


def check_otel_config(path: str) -> int:
    """An OpenTelemetry configuration file: its sampler section built as the
    SDK would build it (tracesieve's nodes natively), and, when the SDK's
    configuration package is installed, the whole file against its schema."""
    from tracesieve.cli.records import as_the_service_keeps_it, check_notes, record_spending_notes
    from tracesieve.config import ConfigError
    from tracesieve.declarative import PARENT_BASED_ORDER, from_otel_config
    from tracesieve.pipeline import stage

    sampler = from_otel_config(path)
    schema = "the rest of the file was not checked (pip install opentelemetry-configuration to check it too)"
    try:
        from opentelemetry.configuration import ConfigurationError, load_config_file
    except ImportError:
        pass
    else:
        try:
            load_config_file(path)
        except ConfigurationError as error:
            raise ConfigError(f"{path}: {error}") from None
        schema = "the whole file is valid for the OpenTelemetry SDK's configuration (opentelemetry-configuration)"
        unbuilt = _not_built_by_the_sdk(path)
        if unbuilt:
            schema += (
                f", but that package builds no {' or '.join(unbuilt)} yet: set as OTEL_CONFIG_FILE, the file fails when the SDK "
                "starts (tracesieve.from_config builds it, and a tracesieve node in its place works with the SDK: see the "
                "declarative configuration page)"
            )
    print(f"{path}: valid OpenTelemetry configuration; tracer_provider.sampler: {sampler.get_description()}")
    # A parent_based sampler's delegates (the SDK keeps them as attributes of these names).
    parts = [(name, getattr(sampler, f"_{name}", None)) for name in PARENT_BASED_ORDER]
    for name, delegate in [("", sampler), *parts]:
        lines = getattr(delegate, "description", None)
        if isinstance(lines, list):
            if name:
                print(f"  {name}: {delegate.get_description()}")  # type: ignore[union-attr]
            budget = stage(delegate.resolved, "budget") if hasattr(delegate, "resolved") else None  # type: ignore[union-attr]
            if budget is not None and budget["state_path"] is not None:
                lines = [*lines, *_state_file_notes(delegate._native, budget)]  # type: ignore[union-attr]
            for line in lines:
                print(f"  {'  ' if name else ''}{as_the_service_keeps_it(line)}")
    # What the record has spent, read through the tracesieve pipeline that holds the budget.
    spending = next(
        (notes for _, delegate in [("", sampler), *parts] if (notes := record_spending_notes(getattr(delegate, "budget_status", None)))), []
    )
    for line in [*check_notes(), *spending, schema]:
        print(f"  {line}")
    return 0


#: Samplers the schema has and opentelemetry-configuration 0.66 and before do not build.
_UNBUILT_SAMPLERS = ("always_record", "probability/development", "jaeger_remote/development")


def _not_built_by_the_sdk(path: str) -> List[str]:
    """The samplers of the file's sampler section, outside tracesieve's nodes,
    that the installed SDK configuration package cannot build."""
    import re
    from importlib.metadata import version

    from tracesieve.declarative import PLUGIN, load, sampler_section

    release = re.match(r"(\d+)\.(\d+)", version("opentelemetry-configuration"))
    if release is None or (int(release.group(1)), int(release.group(2))) > (0, 66):
        return []
    found: List[str] = []
    stack: List[Any] = [sampler_section(load(path))]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if name in _UNBUILT_SAMPLERS and name not in found:
                    found.append(name)
                if name != PLUGIN:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found
