"""Budget state files: spending snapshots written atomically (a private
temporary file with an unpredictable name, opened exclusively, then renamed into
place) and restored at start when they are for the current period. A state file
is data from disk: one that cannot be trusted (another user's, writable by
others, out of range, for another period) is reported and ignored; a file of
this user's that holds anything but a budget state (another tool's data, a
typo'd path) is a ConfigError, never written over; and temporary files never
pile up, even after ``kill -9``."""

from __future__ import annotations

import atexit
import json
import os
import re
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from tracesieve import record
from tracesieve._background import BackgroundThread
from tracesieve._checks import finite_number, quoted
from tracesieve._files import make_private_directory, open_regular
from tracesieve._scrub import scrubbed_logger
from tracesieve.config import ConfigError

__all__ = ["StateFile", "checked_state_file", "checked_state_path"]

_logger = scrubbed_logger("tracesieve.budget")
STATE_KIND = "tracesieve.budget"
#: Version 2 adds the pacing estimates and when they were saved; version 1 files are still read.
STATE_VERSION = 2
#: A state file is a few hundred bytes; anything much larger is not ours.
MAX_STATE_BYTES = 64 * 1024
_U64_MAX = (1 << 64) - 1
ESTIMATES = ("pace", "demand_rate", "spans_per_entry", "forced_rate")
#: The one writer of each state file in this process: the newest sampler given
#: its path. An older sampler left alive would otherwise save its older count
#: over the newer one, every few seconds and last of all at exit.
_writers: weakref.WeakValueDictionary[str, StateFile] = weakref.WeakValueDictionary()


