"""Budget pacing: spend a span budget evenly over a calendar period, never
overshoot, never go blind. The pacing runs natively; this module wires it up,
reports spending in the units the user gave, and keeps spending across
restarts (``state_path``, see ``tracesieve.state``)."""

from __future__ import annotations

import os
from datetime import datetime
from datetime import timezone as _utc_zone
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from opentelemetry.sdk.trace.sampling import Sampler

from tracesieve import _core, record
from tracesieve._checks import check_meter_provider, check_path, check_seconds, shown
from tracesieve.samplers import _NativeSampler, inner_sampler
from tracesieve.state import StateFile

__all__ = ["BudgetSampler"]


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
            With a file ``store`` the count persists in the store itself; a
            state file then only seeds a store piece made afresh.
        store: where the pacing state lives. By default (None) the host
            record: a file in the user's state directory (``TRACESIEVE_STATE_DIR``,
            else ``~/.local/state/tracesieve``), one per service, shared by
            every process of the service on the host and kept across restarts
            (with a ``state_path`` or a ``clock``, this process's memory
            instead). ``"memory"``: this process only. ``"host"``: the host
            record, even with a clock. A file URL such as
            ``"file:///run/myapp/sampling.tracesieve"`` that every process of
            the host naming it maps and shares (add ``#name`` to keep several
            budgets in one file; every process must give the same budget,
            period, time zone, ``cap_forced_keeps`` and ``downstream``).
            ``"redis://host:6379/0#fleet"`` shares it across hosts and services
            through Redis (see the Fleets on Redis page).
        name: the service the budget is for, which its host record is filed
            under (default: the service a Jaeger or X-Ray ``inner`` sampler
            fetches its strategy for, else ``OTEL_SERVICE_NAME``, else
            ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, else the
            program's name with a digest of its command line and working
            directory).
        cap_forced_keeps: also refuse keep-rule spans once the budget is spent
            (by default business events are kept regardless and counted).
        respect_parent: used when ``inner`` is a rate.
        trust_incoming: False ignores what remote parents send (see
            ``ProbabilitySampler``); by default, as ``inner`` does. Whatever
            callers send, a budget never spends beyond its line and burst.
        meter_provider: where its counts and spending are reported as OpenTelemetry
            metrics (default: the global ``MeterProvider``, also one set later).
    """

    def __init__(
        self,
        inner: Union[float, Sampler] = 1.0,
        *,
        budget: float,
        cost_per_span: float = 1.0,
        period: str = "month",
        timezone: str = "UTC",
        clock: Optional[Callable[[], float]] = None,
        state_path: Optional[Union[str, os.PathLike]] = None,
        save_interval: float = 10.0,
        cap_forced_keeps: bool = False,
        downstream: str = "pace",
        respect_parent: bool = True,
        defer: bool = False,
        store: Optional[str] = None,
        trust_incoming: Optional[bool] = None,
        name: Optional[str] = None,
        meter_provider: Any = None,
    ):
        check_meter_provider(meter_provider)
        wrapped = inner_sampler("inner", inner, respect_parent, "ProbabilitySampler/RuleSampler/AdaptiveSampler")
        self.inner = wrapped
        self._clock = clock if clock is not None else getattr(wrapped, "_clock", None)
        if name is not None and (not isinstance(name, str) or not name):
            raise _core.ConfigError(f"name: expected a non-empty string (the service the budget is for), got {shown(name)}")
        if name is None:
            name = record.sampler_service(wrapped)
        self.name = record.service_name(name)
        store = record.budget_store(store, name, state_file=state_path is not None, clock=self._clock is not None)
        self._bind(
            _core.NativeSampler.budget(
                wrapped._native,
                budget,
                cost_per_span=cost_per_span,
                period=period,
                timezone=timezone,
                cap_forced_keeps=cap_forced_keeps,
                downstream=downstream,
                clock=self._clock,
                store=store,
                class_name=type(self).__name__,
            ),
            defer,
            trust_incoming,
        )
        self.budget = float(budget)
        self.cost_per_span = 1.0 if cost_per_span is None else float(cost_per_span)
        self._state: Optional[StateFile] = None
        if state_path is not None:
            self._state = StateFile(
                Path(check_path("state_path", state_path)), self, check_seconds("save_interval", save_interval, minimum=0.1)
            )
        record.say_counted_afresh(self._native)
        self._observe(meter_provider)

    def budget_status(self) -> Dict[str, Any]:
        """Budget, used, remaining (in money and spans), percent used, the pacing
        probability in force, and the projected end-of-period spend."""
        return status_report(self._native.budget_status(), self.budget, self.cost_per_span)

    def save_state(self) -> None:
        """Write the spending snapshot now (when ``state_path`` was given)."""
        if self._state is not None:
            self._state.save()

    def close(self) -> None:
        """Save the spending snapshot a last time and stop saving it (when
        ``state_path`` was given); the sampler still decides."""
        if self._state is not None:
            self._state.save()
            self._state.stop()


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
        "assumed_spans": raw["assumed_spans"],
        "remaining_spans": raw["remaining_spans"],
        "refused_spans": raw["refused_spans"],
        "allowed_spans": raw["allowed_spans"],
        "burst_spans": raw["burst_spans"],
        "floor_spans": raw["floor_spans"],
        "zero_probability_spans": raw["zero_probability_spans"],
        "trickle_spans": raw["trickle_spans"],
        "keep_rule_spans": raw["keep_rule_spans"],
        "keep_rules_capped": raw["keep_rules_capped"],
        "start_allowance": raw["start_allowance"],
        "tail": raw["tail"],
        "over_budget_spans": raw["over_budget_spans"],
        "downstream": raw["downstream"],
        "period": raw["period"],
        "timezone": raw["timezone"],
        "period_start": _iso(raw["period_start"]),
        "period_end": _iso(raw["period_end"]),
        "cost_per_span": cost,
    }


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, _utc_zone.utc).isoformat()
