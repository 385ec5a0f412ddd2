//! What a sampler reports: decision counts, and a budget stage's spending.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::NativeSampler;
use crate::budget::pacer::{Estimates, Snapshot};
use crate::clock::Moment;
use crate::plan::Path;
use crate::python::py_clock;
use pyo3::exceptions::PyTypeError;

#[pymethods]
impl NativeSampler {
    /// Exact decision counts: decisions, sampled, dropped, per path, input errors,
    /// and for rule samplers per rule.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snapshot = self.core.snapshot();
        let stats = PyDict::new(py);
        stats.set_item("decisions", snapshot.decisions)?;
        stats.set_item("sampled", snapshot.sampled)?;
        stats.set_item("dropped", snapshot.dropped)?;
        for path in Path::ALL {
            stats.set_item(path.name(), snapshot.by_path[path as usize])?;
        }
        stats.set_item("input_errors", snapshot.input_errors)?;
        stats.set_item("incoming_ignored", snapshot.incoming_ignored)?;
        if self.defer {
            stats.set_item("deferred", snapshot.deferred)?;
        }
        let plan = self.core.plan();
        if plan.rule_slots() > 0 {
            let by_rule = PyDict::new(py);
            for (index, (decisions, sampled)) in snapshot.by_rule.iter().enumerate() {
                let entry = PyDict::new(py);
                entry.set_item("decisions", decisions)?;
                entry.set_item("sampled", sampled)?;
                by_rule.set_item(plan.rule_name(index), entry)?;
            }
            stats.set_item("rules", by_rule)?;
        }
        if let Some(bucket) = plan.rate_limit() {
            stats.set_item("rate_limited", bucket.refused())?;
        }
        if let Some(booster) = plan.booster() {
            let now = booster.signals.now();
            stats.set_item("boost", booster.multiplier(None, now))?;
            let counts = booster.signals.counts();
            let window = PyDict::new(py);
            window.set_item("spans", counts.spans)?;
            window.set_item("errors", counts.errors)?;
            window.set_item("slow", counts.slow)?;
            stats.set_item("window", window)?;
        }
        if let Some(pacer) = plan.pacer() {
            stats.set_item("budget_refused", pacer.refused())?;
        }
        if let Some(clock) = &self.clock {
            stats.set_item("clock_errors", clock.failures())?;
        }
        if !self.store_pieces().is_empty() {
            stats.set_item("store", self.store_info(py)?)?;
        }
        py_clock::interrupted()?;
        Ok(stats)
    }

    /// Where the stateful stages keep their state: the store's URL (None:
    /// this process), which stages share it and which are per process (with
    /// a file store, only when the file was unusable: `fallbacks`, `problem`).
    fn store_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = crate::python::store::info(py, &self.store_pieces())?;
        let plan = self.core.plan();
        let members = crate::python::fleet::plan_members(plan);
        info.set_item("fleet", crate::python::fleet::status(py, &members, &Moment::new(self.core.clock()))?)?;
        Ok(info)
    }

    /// The other budgets the service's host record held when this process
    /// began this budget's count there (none when it found the count, or a
    /// reload or state file carried one over), as `BudgetSampler` settings.
    fn budget_begun_beside<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let beside = self.core.plan().pacer().map(|pacer| pacer.begun_beside()).unwrap_or_default();
        beside.iter().map(|settings| crate::python::store::settings_dict(py, settings)).collect()
    }

    /// Changes under its store file since the last call (shortened, replaced
    /// or removed while in use), each reported once, for the store watcher.
    fn store_check(&self, py: Python<'_>) -> Vec<String> {
        let pieces = self.store_pieces();
        py.detach(|| crate::python::store::check(&pieces))
    }

    /// The plan in plain words (what `tracesieve check` prints).
    fn description_lines(&self) -> Vec<String> {
        let plan = self.core.plan();
        let settings = crate::pipeline::Settings {
            respect_parent: plan.respect_parent,
            trust_incoming: plan.trust_incoming,
            precision: plan.precision,
            record_rule: plan.record_rule,
            defer: self.defer,
            ..Default::default()
        };
        crate::describe::describe(plan, &settings, &plan.stage_names())
    }

    /// Spending so far: budget, used (assumed spans included), remaining,
    /// refused spans, pacing probability, period bounds, recent rates, what
    /// the spend line allows now and the burst above it, and the projected
    /// end-of-period total.
    fn budget_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pacer = self.pacer()?;
        let status = pacer.status(&Moment::new(self.core.clock()));
        py_clock::interrupted()?;
        let out = PyDict::new(py);
        out.set_item("budget_spans", status.budget)?;
        out.set_item("used_spans", status.used)?;
        out.set_item("assumed_spans", status.assumed)?;
        out.set_item("remaining_spans", status.budget.saturating_sub(status.used))?;
        out.set_item("refused_spans", status.refused)?;
        out.set_item("pacing_probability", status.pace)?;
        out.set_item("period_start", status.period.start)?;
        out.set_item("period_end", status.period.end)?;
        out.set_item("spend_rate", status.spend_rate)?;
        out.set_item("demand_rate", status.demand_rate)?;
        out.set_item("projected_spans", status.projected)?;
        out.set_item("allowed_spans", status.allowed)?;
        out.set_item("burst_spans", status.burst)?;
        out.set_item("floor_spans", status.floor)?;
        out.set_item("zero_probability_spans", status.at_zero)?;
        out.set_item("trickle_spans", status.trickled)?;
        out.set_item("keep_rule_spans", status.forced)?;
        out.set_item("keep_rules_capped", status.caps_forced)?;
        out.set_item("start_allowance", status.start_allowance)?;
        let classes = crate::budget::pacer::TailClass::ALL;
        let tail = PyDict::new(py);
        for class in classes {
            let counts = PyDict::new(py);
            counts.set_item("kept_spans", status.tail_kept[class as usize])?;
            counts.set_item("refused_spans", status.tail_refused[class as usize])?;
            tail.set_item(class.name(), counts)?;
        }
        out.set_item("tail", tail)?;
        out.set_item("over_budget_spans", status.used.saturating_sub(status.budget))?;
        out.set_item("period", pacer.calendar().kind.name())?;
        out.set_item("timezone", &pacer.calendar().zone_name)?;
        out.set_item("downstream", pacer.downstream().name())?;
        Ok(out)
    }

    /// What a state file keeps: the period, the count against it, and the
    /// pacing estimates (None before the first estimate).
    fn budget_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pacer = self.pacer()?;
        let snapshot = pacer.snapshot(&Moment::new(self.core.clock()));
        py_clock::interrupted()?;
        let out = PyDict::new(py);
        out.set_item("period_start", snapshot.period_start)?;
        out.set_item("used_spans", snapshot.used)?;
        out.set_item("saved_at", snapshot.saved_at)?;
        match snapshot.estimates {
            Some(e) => {
                let estimates = PyDict::new(py);
                estimates.set_item("pace", e.pace)?;
                estimates.set_item("demand_rate", e.demand_rate)?;
                estimates.set_item("spans_per_entry", e.spans_per_entry)?;
                estimates.set_item("forced_rate", e.forced_rate)?;
                out.set_item("estimates", estimates)?;
            }
            None => out.set_item("estimates", py.None())?,
        }
        Ok(out)
    }

    /// Carry on from an earlier process's snapshot (validated by the caller);
    /// applied only when it is for the current period. Returns whether it was.
    #[pyo3(signature = (period_start, used_spans, saved_at, estimates = None))]
    fn restore_budget(&self, period_start: f64, used_spans: u64, saved_at: f64, estimates: Option<(f64, f64, f64, f64)>) -> PyResult<bool> {
        let pacer = self.pacer()?;
        let snapshot = Snapshot {
            period_start,
            used: used_spans,
            saved_at,
            estimates: estimates.map(|(pace, demand_rate, spans_per_entry, forced_rate)| Estimates {
                pace,
                demand_rate,
                spans_per_entry,
                forced_rate,
            }),
        };
        let applied = pacer.restore(&snapshot, &Moment::new(self.core.clock()));
        py_clock::interrupted()?;
        Ok(applied)
    }

    /// Start counting as the budget's first process (its state file does not
    /// exist yet): only the calendar's share is assumed spent.
    fn budget_first_start(&self) -> PyResult<()> {
        self.pacer()?.first_start(&Moment::new(self.core.clock()));
        py_clock::interrupted()?;
        Ok(())
    }
}

impl NativeSampler {
    fn pacer(&self) -> PyResult<&crate::budget::pacer::Pacer> {
        self.core.plan().pacer().ok_or_else(|| PyTypeError::new_err("needs a sampler with a budget stage"))
    }
}

impl NativeSampler {
    /// The plan's stateful stages and where each keeps its state.
    fn store_pieces(&self) -> crate::python::store::Pieces<'_> {
        let plan = self.core.plan();
        let mut pieces: crate::python::store::Pieces<'_> = Vec::new();
        if let Some(pacer) = plan.pacer() {
            pieces.push(("budget", pacer.store(), pacer.is_shared()));
        }
        if let Some(bucket) = plan.rate_limit() {
            pieces.push(("rate_limit", bucket.store(), bucket.is_shared()));
        }
        if let Some(booster) = plan.booster() {
            pieces.push(("signals", booster.signals.store(), booster.signals.is_shared()));
        }
        pieces
    }
}
