"""``check`` and ``explain`` read a service's host record but never write
one: they read a copy of it, or a fresh stand-in when there is none, both in
a scratch directory, and what they print names the record the service keeps."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from tracesieve import record
from tracesieve.config import ConfigError

UNNAMED = (
    "<service>: the budget's name, else OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES, "
    "else the program's name and a digest of its command line"
)

#: Why a record that exists was not read (the store's own checks, made on the original).
NOT_PRIVATE = "it is not a private file of this user (a link, a pipe or device, another user's, or open to others)"


@contextlib.contextmanager
def reading_only() -> Iterator[None]:
    """Records are read, never made, until the block ends (then the scratch
    directory goes). An error raised in it names the files the service keeps,
    not their copies."""
    scratch = Path(tempfile.mkdtemp(prefix="tracesieve-")).resolve()
    record.read_records_only(scratch)
    try:
        yield
    except ConfigError as error:
        raise ConfigError(as_the_service_keeps_it(str(error))) from None
    finally:
        record.read_records_only(None)
        shutil.rmtree(scratch, ignore_errors=True)


def as_the_service_keeps_it(line: str) -> str:
    """``line`` with each stand-in or copy's path replaced by the service's own
    record's (its overflow files', ``<name>+2.tracesieve`` on, too)."""
    owners = {
        **record.records_left_out,
        **{copy: own for copy, (own, _) in record.records_read.items()},
        **{copy: own for copy, (own, _) in record.records_unusable.items()},
    }
    for stand_in, own in owners.items():
        line = line.replace(stand_in.removesuffix(".tracesieve"), own.removesuffix(".tracesieve"))
    for copy, own in record.stores_copied.items():
        line = line.replace(copy, own)
    return line


def _without_this_budget() -> List[Tuple[str, str]]:
    """(copy, own) of the services' records read that held no budget with
    these settings (a copy grew to make one)."""
    return [(copy, own) for copy, (own, size) in record.records_read.items() if record.record_size(Path(copy)) != size]


def _other_budgets(copy: str) -> List[str]:
    """The budgets a service's record held before this one was added, each
    with what it has spent this period (read from the copy ``copy``)."""
    url, held = record.budgets_held.get(copy, ("", []))
    read = record.budgets_spending(url, held) if held else []
    if not read:
        return []
    lines = [
        "  it holds the service's other budgets, each counted apart: a restart with changed settings "
        "counts afresh from the calendar's share, where a reload carries the count over",
        *(f"  - {line}" for _, line in read[: record.LISTED_BUDGETS]),
    ]
    if len(read) > record.LISTED_BUDGETS:
        lines.append(f"  and {len(read) - record.LISTED_BUDGETS:,} more, which spent less")
    return lines


def check_notes() -> List[str]:
    """What ``check`` adds after the plan about records it did not find."""
    notes = []
    for copy, own in _without_this_budget():
        notes.append(f"{own}: has no budget with these settings yet; the service adds one when it starts with them")
        notes.extend(_other_budgets(copy))
    for _, problem in record.records_unusable.values():
        notes.append(
            f"the service's record cannot be used, by check or by the service: {problem}; "
            "each of the service's processes keeps a budget of its own until the file is removed"
        )
    for own in record.records_left_out.values():
        if "<service>" in own:
            notes.append(UNNAMED)
        elif os.path.lexists(own):
            notes.append(f"{own}: not read: {NOT_PRIVATE}")
        else:
            notes.append(f"{own}: not made yet; the service makes it when it first starts")
    return notes


def _source(copy: str) -> str:
    """What a copy was read from: a file store the configuration names, or the service's host record."""
    return "the store file" if copy in record.stores_copied else "the service's record"


def explain_notes() -> List[str]:
    """What ``explain`` adds after its walk: where the budget's pace came from."""
    lacking = [own for _, own in _without_this_budget()]
    notes = [
        f"the budget's pace is a first start's: {_source(copy)}, {own}, has no budget with these settings"
        if own in lacking
        else f"the budget's pace was read from {_source(copy)}, {own}"
        for copy, (own, _) in record.records_read.items()
    ]
    notes.extend(
        f"the budget's pace is a start's with no record: the service's record cannot be used: {problem}"
        for _, problem in record.records_unusable.values()
    )
    for own in record.records_left_out.values():
        if "<service>" in own:
            notes.append(
                "the budget's pace is a first start's: no service is named "
                "(set OTEL_SERVICE_NAME, or the budget's name, to read that service's record)"
            )
        elif os.path.lexists(own):
            notes.append(f"the budget's pace is a first start's: {own} was not read: {NOT_PRIVATE}")
        else:
            notes.append(f"the budget's pace is a first start's: there is no record at {own} yet")
    return notes


def record_spending_notes(budget_status: Optional[Callable[[], Dict[str, Any]]]) -> List[str]:
    """What ``check`` adds of a budget the service's record holds (nothing,
    when there is no budget, no record was read, or the record holds no
    budget with these settings)."""
    if budget_status is None or not record.records_read or _without_this_budget():
        return []
    return spending_notes(budget_status, _source(next(iter(record.records_read))), says_assumed=True)


def spending_notes(budget_status: Callable[[], Dict[str, Any]], source: str, says_assumed: bool = False) -> List[str]:
    """This period's spending as ``source`` (a record, a state file) stands,
    read with ``budget_status`` (a pipeline's; nothing when it has no budget
    stage). A record whose period ended reads as the new period, with nothing
    of it spent, as the service's next decision finds it. ``says_assumed``:
    the count the record began with is told apart from what was kept since
    (a host record keeps the two apart; a state file does not)."""
    try:
        status = budget_status()
    except TypeError:  # a pipeline with no budget stage
        return []
    used, budget = status["used_spans"], status["budget_spans"]
    counted = f"{used:,} of {budget:,} spans ({100.0 * used / budget:.1f}%)"
    assumed = status["assumed_spans"]
    if says_assumed and assumed:
        # A record's first period begins with the calendar's share taken as spent (pacing.md): say so,
        # or a service started today reads as having kept a fifth of the month's budget.
        counted = (
            f"{used:,} of {budget:,} spans ({100.0 * used / budget:.1f}%: {assumed:,} it began with, the calendar's share "
            f"a new record takes as spent or a count carried over, and {used - assumed:,} counted since)"
        )
    period = record.this_period(status["period"])
    tail_refused = sum(counts["refused_spans"] for counts in status["tail"].values())
    # refused_spans counts the tail's refusals too.
    head_refused = max(0, status["refused_spans"] - tail_refused)
    refused = f"{head_refused:,} refused by the head, {tail_refused:,} by the tail"
    over = status["over_budget_spans"]
    beyond = f", {over:,} over the budget (keep rules or tail keeps exempt from it)" if over else ""
    return [
        f"spent {period} so far, as {source} stands: {counted}, {refused}{beyond}; "
        f"the pacing probability now {status['pacing_probability']:.4g}"
    ]
