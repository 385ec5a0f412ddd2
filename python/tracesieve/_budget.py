"""Budget pacing: spend a span budget evenly over a calendar period, never
overshoot, never go blind. The pacing runs natively; this module wires it up,
converts money to spans, and keeps spending across restarts (``state_path``)."""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import tempfile
import threading
import weakref
from datetime import datetime, timezone as _utc_zone
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from tracesieve import _core
from tracesieve._samplers import ProbabilitySampler, _check_flag, _NativeSampler

__all__ = ["BudgetSampler"]

_logger = logging.getLogger("tracesieve.budget")
STATE_KIND = "tracesieve.budget"
STATE_VERSION = 1


class BudgetSampler(_NativeSampler):
    """Caps an inner decision so that spending follows a budget across a
    calendar period (hour, day, week or month in a named time zone).

    The pacer estimates demand as it goes and sets the probability to
    allowance / demand, where allowance is the remaining budget over the
    remaining time: kept spans flow evenly through the period, quiet hours keep
    a larger share, and a traffic spike cannot exhaust the budget. Every span the
    sampler keeps, children of kept traces included, reserves one unit of budget
    atomically, so the total never exceeds it, whatever the threads. Kept spans
    carry the effective probability (inner x pacing) in ``th``.

    Args:
        inner: a rate, or a ``ProbabilitySampler``, ``RuleSampler`` or
            ``AdaptiveSampler`` whose decision is capped.
        budget: the budget, in money when ``cost_per_span`` is given (the seed's
            ``monthly_budget=50.0, cost_per_span=0.001`` is ``budget=50.0,
            cost_per_span=0.001``: 50,000 spans), else in spans.
        cost_per_span: price of one kept span (default 1.0: budget in spans).
        period: "hour", "day", "week" (Monday to Monday) or "month".
        timezone: IANA name of the zone whose calendar bounds the period.
        clock: callable returning Unix seconds (tests, simulations); defaults to
            the inner sampler's clock, else the system clock.
        state_path: a JSON file where spending is saved (atomically, every
            ``save_interval`` seconds and at exit) and restored on start within
            the same period. A corrupt or foreign file is reported and ignored.
        cap_forced_keeps: also refuse keep-rule spans once the budget is spent
            (by default business events are kept regardless and counted).
        respect_parent: used when ``inner`` is a rate.
    """

    def __init__(
        self,
        inner: Union[float, _NativeSampler] = 1.0,
        *,
        budget: float,
        cost_per_span: float = 1.0,
        period: str = "month",
        timezone: str = "UTC",
        clock: Optional[Callable[[], float]] = None,
        state_path: Optional[Union[str, os.PathLike]] = None,
        save_interval: float = 10.0,
        cap_forced_keeps: bool = False,
        respect_parent: bool = True,
        defer: bool = False,
    ):
        if isinstance(inner, _NativeSampler):
            if isinstance(inner, BudgetSampler):
                raise TypeError("inner: already a BudgetSampler; give its inner sampler instead")
            inner_sampler = inner
        elif isinstance(inner, (int, float)) and not isinstance(inner, bool):
            inner_sampler = ProbabilitySampler(inner, respect_parent=_check_flag("respect_parent", respect_parent))
        else:
            raise TypeError(
                "inner: expected a rate in [0, 1] or a tracesieve ProbabilitySampler/RuleSampler/AdaptiveSampler, "
                f"got {type(inner).__name__} {inner!r}"
            )
        self.cost_per_span = _positive("cost_per_span", cost_per_span)
        self.budget = _positive("budget", budget)
        spans = math.floor(self.budget / self.cost_per_span + 1e-9)
        if spans < 1:
            raise ValueError(
                f"budget: {budget!r} at cost_per_span {cost_per_span!r} buys {spans} spans; expected enough for at least one span"
            )
        if not isinstance(period, str):
            raise TypeError(f"period: expected one of hour, day, week, month, got {type(period).__name__} {period!r}")
        if not isinstance(timezone, str):
            raise TypeError(f"timezone: expected an IANA zone name such as 'UTC', got {type(timezone).__name__} {timezone!r}")
        self.inner = inner_sampler
        self._clock = clock if clock is not None else getattr(inner_sampler, "_clock", None)
        self._bind(
            _core.NativeSampler.budget(
                inner_sampler._native,
                spans,
                period=period,
                timezone=timezone,
                cap_forced_keeps=_check_flag("cap_forced_keeps", cap_forced_keeps),
                clock=self._clock,
                class_name=type(self).__name__,
            ),
            defer,
        )
        self._state = None
        if state_path is not None:
            self._state = _StateFile(Path(state_path), self, _positive("save_interval", save_interval))

    def budget_status(self) -> Dict[str, Any]:
        """Budget, used, remaining (in money and spans), percent used, the pacing
        probability in force, and the projected end-of-period spend."""
        return status_report(self._native.budget_status(), self.budget, self.cost_per_span)

    def save_state(self) -> None:
        """Write the spending snapshot now (when ``state_path`` was given)."""
        if self._state is not None:
            self._state.save()


def status_report(raw: Dict[str, Any], budget: float, cost: float) -> Dict[str, Any]:
    """The native pacer's status in the units the user gave (money and spans)."""
    used = raw["used_spans"]
    return {
        "budget": budget,
        "used": used * cost,
        "remaining": max(0.0, budget - used * cost),
        "percent_used": 100.0 * used / raw["budget_spans"],
        "pacing_probability": raw["pacing_probability"],
        "projected_spend": min(raw["projected_spans"], float(raw["budget_spans"])) * cost,
        "projected_spend_unpaced": raw["projected_spans"] * cost,
        "budget_spans": raw["budget_spans"],
        "used_spans": used,
        "remaining_spans": raw["remaining_spans"],
        "refused_spans": raw["refused_spans"],
        "period": raw["period"],
        "timezone": raw["timezone"],
        "period_start": _iso(raw["period_start"]),
        "period_end": _iso(raw["period_end"]),
        "cost_per_span": cost,
    }


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a positive number, got {type(value).__name__} {value!r}")
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ValueError(f"{name}: {value!r} is not a positive number")
    return float(value)


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, _utc_zone.utc).isoformat()


class _StateFile:
    """Spending snapshots: JSON, written to a temporary file and renamed into place."""

    def __init__(self, path: Path, sampler: BudgetSampler, interval: float):
        self.path = path
        self._sampler = weakref.ref(sampler)
        self._lock = threading.Lock()
        self.restore()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="tracesieve-budget-state", daemon=True)
        self._thread.start()
        atexit.register(self.save)

    def snapshot(self, sampler: BudgetSampler) -> Dict[str, Any]:
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
