//! The fleet worker's calls on a sampler (see `python::fleet`).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::NativeSampler;
use crate::clock::Moment;
use crate::python::fleet;

#[pymethods]
impl NativeSampler {
    /// `(connect_url, interval)` of the fleet its stages share, or None.
    fn fleet_connection(&self) -> Option<(String, f64)> {
        fleet::connection(fleet::plan_fleet(self.core.plan()))
    }

    /// `(script, keys, args)`: the call that reads the budget's count in the
    /// fleet, writing nothing (for `tracesieve check`), or None.
    fn fleet_budget_read(&self) -> Option<(&'static str, Vec<String>, Vec<String>)> {
        let request = self.core.plan().pacer()?.fleet_read_request()?;
        Some((request.script, request.keys, request.args))
    }

    /// `[(kind, script, keys, args)]`: the steps to send the fleet now.
    fn fleet_requests<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let plan = self.core.plan();
        fleet::requests(py, &fleet::plan_members(plan), &Moment::new(self.core.clock()))
    }

    /// Hand a step's reply to its stage (None: it failed for `reason`);
    /// returns why a reply was refused, if it was.
    #[pyo3(signature = (kind, reply, reason = ""))]
    fn fleet_reply(&self, kind: &str, reply: Option<Vec<String>>, reason: &str) -> Option<String> {
        let plan = self.core.plan();
        fleet::reply(&fleet::plan_members(plan), kind, reply, reason, &Moment::new(self.core.clock()))
    }

    /// In a forked child: each fleet stage becomes a new member holding nothing.
    fn fleet_after_fork(&self) {
        fleet::after_fork(&fleet::plan_members(self.core.plan()));
    }

    /// `{kind: {syncs, failures, degraded, ...}}`, or None outside a fleet.
    fn fleet_status<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let plan = self.core.plan();
        fleet::status(py, &fleet::plan_members(plan), &Moment::new(self.core.clock()))
    }
}
