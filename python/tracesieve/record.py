"""Where a budget keeps its record when nobody said: a host store in the
user's state directory, one file per service, so restarts carry on and the
workers of one service on a host share one budget with no configuration.

The directory is ``TRACESIEVE_STATE_DIR`` when set, else the XDG state
directory (``$XDG_STATE_HOME/tracesieve``, by default
``~/.local/state/tracesieve``), made private to the user (0700). The service
is the budget's ``name``, else ``OTEL_SERVICE_NAME``, else ``service.name`` in
``OTEL_RESOURCE_ATTRIBUTES``, else the program's name and a digest of its command line. A directory that cannot
be used leaves the budget in this process's memory, with one warning saying
which directory and why."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import platformdirs

from tracesieve import _store
from tracesieve._core import RECORD_IDLE_DAYS, STORE_MAGIC, ConfigError, NativeSampler, read_record, remove_idle_records
from tracesieve._core import RECORD_OVERFLOW_FILES as OVERFLOW_FILES
from tracesieve._files import make_private_directory, open_regular
from tracesieve._scrub import scrubbed_logger

__all__ = [
    "HOST",
    "MEMORY",
    "STATE_DIR_VARIABLE",
    "budget_store",
    "budgets_held",
    "budgets_spending",
    "copy_record",
    "default_store",
    "document_service",
    "named_service",
    "named_store",
    "naming",
    "private_file",
    "read_records_only",
    "reading_only",
    "record_size",
    "records_left_out",
    "records_read",
    "records_unusable",
    "sampler_service",
    "say_counted_afresh",
    "service_name",
    "state_dir",
    "stores_copied",
    "this_period",
]

#: Overrides the state directory (a volume in a container, say).
STATE_DIR_VARIABLE = "TRACESIEVE_STATE_DIR"
#: ``store=`` values with a meaning of their own.
MEMORY = "memory"
HOST = "host"

_logger = scrubbed_logger("tracesieve.budget")
_reported: Set[Tuple[str, str]] = set()
#: State directories this process already swept of idle records.
_swept: Set[Path] = set()
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def state_dir() -> Path:
    """The directory budget records go in (not made by this call). A leading
    ``~`` in ``TRACESIEVE_STATE_DIR`` is the home directory, as in a shell:
    a Dockerfile's ``ENV`` and systemd's ``Environment=`` pass it on as it is."""
    given = os.environ.get(STATE_DIR_VARIABLE)
    if given:
        return Path(given).expanduser()
    return Path(platformdirs.user_state_dir("tracesieve", appauthor=False))


def service_name(name: Optional[str] = None) -> str:
    """The name a budget's record is filed under: ``name``, else the
    OpenTelemetry service name from the environment, else the program's name;
    made safe for a file name (letters, digits, ``_``, ``-``, ``.``, none of
    ``.``, ``_`` or ``-`` first or last; 64 at most).
    A name that had to change also gets a digest of itself, so names that read
    alike once changed (``payments/v2`` and ``payments v2``, two names written
    in another script, two long names with one beginning) never share a record."""
    chosen = name or os.environ.get("OTEL_SERVICE_NAME") or _resource_service_name() or _program_name()
    # No leading dash either: a file named -x.tracesieve reads as an option to rm and ls.
    safe = _UNSAFE.sub("_", chosen).strip("._-")[:64]
    if safe == chosen:
        return safe
    digest = hashlib.sha256(chosen.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[:55] or 'service'}-{digest}"


def _resource_service_name() -> Optional[str]:
    for pair in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == "service.name" and value.strip():
            return urllib.parse.unquote(value.strip())
    return None


def _program_name() -> str:
    """The program's name, with a digest of its command line and working
    directory: a launcher's name (gunicorn, uvicorn, celery, python) or a
    common script name (app, main) alone would file two services of one host
    under one record, sharing a budget without a word. Workers, forked or
    spawned, and restarts of one command keep the same name."""
    name = _UNSAFE.sub("_", _program_stem()).strip("._-")[:40] or "python"
    try:
        directory = os.getcwd()
    except OSError:  # a working directory since removed
        directory = ""
    command = "\0".join([directory, *sys.argv])
    return f"{name}-{hashlib.sha256(command.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _program_stem() -> str:
    # "-": a program read from standard input (python -), which has no name of its own.
    if not sys.argv or sys.argv[0] in ("", "-", "-c", "-m"):
        return "python"
    path = Path(sys.argv[0])
    # python -m package runs package/__main__.py: the package names the program.
    return (path.parent.name if path.stem == "__main__" else path.stem) or "python"


#: Set by tracesieve's own commands (check, explain), which read a service's
#: record but never write to it; see ``read_records_only``.
_scratch: Optional[Path] = None
#: In a reading-only process, each stand-in record (in the scratch directory)
#: and the path of the service's own (``<service>`` for its name when nothing
#: names the service), for the records it did not find.
records_left_out: Dict[str, str] = {}
#: ... and for the records it read through a copy: the copy, the service's
#: own path, and the copy's size before use (a budget the record did not
#: hold makes the copy grow).
records_read: Dict[str, Tuple[str, int]] = {}
#: ... and the budgets each copy held when it was made (``BudgetSampler``
#: settings), with the copy's store URL.
budgets_held: Dict[str, Tuple[str, List[Dict[str, Any]]]] = {}
#: ... and the file stores (``store = "file:///..."``) it read through a
#: copy, or stood in for with a fresh one: the copy's path and the store's own.
stores_copied: Dict[str, str] = {}
#: ... and for the records whose copy the store could not use (a truncated or
#: foreign file), as the service could not either: the copy, the service's
#: own path, and why.
records_unusable: Dict[str, Tuple[str, str]] = {}


def read_records_only(scratch: Optional[Path]) -> None:
    """For tracesieve's own commands: budgets read a copy of the service's
    host record (when the service is named, by ``name``, ``OTEL_SERVICE_NAME``
    or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, and its record
    exists), else a fresh stand-in, both in ``scratch`` (a private directory
    the caller removes), so nothing in the state directory is made or
    written; noted in ``records_read`` and ``records_left_out``. None: back
    to records as services keep them (the notes are cleared). Samplers on
    a Redis fleet do not join it meanwhile: joining leases spans and may
    make the period's count there."""
    global _scratch
    _scratch = scratch
    _store.join_fleets(scratch is None)
    records_left_out.clear()
    records_read.clear()
    budgets_held.clear()
    records_unusable.clear()
    stores_copied.clear()


