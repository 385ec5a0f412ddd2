"""``tracesieve explain CONFIG --name NAME --attr k=v``: how the plan would
decide a span like this, stage by stage, with the boost and pace in force."""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Dict, List, Optional

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
    kind = getattr(SpanKind, args.kind.upper()) if args.kind else None
    fetched = [note for target in _tracesieve_samplers(sampler) for note in _first_fetch(target)]

    def walk(target: Any, parent: bool) -> List[str]:
        return target.explain(args.name, attributes, kind=kind, parent=parent, now=now)["lines"]

    lines = _walk(sampler, args.child, walk)
    if lines is None:
        raise UsageError(
            f"{args.config}: its sampler, {sampler.get_description()}, is not one explain walks; expected a pipeline, a rules "
            "file, a composite sampler, the SDK's always_on, always_off or trace_id_ratio_based, or parent_based over them"
        )
    lines = [*lines, *_tail_lines(_as_pipeline(args.config), args.name, attributes, kind, args.child)]
    notes = [note for target in _tracesieve_samplers(sampler) for note in _pace_notes(target)]
    for line in [*lines, *fetched, *explain_notes(), *dict.fromkeys(notes)]:
        print(line)
    return 0


def _tail_lines(config: Any, name: str, attributes: Dict[str, Any], kind: Any, child: bool) -> List[str]:
    """What a document's tail section keeps after the fact, as
    ``tracesieve.TracerProvider`` reads it (nothing without one)."""
    from collections.abc import Mapping

    from tracesieve._checks import check_tail_rules
    from tracesieve.config import load_config
    from tracesieve.declarative import is_otel_config
    from tracesieve.provider import tail_settings
    from tracesieve.samplers import RuleSampler

    document = config if isinstance(config, Mapping) else load_config(config)
    if is_otel_config(document) or "tail" not in document:
        return []
    settings = tail_settings(document)
    lines = [
        "then, with tracesieve.TracerProvider reading the tail section, its trace is kept whole after the fact, "
        "whatever the head decided, when:",
        "  - any span of it has an error",
    ]
    threshold = settings.get("latency_threshold")
    if threshold is not None:
        probability = settings.get("latency_probability", 1.0)
        chance = f", with probability {probability:g}" if probability < 1 else ""
        lines.append(f"  - its local root lasts {threshold:g} s or more{chance}")
    rules = check_tail_rules(settings.get("rules"))
    if rules:
        verdict = RuleSampler(rules, default_rate=0.0).explain(name, attributes, kind=kind, root=not child)
        matched = (
            f"rule {verdict['rule']!r} matches these attributes: kept whole"
            if verdict["action"] == "keep"
            else "no rule matches these attributes"
        )
        lines.append(f"  - a tail rule matches its local root's attributes as the root ends ({matched})")
    if "budget" in document:
        order = " before ".join(settings.get("budget_priorities", ("error", "latency", "rule")))
        exempt = list(settings.get("budget_exempt", ()))
        spare = f"; {' and '.join(exempt)} keeps are exempt (kept over it)" if exempt else ""
        lines.append(f"  these keeps spend the budget too: when it cannot cover them all, {order} keeps (budget_priorities){spare}")
    return lines


#: Whose parent each of a ParentBased sampler's delegates for a span with a parent is for.
PARENTS = {
    "remote_parent_sampled": "a sampled parent from another process",
    "remote_parent_not_sampled": "a parent from another process, not sampled",
    "local_parent_sampled": "a sampled parent in this process",
    "local_parent_not_sampled": "a parent in this process, not sampled",
}


