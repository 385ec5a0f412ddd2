"""Reports of a simulation: a terminal summary, JSON, and PNG charts (with the
optional ``plot`` extra)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

from tracesieve.cli.scenarios import DESCRIPTIONS, Scenario
from tracesieve.cli.services import Measured


def _row(name: str, cells: Dict[str, float]) -> str:
    return (
        f"  {name:18} {cells['requests']:>9,} {cells['kept']:>8,} {cells['kept_by_probability']:>9,} {cells['rate']:>8.1%} "
        f"{cells['estimated']:>11,.0f} {cells['error']:>+8.1%} {_spread(cells):>8}"
    )


def _spread(cells: Dict[str, float]) -> str:
    """The estimate's standard error, relative to it, as the kept spans alone
    give it (``tracesieve.estimate.estimate``): about 3% at 1,000 keeps of one
    probability, more where the probability varied, 38% at 7."""
    if not cells["estimated"]:
        return "n/a"
    return f"±{cells['standard_error'] / cells['estimated']:.1%}"


def terminal(scenario: Scenario, results: List[Measured], seconds: Dict[str, float], notes: Sequence[str] = ()) -> str:
    """The report; ``notes`` (what the simulation did with the policy) follow the heading."""
    lines = [
        f"tracesieve simulate {scenario.name}: {DESCRIPTIONS[scenario.name]}",
        f"{len(scenario.requests):,} requests, each a 3-service trace (frontend -> orders -> payments)",
        *notes,
        "",
    ]
    for result in results:
        lines.append(f"== {result.label} ({seconds.get(result.label, 0):.1f} s)")
        header = (
            f"  {'endpoint':18} {'requests':>9} {'kept':>8} {'by prob.':>9} {'rate':>8} {'estimated':>11} {'est.err':>8} {'expected':>8}"
        )
        lines.append(header)
        lines += [_row(name, cells) for name, cells in result.by_endpoint.items()]
        lines.append(f"  {'tier':18}")
        lines += [_row(name, cells) for name, cells in result.by_tier.items()]
        lines.append(
            f"  spans kept: {result.spans_kept:,} of {result.spans_total:,} (kept + dropped = {result.spans_kept + (result.spans_total - result.spans_kept):,} = total)"
        )
        lines.append(f"  error traces kept whole: {_share(result.error_traces_whole, result.error_traces)}")
        lines.append(f"  slow traces kept whole: {_share(result.slow_traces_whole, result.slow_traces)}")
        lines.append("  spans kept per service: " + ", ".join(f"{k} {v:,}" for k, v in result.spans_by_service.items()))
        complete = result.traces_complete / result.traces_seen if result.traces_seen else 1.0
        lines.append(f"  trace completeness across the 3 services: {complete:.1%} of {result.traces_seen:,} traces with any span kept")
        if result.budget_by_service:
            lines.append("  exported against each service's budget (every exported span counts, the tail's keeps included):")
            for service, b in result.budget_by_service.items():
                refused = ", ".join(f"{kind} {n:,}" for kind, n in b["tail_refused_spans"].items() if n) or "none"
                lines.append(
                    f"    {service:9} {b['exported_spans']:>7,} of {b['budget_spans']:,} spans ({b['exported_spans'] / b['budget_spans']:.1%}"
                    f"{_over(b)}); tail keeps refused: {refused}"
                )
        elif result.budget:
            b = result.budget
            lines.append(f"  budget used (frontend): {b['used_spans']:,} of {b['budget_spans']:,} spans ({b['percent_used']:.1f}%)")
        elif scenario.budget_spans:
            lines.append(f"  no budget: the policy has no budget stage, so nothing paces to the scenario's {scenario.budget_spans:,} spans")
        if scenario.budget_spans:
            lines.append(f"  traces kept downstream without their frontend span: {result.orphans:,}")
            lines.append(f"  blind hours (demand but nothing kept): {result.blind_hours} of {len(result.hours)}")
            lines.append(f"  kept by the visibility floor (th 0: each stands for itself): {result.floor_kept:,}")
            if result.trickled:
                lines.append(f"  kept by the trickle at the budget's limit (each with its th): {result.trickled:,}")
            if result.zero_probability:
                lines.append(
                    f"  head decisions at probability 0 (no room left for the head): {result.zero_probability:,}; "
                    "those the tail did not keep are missing from the estimates"
                )
            if result.unweighted:
                lines.append(f"  kept with no probability recorded (left out of estimates): {result.unweighted:,}")
        if result.boost:
            peak = max(b for _, b in result.boost)
            lines.append(f"  adaptive boost: peak x{peak:g}")
        lines.append(f"  decision cost: {result.decision_ns:,.0f} ns per root span")
        lines.append("")
    if len(results) > 1:
        lines.append("== side by side (whole = kept in all 3 services)")
        lines.append(f"  {'approach':34} {'error traces whole':>20} {'slow traces whole':>20} {'spans kept':>11}")
        for result in results:
            lines.append(
                f"  {result.label:34} {_percent(result.error_traces_whole, result.error_traces):>20} "
                f"{_percent(result.slow_traces_whole, result.slow_traces):>20} {result.spans_kept:>11,}"
            )
        lines.append("")
    lines.append("by prob. = kept by probability below 1 (not by the tail): the samples behind an estimate.")
    lines.append(
        "estimated = requests estimated from the kept spans' own adjusted counts (th, or the tail's tracesieve.adjusted_count: "
        "1 for traces kept for an error anywhere; the budget's floor keeps carry th 0 and count 1)."
    )
    lines.append(
        "expected = the estimate's standard error, read from the kept spans alone (tracesieve.estimate): about ±3% from "
        "1,000 keeps at one probability, more where the probability varied; a row with a few dozen keeps is off by tens of percent."
    )
    return "\n".join(lines)


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({part / whole if whole else 1.0:.1%})"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole if whole else 1.0:.1%}"


def _faults_line(faults: Any) -> str:
    return (
        f"errors start in {faults.error_origin} and reach each caller with probability {faults.propagation:g}; "
        f"{faults.slow_rate:.0%} of requests are slow in {faults.slow_origin}"
    )


def chain_terminal(faults: Any, count: int, results: Dict[str, Dict[str, Any]]) -> str:
    """The services run as processes, side by side."""
    lines = [
        f"tracesieve simulate --processes: {count:,} requests through 3 services in separate processes over HTTP on loopback",
        _faults_line(faults),
        "",
        f"  {'approach':34} {'error traces whole':>20} {'slow traces whole':>20} {'spans kept (f/o/p)':>22} {'seconds':>8}",
    ]
    for label, r in results.items():
        spans = "/".join(f"{v:,}" for v in r["spans_by_service"].values())
        lines.append(
            f"  {label:34} {_share(r['error_traces_whole'], r['error_traces']):>20} "
            f"{_share(r['slow_traces_whole'], r['slow_traces']):>20} {spans:>22} {r['seconds']:>8.1f}"
        )
    for label, r in results.items():
        for service, counts in r["sharing"].items():
            if counts.get("share_redis_calls"):
                lines.append(
                    f"  {label}, {service}: announced {counts['announced']:,}, heard {counts['heard']:,}, "
                    f"heard too late {counts['heard_too_late']:,}, Redis calls {counts['share_redis_calls']:,}"
                )
    return "\n".join(lines)


def chain_json(faults: Any, results: Dict[str, Dict[str, Any]]) -> str:
    return json.dumps({"faults": faults.__dict__, "results": results}, indent=2)


def as_json(scenario: Scenario, results: List[Measured], seconds: Dict[str, float], notes: Sequence[str] = ()) -> str:
    return json.dumps(
        {
            "scenario": scenario.name,
            "description": DESCRIPTIONS[scenario.name],
            "requests": len(scenario.requests),
            "budget_spans": scenario.budget_spans,
            "notes": list(notes),
            "results": [{**r.as_dict(), "seconds": seconds.get(r.label)} for r in results],
        },
        indent=2,
        default=str,
    )


PLOT_HINT = "charts need the plot extra: pip install 'tracesieve[plot]'"


def _over(budget: Dict[str, Any]) -> str:
    """Why a service exported more than its budget, when it did: keep rules the
    policy leaves uncapped, else the burst it may run above the line."""
    over = budget["exported_spans"] - budget["budget_spans"]
    if over <= 0:
        return ""
    if not budget["keep_rules_capped"] and budget["keep_rule_spans"]:
        return f", {over:,} over: keep rules, which the policy does not cap, kept {budget['keep_rule_spans']:,}"
    return f", {over:,} over; its burst is {budget['burst_spans']:.0f}"


def charts(scenario: Scenario, results: List[Measured], out: Path) -> List[Path]:
    """PNG charts in ``out``; raises ImportError (with PLOT_HINT) without matplotlib,
    and OSError naming the file or folder that could not be written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(PLOT_HINT) from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"--out: cannot make the folder {out}: {error.strerror}") from None
    written = []
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    # Short runs are drawn per minute: an hourly series of one point has no line.
    unit, series = ("minute", "minutes") if results[0].minutes and len(results[0].hours) < 3 else ("hour", "hours")
    for result in results:
        buckets = getattr(result, series)
        top.plot([b[unit] for b in buckets], [b["kept"] for b in buckets], marker=".", label=f"kept: {result.label}")
        bottom.plot(
            [b[unit] for b in buckets], [b["kept"] / b["demand"] if b["demand"] else 0 for b in buckets], marker=".", label=result.label
        )
    buckets = getattr(results[0], series)
    top.plot([b[unit] for b in buckets], [b["demand"] for b in buckets], label="demand", color="grey", alpha=0.5)
    top.set_ylabel(f"root spans per {unit}")
    top.set_yscale("log")
    top.legend()
    bottom.set_ylabel("kept / demand")
    bottom.set_xlabel(f"{series} since the start of the {scenario.name} scenario")
    bottom.legend()
    written.append(_save(plt, fig, "Kept spans and sampling probability against demand", out / f"{scenario.name}-kept.png"))
    if scenario.budget_spans:
        fig, ax = plt.subplots(figsize=(10, 4))
        length = len(results[0].hours)
        ax.plot(range(length + 1), [scenario.budget_spans * h / length for h in range(length + 1)], "--", color="grey", label="ideal")
        for result in results:
            if result.spend:
                ax.plot([(t - scenario.start) / 3600 for t, _ in result.spend], [u for _, u in result.spend], label=result.label)
        ax.axhline(scenario.budget_spans, color="red", alpha=0.3)
        ax.set_ylabel("spans counted against the budget")
        ax.set_xlabel("hours")
        ax.legend()
        written.append(_save(plt, fig, "Budget burn against the ideal line", out / f"{scenario.name}-budget.png"))
    boosted = [r for r in results if r.boost]
    if boosted:
        fig, ax = plt.subplots(figsize=(10, 4))
        r = boosted[0]
        t0 = scenario.start
        # Minutes for the short scenarios; a month is drawn per hour, so that its
        # errors (a few an hour) stay visible and its x axis readable.
        unit, seconds = ("minute", 60) if scenario.end - scenario.start <= 2 * 86_400 else ("hour", 3600)
        ax.step([(t - t0) / seconds for t, _ in r.boost], [b for _, b in r.boost], where="post", label="adaptive boost")
        ax.set_ylabel("boost")
        ax.set_xlabel(f"{unit}s")
        twin = ax.twinx()
        errors = [0] * (int((scenario.end - scenario.start) // seconds) + 1)
        for request in scenario.requests:
            if request.error:
                errors[int((request.time - t0) // seconds)] += 1
        # One filled outline, not a bar per bucket (a month has 44,640 minutes).
        twin.stairs(errors, range(len(errors) + 1), fill=True, alpha=0.3, color="red", label=f"errors per {unit}")
        twin.set_ylabel(f"errors per {unit}")
        written.append(_save(plt, fig, "Errors against the adaptive boost", out / f"{scenario.name}-boost.png"))
    return written


def _save(plt, fig, title: str, path: Path) -> Path:
    """Title ``fig``, write it to ``path`` and free it; the path written.
    Raises OSError saying which file could not be written."""
    fig.suptitle(title)
    try:
        # Never through a symbolic link: in a shared folder such as /tmp, a link planted
        # under a chart's name would have the chart overwrite the file it names.
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(handle, "wb") as chart:
            fig.savefig(chart, dpi=100, format="png")
    except OSError as error:
        reason = "it is a symbolic link, and charts are not written through links" if path.is_symlink() else error.strerror
        raise OSError(f"--out: cannot write {path}: {reason}") from None
    finally:
        plt.close(fig)
    return path