def reading_only() -> bool:
    """Whether this process reads records only (tracesieve's check and explain)."""
    return _scratch is not None


def _stand_in(scratch: Path, directory: Path, name: Optional[str]) -> str:
    """The store URL a reading-only budget uses: a copy of the service's record, or a fresh one."""
    service = named_service(name)
    own = directory / f"{service or '<service>'}.tracesieve"
    copy = scratch / f"{service or 'service'}.tracesieve"
    if service is not None and private_file(own) and str(copy) not in records_read:
        try:
            url = copy_record(directory, service, scratch)
            problem, budgets = read_record(url)
            if problem is not None:  # said of the service's own files, not the copies
                records_unusable[str(copy)] = (str(own), problem.replace(str(scratch), str(directory)))
            else:
                budgets_held[str(copy)] = (url, budgets)
                records_read[str(copy)] = (str(own), record_size(copy))
        except OSError:
            pass
    if str(copy) not in records_read and str(copy) not in records_unusable:
        records_left_out[str(copy)] = str(own)
    return f"host://{scratch}#{service or 'service'}"


def copy_record(directory: Path, service: str, scratch: Path) -> str:
    """Copy the service's record files (its overflow files too, in the order
    the store tries them) from ``directory`` into ``scratch``; the copy's store URL."""
    for index in range(1, OVERFLOW_FILES + 2):
        suffix = f"+{index}.tracesieve" if index > 1 else ".tracesieve"
        own_file = directory / f"{service}{suffix}"
        if not private_file(own_file):
            break
        copy_for_reading(own_file, scratch / f"{service}{suffix}")
    return f"host://{scratch}#{service}"


