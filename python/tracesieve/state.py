"""Budget state files: spending snapshots written atomically (a temporary
file renamed into place) and restored at start when they are for the current
period. A file that cannot be trusted is reported and ignored."""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Dict, Optional

__all__ = ["StateFile"]

_logger = logging.getLogger("tracesieve.budget")
STATE_KIND = "tracesieve.budget"
STATE_VERSION = 1


class StateFile:
    """Spending snapshots: JSON, written to a temporary file and renamed into place."""

    def __init__(self, path: Path, sampler: Any, interval: float):
        self.path = path
        self._sampler = weakref.ref(sampler)
        self._lock = threading.Lock()
        self.restore()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="tracesieve-budget-state", daemon=True)
        self._thread.start()
        atexit.register(self.save)

    def snapshot(self, sampler: Any) -> Dict[str, Any]:
        raw = sampler._native.budget_status()
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "period": raw["period"],
            "timezone": raw["timezone"],
            "period_start": raw["period_start"],
            "budget_spans": raw["budget_spans"],
            "used_spans": raw["used_spans"],
        }

    def save(self) -> None:
        sampler = self._sampler()
        if sampler is None:
            return
        data = json.dumps(self.snapshot(sampler))
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except OSError as error:
                _logger.error("tracesieve: could not save budget state to %s: %s", self.path, error)

    def restore(self) -> None:
        sampler = self._sampler()
        if sampler is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as error:
            _logger.warning("tracesieve: ignoring unreadable budget state %s: %s", self.path, error)
            return
        problem = _validate(data, self.snapshot(sampler))
        if problem:
            _logger.warning("tracesieve: ignoring budget state %s: %s", self.path, problem)
            return
        if not sampler._native.restore_budget(float(data["period_start"]), int(data["used_spans"])):
            _logger.info("tracesieve: budget state %s is for an earlier period; starting afresh", self.path)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self._sampler() is None:
                return
            self.save()


def _validate(data: Any, current: Dict[str, Any]) -> Optional[str]:
    """Why a state file cannot be trusted, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if data.get("kind") != STATE_KIND or data.get("version") != STATE_VERSION:
        return f"not a tracesieve budget state (kind {data.get('kind')!r}, version {data.get('version')!r})"
    for key in ("period", "timezone"):
        if data.get(key) != current[key]:
            return f"{key} is {data.get(key)!r} but this sampler uses {current[key]!r}"
    used = data.get("used_spans")
    start = data.get("period_start")
    if isinstance(used, bool) or not isinstance(used, int) or used < 0:
        return f"used_spans {used!r} is not a count"
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not math.isfinite(start):
        return f"period_start {start!r} is not a time"
    return None