def _boot_id() -> str:
    """This boot's id (a process id names one process only within a boot)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


_BOOT = _boot_id()


@atexit.register
def _save_at_exit() -> None:
    for writer in list(_writers.values()):
        try:
            writer.save(at_exit=True)
        except Exception:  # one sampler's failure must not cost the others their last save
            _logger.exception("tracesieve: could not save budget state %s at exit", writer.path)


def checked_state_path(path: Any) -> Path:
    """``path`` as a state file's, made absolute now (a daemon that changes
    its working directory later still saves where it restored from), or a
    ConfigError when it names a directory."""
    path = Path(path).absolute()
    try:
        directory = path.is_dir()
    except OSError:  # a name too long, a parent not searchable: reported as any unusable state file is
        directory = False
    if directory:
        raise ConfigError(f"state_path: {str(path)!r} is a directory; expected the path of a state file (such as budget.json)")
    return path


def checked_state_file(path: Any) -> Path:
    """``checked_state_path(path)``, and a ConfigError when the file there
    holds anything but a budget state (which saving would replace)."""
    checked = checked_state_path(path)
    _load(checked, warn=False)
    return checked


def _load(path: Path, warn: bool = True) -> Tuple[bool, Optional[Dict[str, Any]]]:
    """Whether the file at ``path`` exists, and what it holds when that reads
    as a budget state (None for a file not trusted or empty: logged when
    ``warn``). A file that holds anything else is a ConfigError."""
    try:
        present = path.exists()
        text = _read_trusted(path) if present else ""
    except ForeignFile as error:
        raise _not_ours(path, str(error)) from None
    except (OSError, ValueError) as error:  # not trusted; a parent not searchable, a name too long
        if warn:
            _logger.warning("tracesieve: ignoring unreadable budget state %s: %s", path, error)
        return True, None
    if not present:
        return False, None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        if text.strip():
            raise _not_ours(path, f"it is not JSON: {str(error)[:100]}") from None
        if warn:
            _logger.warning("tracesieve: ignoring budget state %s: the file is empty", path)
        return True, None
    except ValueError as error:  # JSON, with a number too long for Python to read
        if warn:
            _logger.warning("tracesieve: ignoring unreadable budget state %s: %s", path, error)
        return True, None
    if not isinstance(data, dict) or data.get("kind") != STATE_KIND:
        raise _not_ours(path, f'it is JSON, but not a budget state (no "kind": "{STATE_KIND}")')
    return True, data


def _not_ours(path: Path, why: str) -> ConfigError:
    """A state file that holds another tool's data (or anything but a budget
    state): saving would replace it, so it is refused, whole, at the start."""
    return ConfigError(
        f"state_path: {str(path)!r} holds something other than a tracesieve budget state ({why}), "
        "which saving would replace; expected the path of a file of its own (such as budget.json), made by tracesieve or not yet made"
    )


class StateFile:
    """Spending snapshots of one budget sampler: saved every ``interval``
    seconds on a background thread (restarted in a forked child) and at exit,
    restored once at start (unless ``restore`` is False: a budget whose count
    this process carries on). A newer sampler given the same path takes the
    file over: the older one saves a last time and stops. Made while records
    are read only (tracesieve's check and explain), it restores and never
    saves, at exit either: a stale count written over the service's newer
    one would be spent again."""

    def __init__(self, path: Path, sampler: Any, interval: float, *, restore: bool = True):
        self.path = checked_state_path(path)
        self._sampler = weakref.ref(sampler)
        self._lock = threading.Lock()
        self._reported: Optional[str] = None
        self.interval = interval
        self._thread = BackgroundThread("tracesieve-budget-state", self._run, on_fork_child=self._after_fork)
        self.key = os.path.realpath(self.path)
        self.read_only = record.reading_only()
        #: Whether the file's count was applied at the start.
        self.restored = False
        #: Another live process that saved the file since this one's last save.
        self._other_writer: Optional[int] = None
        self._warned_other = False
        if self.read_only:
            self.restored = restore and self.restore()
            return
        _load(self.path, warn=False)  # a file that is not a budget state: refused before anything can save over it
        previous, _writers[self.key] = _writers.get(self.key), self
        if previous is not None:
            # Its last count goes into the file first, so this sampler carries it on as a restart would.
            previous.save()
            previous._thread.stop()
            _logger.info("tracesieve: budget state %s is saved by a newer sampler from now on; the older one stops saving it", self.path)
        self._remove_stale_temporaries()
        self.restored = restore and self.restore()
        self._thread.start()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._other_writer, self._warned_other = None, False

    def snapshot(self, sampler: Any) -> Dict[str, Any]:
        raw = sampler._native.budget_status()
        saved = sampler._native.budget_snapshot()
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "period": raw["period"],
            "timezone": raw["timezone"],
            "period_start": saved["period_start"],
            "budget_spans": raw["budget_spans"],
            "used_spans": saved["used_spans"],
            "saved_at": saved["saved_at"],
            "estimates": saved["estimates"],
            "writer": {"pid": os.getpid(), "boot": _BOOT},
        }

    def save(self, *, at_exit: bool = False) -> None:
        sampler = self._sampler()
        if sampler is None or self.read_only:
            return
        data = json.dumps(self.snapshot(sampler)).encode("utf-8")
        try:
            _, held = _load(self.path, warn=False)
        except ConfigError as error:  # another tool's data written there since the start: never replaced
            self._report_once(f"not saving budget state over a file that is no longer one: {error}")
            return
        if not at_exit and not _shared(sampler):
            self._notice_other_writer(held)
        with self._lock:
            temporary: Optional[Path] = None
            try:
                if self.path.is_dir():
                    raise IsADirectoryError(f"{self.path} is a directory")
                make_private_directory(self.path.parent)
                # mkstemp: O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600, a random name:
                # nobody can plant a file or a link at it first.
                handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}.", suffix=".tmp", dir=self.path.parent)
                temporary = Path(name)
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
                self._reported = None
            except OSError as error:
                if temporary is not None:
                    self._forget(temporary)
                self._report_once(f"could not save budget state to {self.path}: {error}")

    def _notice_other_writer(self, held: Optional[Dict[str, Any]]) -> None:
        """Warn (once per process) when another live process of this boot has
        saved the file (which now holds ``held``) since this one's last save,
        twice running: each counts its own budget (spawned workers given one
        state_path), so together they spend it several times over. A restart's
        brief overlap, where the old process saves once more, is not two writers."""
        writer = held.get("writer") if held is not None else None
        writer = writer if isinstance(writer, dict) else {}
        pid = _process_id(writer.get("pid"))
        other = pid if pid is not None and pid != os.getpid() and writer.get("boot") == _BOOT and _alive(pid) else None
        if other is not None and other == self._other_writer and not self._warned_other:
            self._warned_other = True
            _logger.warning(
                "tracesieve: budget state %s is also saved by process %d: each process given this state_path counts its own "
                "budget, so together they spend it several times over, and each save replaces the other's count. Give "
                "store='host' (or a store URL) beside state_path, so the processes share one count",
                self.path,
                other,
            )
        self._other_writer = other

    def _report_once(self, problem: str) -> None:
        """Log a failure once, not on every save (a snapshot every few seconds)."""
        if problem != self._reported:
            self._reported = problem
            _logger.error("tracesieve: %s", problem)

    @staticmethod
    def _forget(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    def _remove_stale_temporaries(self) -> None:
        """Temporary files left by processes that died mid-save."""
        pattern = re.compile(r"\.?" + re.escape(self.path.name) + r"\.(\d+)(\.\w+)?\.tmp")
        try:
            candidates = list(self.path.parent.iterdir())
        except OSError:
            return
        for candidate in candidates:
            match = pattern.fullmatch(candidate.name)
            if match and not _alive(int(match.group(1))):
                self._forget(candidate)

    def restore(self) -> bool:
        """Carry on from the file's count; whether it was applied (False: no
        file, one not trusted, or an earlier period's, each logged)."""
        sampler = self._sampler()
        if sampler is None:
            return False
        present, data = _load(self.path)
        if not present:
            # The first process to count this budget: nothing beyond the
            # calendar's share can have been spent.
            sampler._native.budget_first_start()
            return False
        if data is None:
            return False
        problem = _validate(data, self.snapshot(sampler))
        if problem:
            _logger.warning("tracesieve: ignoring budget state %s: %s", self.path, problem)
            return False
        estimates = data.get("estimates")
        applied = sampler._native.restore_budget(
            float(data["period_start"]),
            int(data["used_spans"]),
            float(data.get("saved_at", 0.0)),
            None if estimates is None else tuple(float(estimates[key]) for key in ESTIMATES),
        )
        if not applied and _shared(sampler):
            _logger.info("tracesieve: budget state %s not applied: the host store already counts this budget", self.path)
        elif not applied:
            _logger.info("tracesieve: budget state %s is for an earlier period; starting afresh", self.path)
        return bool(applied)

    def _run(self, thread: BackgroundThread) -> None:
        while thread.sleep(self.interval):
            if self._sampler() is None:
                return
            self.save()

    def stop(self) -> None:
        """Stop saving, at intervals and at exit (a last ``save()`` is the caller's)."""
        self._thread.stop()
        if _writers.get(self.key) is self:
            del _writers[self.key]


class ForeignFile(Exception):
    """A file of this user's that is plainly not a budget state."""


def _read_trusted(path: Path) -> str:
    """The text of a state file this user owns and nobody else may write (a
    file another user planted could claim the budget is spent)."""
    with open_regular(path, os.O_NOFOLLOW) as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.geteuid():
            raise ValueError(f"it belongs to user {info.st_uid}, not to this user ({os.geteuid()})")
        if info.st_mode & 0o022:
            raise ValueError(f"others may write it (mode {info.st_mode & 0o777:03o}); expected 600")
        if info.st_size > MAX_STATE_BYTES:
            raise ForeignFile(f"{info.st_size:,} bytes, more than a budget state holds")
        try:
            return file.read(MAX_STATE_BYTES + 1).decode("utf-8")
        except UnicodeDecodeError:
            raise ForeignFile("it is not text") from None


def _shared(sampler: Any) -> bool:
    """Whether the sampler's budget is counted in a store its processes share
    (then the state file only seeds it, and every process saves one count)."""
    store = sampler._native.store_info()
    return "budget" in store["shared"] or store["fleet"] is not None


def _process_id(value: Any) -> Optional[int]:
    """``value`` if it can be a process id (data from disk: os.kill refuses
    numbers past Linux's largest, 2**22), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1 << 22 else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _validate(data: Any, current: Dict[str, Any]) -> Optional[str]:
    """Why a state file cannot be trusted, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if data.get("kind") != STATE_KIND or data.get("version") not in (1, STATE_VERSION):
        return f"not a tracesieve budget state (kind {quoted(data.get('kind'))}, version {quoted(data.get('version'))})"
    for key in ("period", "timezone"):
        if data.get(key) != current[key]:
            return f"{key} is {quoted(data.get(key))} but this sampler uses {quoted(current[key])}"
    used = data.get("used_spans")
    budget = data.get("budget_spans")
    start = data.get("period_start")
    if isinstance(used, bool) or not isinstance(used, int) or not 0 <= used <= _U64_MAX:
        return f"used_spans {quoted(used)} is not a count"
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= _U64_MAX:
        return f"budget_spans {quoted(budget)} is not a budget"
    if used > budget:
        return f"used_spans {used} is more than the file's own budget of {budget}"
    if not finite_number(start):
        return f"period_start {quoted(start)} is not a time"
    saved_at = data.get("saved_at", 0.0)
    if not finite_number(saved_at):
        return f"saved_at {quoted(saved_at)} is not a time"
    estimates = data.get("estimates")
    if estimates is not None:
        if not isinstance(estimates, dict) or set(estimates) != set(ESTIMATES):
            return f"estimates {quoted(estimates)} are not pacing estimates"
        for key in ESTIMATES:
            value = estimates[key]
            if not finite_number(value) or value < 0:
                return f"estimates.{key} {quoted(value)} is not a rate"
    return None