def copy_for_reading(own: Path, copy: Path) -> None:
    """Copy a store file to be read, its mode (0600, which the store checks)
    too; of a file that does not begin as a store does, only the first bytes
    the store reads before refusing it are copied, into a sparse file of its
    size (a garbage file of 900 MB named like a record took 4.9 s, and its
    size in scratch space)."""
    with open_regular(own, os.O_NOFOLLOW) as source:
        head = source.read(len(STORE_MAGIC))
        if head == STORE_MAGIC:
            source.seek(0)
            with open(copy, "xb") as target:
                shutil.copyfileobj(source, target)
        else:
            with open(copy, "xb") as target:
                target.write(head)
                target.truncate(os.fstat(source.fileno()).st_size)  # sparse: the store's message gives the size
    shutil.copystat(own, copy, follow_symlinks=False)


def this_period(period: str) -> str:
    """How a line names the budget's current ``period``: today, this month..."""
    return "today" if period == "day" else f"this {period}"


def budgets_spending(url: str, held: List[Dict[str, Any]]) -> List[Tuple[int, str]]:
    """The budgets ``held`` (``read_record``'s settings) in the record at
    ``url``, a copy (opening a budget may write to it), each as (spans spent
    this period, or -1 when it cannot be read, and a line saying so), those
    that spent most first."""
    read: List[Tuple[int, str]] = []
    for settings in held:
        said = f"{settings['budget']:,} spans per {settings['period']} ({settings['timezone']})"
        said += ", keep rules capped" if settings["cap_forced_keeps"] else ""
        said += f", downstream {settings['downstream']}" if settings["downstream"] != "pace" else ""
        try:
            status = NativeSampler.budget(NativeSampler.probability(1.0), store=url, **settings).budget_status()
        except ConfigError as error:  # a time zone this machine no longer knows, say
            read.append((-1, f"{said}: not read ({error})"))
            continue
        used, assumed = status["used_spans"], status["assumed_spans"]
        share = f"{100.0 * used / status['budget_spans']:.1f}%"
        if assumed:  # as check splits it: a new count's calendar share, or a count carried over
            share += f": {assumed:,} it began with, {used - assumed:,} counted since"
        read.append((used, f"{said}: {used:,} spent {this_period(status['period'])} ({share})"))
    return sorted(read, key=lambda item: -item[0])


def say_counted_afresh(native: Any) -> None:
    """Warn when a budget began a new count in its service's record, which
    held other budgets of the service (a restart with changed settings): what
    they spent this period is not carried over, as a reload would carry it."""
    if _scratch is not None:  # check and explain read copies; the service itself says this
        return
    beside = native.budget_begun_beside()
    if not beside:
        return
    status, url = native.budget_status(), native.store_info()["url"]
    if url is None:  # the record became unusable meanwhile: that was said already
        return
    # The record's first file (the URL names the overflow file a budget went on in, if it did).
    shown = Path(url[len("file://") :])
    path = shown.with_name(re.sub(r"\+\d+$", "", shown.stem) + ".tracesieve")
    spent: List[Tuple[int, str]] = []
    try:  # what they spent is read from a copy; the warning goes out without it if that fails
        with tempfile.TemporaryDirectory(prefix="tracesieve-") as scratch:
            spent = budgets_spending(copy_record(path.parent, path.stem, Path(scratch)), beside)
    except (OSError, ConfigError):
        pass
    listed = [line for used, line in spent[:LISTED_BUDGETS] if used != 0] or ["none has spent anything this period"]
    if len(beside) == 1:
        others, replaced = "1 other budget of the service", "If this budget replaces that one, what it spent is"
    else:
        others, replaced = f"{len(beside)} other budgets of the service", "If this budget replaces one of them, what that one spent is"
    _logger.warning(
        "tracesieve: the budget of %s spans per %s (%s) starts a new count in the service's record %s, taking the "
        "calendar's share, %s spans, as spent: the record holds no count with these settings, only %s (%s). %s not "
        "carried over; a reload (reload = true, or PipelineSampler.reload()) carries a count over.",
        f"{status['budget_spans']:,}",
        status["period"],
        status["timezone"],
        path,
        f"{status['assumed_spans']:,}",
        others,
        "; ".join(listed),
        replaced,
    )


