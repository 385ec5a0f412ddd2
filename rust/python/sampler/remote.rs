//! A sampler whose strategy comes from a Jaeger strategy source: built with
//! its initial rate, handed each fetched document (the Python poller fetches),
//! and asked what is in force.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::constructors::{parent_note, precision_of};
use super::NativeSampler;
use crate::clock::{Clock, SystemClock};
use crate::data::Path as DataPath;
use crate::plan::{Plan, Stage};
use crate::python::args;
use crate::python::convert::to_data;
use crate::python::errors::config_error;
use crate::remote::{Compiled, RemoteStrategy, DEFAULT_MAX_OPERATIONS};
use crate::threshold::DEFAULT_PRECISION;

#[pymethods]
impl NativeSampler {
    /// The strategy of `service_name` from a Jaeger strategy source, probabilistic
    /// `initial_rate` until the first document arrives (`remote_update`).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (service_name, *, initial_rate = None, max_operations = None, respect_parent = None, precision = None, clock = None, class_name = "JaegerRemoteSampler"))]
    fn jaeger_remote(
        py: Python<'_>,
        service_name: &Bound<'_, PyAny>,
        initial_rate: Option<&Bound<'_, PyAny>>,
        max_operations: Option<&Bound<'_, PyAny>>,
        respect_parent: Option<&Bound<'_, PyAny>>,
        precision: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let service_name = args::text("service_name", service_name, "the service name as a string")?;
        let initial_rate = args::optional(initial_rate, |v| args::probability("initial_rate", v))?.unwrap_or(0.001);
        let max_operations =
            args::optional(max_operations, |v| args::count("max_operations", v, 1))?.unwrap_or(DEFAULT_MAX_OPERATIONS as u64);
        let respect_parent = args::optional(respect_parent, |v| args::flag("respect_parent", v))?.unwrap_or(true);
        let precision = args::optional(precision, precision_of)?.unwrap_or(DEFAULT_PRECISION);
        let remote = RemoteStrategy::new(&service_name, initial_rate, usize::try_from(max_operations).unwrap_or(usize::MAX), precision)
            .map_err(config_error)?;
        let mut plan = Plan::new(respect_parent, vec![Stage::Remote(Arc::new(remote))]);
        plan.precision = precision;
        let description = format!("{class_name}{{{service_name}{}}}", parent_note(respect_parent));
        let clock = crate::python::py_clock::from_argument(clock)?;
        NativeSampler::build(py, plan, clock, description, initial_rate)
    }

    /// Put a fetched strategy document (parsed JSON) in force (in a composite,
    /// in its `pipeline`-th pipeline node). Raises ConfigError for a bad
    /// document (counted; the strategy in force stays). Returns whether the
    /// strategy changed.
    #[pyo3(signature = (document, pipeline = None))]
    fn remote_update(&self, document: &Bound<'_, PyAny>, pipeline: Option<usize>) -> PyResult<bool> {
        let remote = self.remote(pipeline)?;
        let data = match to_data(document, &DataPath::root("(document)")) {
            Ok(data) => data,
            Err(error) => {
                remote.rejected.fetch_add(1, Relaxed);
                return Err(error);
            }
        };
        let now = match &self.clock {
            Some(clock) => clock.monotonic(),
            None => SystemClock.monotonic(),
        };
        remote.update(&data, now).map_err(config_error)
    }

    /// The strategy in force (in a composite, its `pipeline`-th pipeline
    /// node's): its kind and figures, documents applied and refused, and
    /// decisions per operation.
    #[pyo3(signature = (pipeline = None))]
    fn remote_status<'py>(&self, py: Python<'py>, pipeline: Option<usize>) -> PyResult<Bound<'py, PyDict>> {
        let remote = self.remote(pipeline)?;
        let out = PyDict::new(py);
        out.set_item("service_name", &remote.service_name)?;
        out.set_item("strategy", remote.describe())?;
        out.set_item("updates", remote.updates.load(Relaxed))?;
        out.set_item("rejected", remote.rejected.load(Relaxed))?;
        out.set_item("notes", remote.notes())?;
        let compiled = remote.current();
        let operations = PyDict::new(py);
        let rule_entry = |rule: &crate::remote::OperationRule| -> PyResult<Bound<'py, PyDict>> {
            let entry = PyDict::new(py);
            entry.set_item("probability", rule.probability)?;
            entry.set_item("decisions", rule.decisions.load(Relaxed))?;
            entry.set_item("lower_bound_keeps", rule.lower_bound_keeps.load(Relaxed))?;
            Ok(entry)
        };
        match &**compiled {
            Compiled::Probabilistic(rule) => {
                out.set_item("type", "probabilistic")?;
                out.set_item("probability", rule.probability)?;
                out.set_item("decisions", rule.decisions.load(Relaxed))?;
            }
            Compiled::RateLimiting { rate, decisions, .. } => {
                out.set_item("type", "rate_limiting")?;
                out.set_item("max_traces_per_second", *rate)?;
                out.set_item("decisions", decisions.load(Relaxed))?;
            }
            Compiled::PerOperation { default, operations: rules, capped, .. } => {
                out.set_item("type", "per_operation")?;
                out.set_item("default", rule_entry(default)?)?;
                for rule in rules {
                    operations.set_item(rule.name.as_deref().unwrap_or(""), rule_entry(rule)?)?;
                }
                out.set_item("operations_over_cap", *capped)?;
            }
        }
        out.set_item("operations", operations)?;
        Ok(out)
    }
}

impl NativeSampler {
    fn remote(&self, pipeline: Option<usize>) -> PyResult<&Arc<RemoteStrategy>> {
        let plan = match (pipeline, self.core.plan().composite()) {
            (None, _) => self.core.plan(),
            (Some(index), Some(tree)) => {
                &*tree.pipelines.get(index).ok_or_else(|| PyTypeError::new_err(format!("no pipeline node {index}")))?.plan
            }
            (Some(_), None) => return Err(PyTypeError::new_err("pipeline= needs a composite sampler")),
        };
        plan.remote().ok_or_else(|| PyTypeError::new_err("needs a sampler with a remote strategy stage"))
    }
}
