//! What a sampler reports: decision counts, and a budget stage's spending.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::NativeSampler;
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
            stats.set_item("budget_refused", pacer.status(0.0).refused)?;
        }
        if let Some(clock) = &self.clock {
            stats.set_item("clock_errors", clock.failures())?;
        }
        py_clock::interrupted()?;
        Ok(stats)
    }

    /// The plan in plain words (what `tracesieve check` prints).
    fn description_lines(&self) -> Vec<String> {
        let plan = self.core.plan();
        let settings = crate::pipeline::Settings {
            respect_parent: plan.respect_parent,
            precision: plan.precision,
            record_rule: plan.record_rule,
            defer: self.defer,
            ..Default::default()
        };
        crate::describe::describe(plan, &settings, &plan.stage_names())
    }

    /// Spending so far: budget, used, remaining, refused spans, pacing
    /// probability, period bounds, recent rates and the projected end-of-period total.
    fn budget_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Some(pacer) = self.core.plan().pacer() else {
            return Err(PyTypeError::new_err("budget_status() needs a BudgetSampler"));
        };
        let status = pacer.status(self.now());
        py_clock::interrupted()?;
        let out = PyDict::new(py);
        out.set_item("budget_spans", status.budget)?;
        out.set_item("used_spans", status.used)?;
        out.set_item("remaining_spans", status.budget.saturating_sub(status.used))?;
        out.set_item("refused_spans", status.refused)?;
        out.set_item("pacing_probability", status.pace)?;
        out.set_item("period_start", status.period.start)?;
        out.set_item("period_end", status.period.end)?;
        out.set_item("spend_rate", status.spend_rate)?;
        out.set_item("demand_rate", status.demand_rate)?;
        out.set_item("projected_spans", status.projected)?;
        out.set_item("period", pacer.calendar().kind.name())?;
        out.set_item("timezone", &pacer.calendar().zone_name)?;
        Ok(out)
    }

    /// Add spending saved by an earlier process; applied only when `period_start`
    /// is the start of the current period. Returns whether it was applied.
    fn restore_budget(&self, period_start: f64, used: u64) -> PyResult<bool> {
        let Some(pacer) = self.core.plan().pacer() else {
            return Err(PyTypeError::new_err("restore_budget() needs a BudgetSampler"));
        };
        let now = self.now();
        py_clock::interrupted()?;
        Ok(pacer.restore(period_start, used, now))
    }
}
