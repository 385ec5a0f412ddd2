"""``tracesieve records``: every service's budget record in the state
directory, with its budgets' spending this period, whether a process has it
open, and when it goes; read through copies, as ``check`` reads a record."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, List

from tracesieve import record
from tracesieve._core import RECORD_IDLE_DAYS, host_records, read_record, record_in_use
from tracesieve.cli.records import NOT_PRIVATE


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("records", help="the budget records in the state directory: each service's budgets and what they spent")
    parser.add_argument(
        "--dir", metavar="DIR", help="the state directory to read (default: TRACESIEVE_STATE_DIR, else $XDG_STATE_HOME/tracesieve)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tracesieve.cli.usage import UsageError

    try:
        directory = Path(args.dir).expanduser() if args.dir else record.state_dir()
    except RuntimeError:
        raise UsageError("no state directory: this user has no home directory; give --dir or set TRACESIEVE_STATE_DIR") from None
    if not directory.exists():
        print(f"{directory}: no records yet (the directory is made when a budget first starts)")
        return 0
    if not directory.is_dir():
        raise UsageError(f"--dir: {directory} is not a directory")
    if not os.access(directory, os.R_OK | os.X_OK):
        raise UsageError(f"{directory}: this user may not read it, so its records cannot be listed")
    records = host_records(str(directory))
    size = sum(_size(path) for _, files in records for path in files)
    count = f"{len(records):,} record{'s' if len(records) != 1 else ''}"
    print(f"{directory}: {count}, {_kilobytes(size)}" if records else f"{directory}: no records")
    scratch = Path(tempfile.mkdtemp(prefix="tracesieve-"))
    try:
        for name, files in records:
            try:
                lines = _record_lines(directory, name, [Path(path) for path in files], scratch)
            except OSError as error:  # removed meanwhile (an idle record a start swept), say
                lines = [f"{name}: could not be read ({error.strerror or error})"]
            for line in lines:
                print(line)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _record_lines(directory: Path, name: str, files: List[Path], scratch: Path) -> List[str]:
    """A record's heading (its files, whether a process has it open, when it
    was last opened or written) and its budgets, most spent first."""
    shown = ", ".join(path.name for path in files)
    size = sum(os.lstat(path).st_size for path in files)
    held = [record_in_use(str(path)) for path in files]
    if any(held):
        use = "open in a process now"
    elif all(h is False for h in held):
        use = "no process has it open"
    else:
        use = "whether a process has it open cannot be seen here"
    touched = max(os.lstat(path).st_mtime for path in files)
    days = (time.time() - touched) / 86_400
    when = datetime.fromtimestamp(touched, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    age = f", {int(days):,} days ago" if days >= 1 else ""
    goes = (
        f": removed when a budget next starts with this state directory (no process used it for {RECORD_IDLE_DAYS} days)"
        if not any(held) and days >= RECORD_IDLE_DAYS
        else ""
    )
    lines = [f"{name} ({shown}, {_kilobytes(size)}): {use}; last opened or written {when}{age}{goes}"]
    if not all(record.private_file(path) for path in files):
        return [*lines, f"  not read: {NOT_PRIVATE}"]
    copies = scratch / name
    copies.mkdir(mode=0o700)
    url = record.copy_record(directory, name, copies)
    problem, budgets = read_record(url)
    if problem is not None:
        return [*lines, f"  cannot be used: {problem.replace(str(copies), str(directory))}"]
    spending = record.budgets_spending(url, budgets)
    return [*lines, *(f"  - {line}" for _, line in spending)] if spending else [*lines, "  no budget (a rate limit or error windows only)"]


def _size(path: str) -> int:
    """A file's size; 0 when it went meanwhile (its record then says so)."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _kilobytes(size: int) -> str:
    return f"{size / 1024:,.0f} kB" if size >= 1024 else f"{size:,} bytes"