#: The other budgets of a record a warning or ``check`` lists, those that spent most this period first.
LISTED_BUDGETS = 5


def _store_stand_in(scratch: Path, url: str) -> str:
    """The URL a reading-only pipeline uses for the file store ``url``: a copy
    of the file (when it is one the store would open), else a fresh one, in
    ``scratch``; the store's own file is neither made nor written."""
    rest = url[len("file://") :]
    where, hash_mark, name = rest.partition("#")
    path, query_mark, query = where.partition("?")
    own = Path(path)
    copy = scratch / f"store-{hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}" / (own.name or "store")
    if str(copy) not in stores_copied:
        copy.parent.mkdir(mode=0o700)
        if private_file(own):
            try:
                copy_for_reading(own, copy)
                records_read[str(copy)] = (str(own), record_size(copy))
            except OSError:
                pass
        stores_copied[str(copy)] = str(own)
    return f"file://{copy}{query_mark}{query}{hash_mark}{name}"


def record_size(path: Path) -> int:
    """The bytes of the record at ``path`` and its overflow files (a budget it
    did not hold makes one of them grow, or a new one)."""
    return path.stat().st_size + sum(f.stat().st_size for f in path.parent.glob(f"{glob.escape(path.stem)}+*.tracesieve"))


def private_file(path: Path) -> bool:
    """Whether ``path`` is a record as the store would open it: a regular file
    (no link), this user's, private. A copy is ours whatever it was, so the
    store's own checks must be made here."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def naming(service: Any) -> Optional[str]:
    """``service`` when it names a service: a non-empty string other than the
    SDK's ``unknown_service`` default."""
    return service if isinstance(service, str) and service and not service.startswith("unknown_service") else None


def sampler_service(sampler: Any) -> Optional[str]:
    """The service a remote sampler fetches its strategy or rules for (a
    Jaeger or X-Ray one), which a budget around it is for too; None for others."""
    return naming(getattr(sampler, "service_name", None))


def document_service(document: Mapping[str, Any]) -> Optional[str]:
    """The service a pipeline document's remote stage (``jaeger_remote`` or
    ``xray_remote``) names, which its budget is for too."""
    for stage in ("jaeger_remote", "xray_remote"):
        settings = document.get(stage)
        service = naming(settings.get("service_name")) if isinstance(settings, Mapping) else None
        if service is not None:
            return service
    return None


def named_service(name: Optional[str] = None) -> Optional[str]:
    """The record's service name when something names the service, None when
    only the program would (see ``service_name``)."""
    return service_name(name) if name or os.environ.get("OTEL_SERVICE_NAME") or _resource_service_name() else None


def default_store(name: Optional[str] = None) -> Optional[str]:
    """The host record's store URL for the budget called ``name`` (see the
    module's notes), or None, with one warning, when the state directory
    cannot be used."""
    try:
        directory = state_dir()
    except RuntimeError:
        # No home to put it in: HOME unset and no user-database entry, as for a
        # container's arbitrary user id. The library raised this into the app.
        _memory_only(os.environ.get(STATE_DIR_VARIABLE) or "~/.local/state/tracesieve", "cannot be placed: this user has no home directory")
        return None
    if _scratch is not None:
        return _stand_in(_scratch, directory, name)
    problem = _missing_home(directory) or _prepare(directory)
    if problem is not None:
        _memory_only(str(directory), problem)
        return None
    _remove_idle(directory.resolve())
    return f"host://{directory.resolve()}#{service_name(name)}"


def _remove_idle(directory: Path) -> None:
    """Once per process and directory: remove the records no process has open
    and none opened or wrote for ``RECORD_IDLE_DAYS`` (a retired service's, a one-off
    ``python -c``'s), which would otherwise stay for good."""
    if directory in _swept:
        return
    _swept.add(directory)
    removed = remove_idle_records(str(directory))
    if removed:
        _logger.info(
            "tracesieve: removed %d record file(s) from %s that no process had used for %d days: %s",
            len(removed),
            directory,
            RECORD_IDLE_DAYS,
            ", ".join(sorted(os.path.basename(path) for path in removed)),
        )