def _walk(sampler: Any, child: bool, walk: Callable[[Any, bool], List[str]]) -> Optional[List[str]]:
    """How ``sampler`` decides the span: a tracesieve sampler's own walk; an
    OpenTelemetry configuration's ``parent_based`` one by the delegate that
    decides it (each parent's kind, for a child), walked when it is
    tracesieve's; None for any other sampler."""
    from opentelemetry.sdk.trace.sampling import ParentBased

    from tracesieve.declarative import AlwaysRecordSampler
    from tracesieve.samplers import TraceIdRatioSampler

    if hasattr(sampler, "explain"):
        return walk(sampler, child)
    if isinstance(sampler, AlwaysRecordSampler):
        inner = _walk(sampler._root, child, walk)
        recorded = (
            f"AlwaysRecord: every span is recorded for the processors; one its root, {sampler._root.get_description()}, "
            "drops is RECORD_ONLY (never exported)"
        )
        return None if inner is None else [recorded, *inner]
    if isinstance(sampler, TraceIdRatioSampler) and sampler.respect_parent:
        # ParentBased(TraceIdRatioBased), natively: only a span with no parent is drawn.
        shown = f"{sampler.get_description()}, the SDK's ParentBased(TraceIdRatioBased) natively"
        if child:
            return [f"{shown}: a span with a parent follows it: kept when the parent was sampled, dropped when not"]
        return [f"{shown}: a span with no parent is kept with probability {sampler.rate:g} (the SDK's sampler: no th)"]
    if not isinstance(sampler, ParentBased):
        said = _sdk_decision(sampler)
        return None if said is None else [f"{sampler.get_description()} decides every span alike: {said}"]
    if not child:
        root = sampler._root
        return [f"ParentBased: a span with no parent goes to its root sampler, {root.get_description()}", *_delegate(root, False, walk)]
    from tracesieve.declarative import PARENT_BASED_ORDER

    lines = ["ParentBased: a span with a parent goes to the sampler for its parent:"]
    for name in PARENT_BASED_ORDER[1:]:  # after root
        delegate = getattr(sampler, f"_{name}")
        lines.append(f"  {name} ({PARENTS[name]}): {delegate.get_description()}")
        lines += [f"  {line}" for line in _delegate(delegate, True, walk)]
    return lines


def _delegate(sampler: Any, child: bool, walk: Callable[[Any, bool], List[str]]) -> List[str]:
    """A ParentBased delegate's decision, indented: tracesieve's walked, the
    SDK's own said in a line."""
    if hasattr(sampler, "explain"):
        return [f"  {line}" for line in walk(sampler, child)]
    said = _sdk_decision(sampler)
    return [f"  so: {said}" if said else "  it decides as it will; explain does not walk it"]


def _sdk_decision(sampler: Any) -> Optional[str]:
    """What one of the SDK's own samplers does with any span, or None for another sampler."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, TraceIdRatioBased

    from tracesieve.samplers import TraceIdRatioSampler

    if sampler is ALWAYS_ON:
        return "kept (the SDK's sampler: no th)"
    if sampler is ALWAYS_OFF:
        return "dropped"
    if isinstance(sampler, (TraceIdRatioBased, TraceIdRatioSampler)):  # the latter decides as the SDK's does, natively
        return f"kept with probability {sampler.rate:g} (the SDK's sampler: no th)"
    return None


def _tracesieve_samplers(sampler: Any) -> List[Any]:
    """``sampler`` and, for a ParentBased one, its delegates: those that are tracesieve's."""
    from tracesieve.declarative import PARENT_BASED_ORDER

    delegates = [getattr(sampler, f"_{name}", None) for name in PARENT_BASED_ORDER]
    return [target for target in [sampler, *delegates] if hasattr(target, "explain")]


#: How long explain waits for a remote sampler's first fetch (a fetch's own timeout is 5 s by default).
FIRST_FETCH_WAIT = 6.0


def _first_fetch(sampler: Any) -> List[str]:
    """Wait for a Jaeger or X-Ray sampler's first fetch, so the walk is the
    server's strategy or rules, as the service decides once it has fetched
    them; a line saying which (nothing for a sampler that fetches nothing)."""
    try:
        status = sampler.remote_status()
    except (AttributeError, TypeError):  # not remote, or a pipeline with no remote stage
        return []
    deadline = time.monotonic() + FIRST_FETCH_WAIT
    while status["fetches"] + status["fetch_failures"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
        status = sampler.remote_status()
    if status["fetches"]:
        return [f"fetched from {status['source']} now: the service decides so once it has fetched the same"]
    why = status["last_error"] or f"no answer within {FIRST_FETCH_WAIT:g} s"
    return [f"{status['source']} could not be fetched now ({why}): the service decides so until it answers"]


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
        from tracesieve.cli.fleet_count import fleet_spending_notes

        # What the fleet spent is read (writing nothing), as check reads it; the pace a member
        # would have comes from steps that lease and write, which explain never takes.
        return [
            "the budget's pace is this process's at a start: explain joins no fleet, so the pace its members have is not known here",
            *fleet_spending_notes(sampler._native, sampler.budget_status()),
        ]
    if store["url"] is None:
        return [
            "the budget's pace is a start's with no record: store = \"memory\" keeps none, so each process starts on its start allowance"
        ]
    return []