def _memory_only(directory: str, problem: str) -> None:
    """Say once per directory and problem that budgets keep their record in memory."""
    if (directory, problem) not in _reported:
        _reported.add((directory, problem))
        _logger.warning(
            "tracesieve: the budget keeps its record in this process's memory only: the state directory %s %s "
            "(set %s to a directory this user owns, or give store=)",
            directory,
            problem,
            STATE_DIR_VARIABLE,
        )


def _missing_home(directory: Path) -> Optional[str]:
    """Why the default directory is not made: it is in a home directory that
    does not exist (``/nonexistent``, as Debian gives system users, or a
    Dockerfile's HOME never made). The directories under a home are made as
    XDG asks; a home itself is not, since a process run as root would make it
    root's. A directory named by a variable is made whole, as asked."""
    if os.environ.get(STATE_DIR_VARIABLE) or os.path.isabs(os.environ.get("XDG_STATE_HOME", "")):
        return None
    home = Path.home()
    if directory.is_relative_to(home) and not os.path.lexists(home):
        return f"is in the home directory {home}, which does not exist; a home is not made"
    return None


def _prepare(directory: Path) -> Optional[str]:
    """Make ``directory`` (0700) if missing; why it cannot hold records, or None."""
    if not directory.is_absolute():
        # As XDG rules for its own variables: a relative directory would move
        # with each process's working directory, so workers would not share.
        return "is a relative path; expected an absolute one"
    try:
        # A store is named by a URL, which is text: bytes that are not UTF-8
        # (decoded by Python as surrogates) cannot be in one.
        str(directory.resolve()).encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not UTF-8 text"
    except (OSError, RuntimeError) as error:
        return f"cannot be looked up ({getattr(error, 'strerror', None) or error})"
    try:
        if directory.exists() and not directory.is_dir():
            return "is not a directory"
        make_private_directory(directory)
        info = os.stat(directory)
    except OSError as error:
        return f"cannot be made ({error.strerror or error})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.geteuid():
        return f"belongs to user {info.st_uid}, not to this user ({os.geteuid()})"
    if info.st_mode & 0o022:
        return f"may be written by others (mode {info.st_mode & 0o777:03o}; expected 700)"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is not writable (a read-only home?)"
    return None


def budget_store(store: Optional[str], name: Optional[str], *, state_file: bool, clock: bool) -> Optional[str]:
    """The store URL a budget's ``store=`` setting comes to (None: this
    process's memory). By default the host record, unless a state file keeps
    the record instead, or a ``clock`` (a test, a simulation) makes times that
    other processes could not share; ``"memory"`` opts out, ``"host"`` asks
    for the host record explicitly."""
    if store is None:
        return None if state_file or clock else default_store(name)
    return named_store(store, name)


def named_store(store: Optional[str], name: Optional[str] = None) -> Optional[str]:
    """The store URL a ``store=`` setting names: ``"memory"`` is this process
    only (None), ``"host"`` the host record of the service (or of ``name``),
    anything else as given."""
    if store == MEMORY:
        return None
    if store == HOST:
        return default_store(name)
    return store


def resolve_pipeline(document: Mapping[str, Any], clock: Any) -> Tuple[Mapping[str, Any], Optional[str]]:
    """A pipeline document with ``store = "memory"`` or ``"host"`` resolved, and
    where its budget alone keeps its state when the document names no store:
    its host record, or None (this process's memory)."""
    if not isinstance(document, Mapping):
        return document, None
    store = document.get("store")
    budget = document.get("budget")
    budget = budget if isinstance(budget, Mapping) else None
    name = budget.get("name") if budget is not None and isinstance(budget.get("name"), str) else None
    if _scratch is not None and isinstance(store, str) and store.startswith("file://"):
        document = {**document, "store": _store_stand_in(_scratch, store)}
    if store in (MEMORY, HOST):
        resolved = {key: value for key, value in document.items() if key != "store"}
        url = default_store(name) if store == HOST else None
        if url is not None:
            resolved["store"] = url
        return resolved, None
    if store is None and budget is not None:
        return document, budget_store(None, name, state_file=budget.get("state_path") is not None, clock=clock is not None)
    return document, None
