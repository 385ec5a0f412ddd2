//! A sampler deciding by AWS X-Ray's sampling rules: built with what the
//! resource says about the service, handed each fetched rules answer and
//! targets answer (the Python poller fetches and reports), asked for the
//! statistics to report and for what is in force.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::constructors::{parent_note, precision_of};
use super::NativeSampler;
use crate::clock::{Clock, Moment, SystemClock};
use crate::data::{Data, Path as DataPath};
use crate::plan::{Plan, Stage};
use crate::python::args;
use crate::python::convert::to_data;
use crate::python::errors::config_error;
use crate::python::otel_api::OtelApi;
use crate::python::py_clock;
use crate::python::span_view::PySpanView;
use crate::threshold::DEFAULT_PRECISION;
use crate::xray::{ResourceFacts, Statistics, XRay};

/// A text setting that may be absent (None).
fn optional_text(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    args::optional(value.filter(|v| !v.is_none()), |v| args::text(name, v, "a string"))
}

#[pymethods]
impl NativeSampler {
    /// The X-Ray rules for the service the resource describes; the fallback
    /// (1 trace/s, then 5%) until the first rules arrive (`xray_update_rules`).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (service_name, *, cloud_platform = None, ecs_container_arn = None, resource_id = None, respect_parent = None, precision = None, clock = None, class_name = "XRayRemoteSampler"))]
    fn xray_remote(
        py: Python<'_>,
        service_name: &Bound<'_, PyAny>,
        cloud_platform: Option<&Bound<'_, PyAny>>,
        ecs_container_arn: Option<&Bound<'_, PyAny>>,
        resource_id: Option<&Bound<'_, PyAny>>,
        respect_parent: Option<&Bound<'_, PyAny>>,
        precision: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let facts = ResourceFacts {
            service_name: args::text("service_name", service_name, "the service name as a string")?,
            cloud_platform: optional_text("cloud_platform", cloud_platform)?,
            ecs_container_arn: optional_text("ecs_container_arn", ecs_container_arn)?,
            resource_id: optional_text("resource_id", resource_id)?,
        };
        let respect_parent = args::optional(respect_parent, |v| args::flag("respect_parent", v))?.unwrap_or(true);
        let precision = args::optional(precision, precision_of)?.unwrap_or(DEFAULT_PRECISION);
        let clock = crate::python::py_clock::from_argument(clock)?;
        let now = clock.as_ref().map_or_else(|| SystemClock.monotonic(), |c| c.monotonic());
        let description = format!("{class_name}{{{}{}}}", facts.service_name, parent_note(respect_parent));
        let mut plan = Plan::new(respect_parent, vec![Stage::XRay(Arc::new(XRay::new(facts, precision, now)))]);
        plan.precision = precision;
        NativeSampler::build(py, plan, clock, description, crate::xray::FALLBACK_RATE)
    }

    /// Put the rules of a `GetSamplingRules` answer in force: `pages`, each
    /// page as parsed JSON. Raises ConfigError for a bad answer (counted; the
    /// rules in force stay). Returns whether the rules changed.
    #[pyo3(signature = (pages, pipeline = None))]
    fn xray_update_rules(&self, pages: &Bound<'_, PyAny>, pipeline: Option<usize>) -> PyResult<bool> {
        let xray = self.xray(pipeline)?;
        let data = self.xray_document(xray, pages)?;
        let Data::List(pages) = data else {
            xray.rejected.fetch_add(1, Relaxed);
            return Err(config_error(DataPath::root("pages").error("expected a list of GetSamplingRules answers")));
        };
        let (wall, now) = self.xray_now();
        xray.update_rules(&pages, wall, now).map_err(config_error)
    }

    /// Apply a `SamplingTargets` answer: `{"applied", "refresh_rules",
    /// "interval", "unprocessed"}`. Raises ConfigError for a bad answer (counted).
    #[pyo3(signature = (document, pipeline = None))]
    fn xray_apply_targets<'py>(
        &self,
        py: Python<'py>,
        document: &Bound<'py, PyAny>,
        pipeline: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let xray = self.xray(pipeline)?;
        let data = self.xray_document(xray, document)?;
        let (wall, now) = self.xray_now();
        let applied = xray.apply_targets(&data, wall, now).map_err(config_error)?;
        let out = PyDict::new(py);
        out.set_item("applied", applied.applied)?;
        out.set_item("refresh_rules", applied.refresh_rules)?;
        out.set_item("interval", applied.interval)?;
        out.set_item("unprocessed", applied.unprocessed)?;
        Ok(out)
    }

    /// Each rule's counts since the last report, reset: `[(rule, requests, sampled, borrowed)]`.
    #[pyo3(signature = (pipeline = None))]
    fn xray_take_statistics(&self, pipeline: Option<usize>) -> PyResult<Vec<(String, u64, u64, u64)>> {
        let taken = self.xray(pipeline)?.take_statistics();
        Ok(taken.into_iter().map(|s| (s.rule_name, s.requests, s.sampled, s.borrowed)).collect())
    }

    /// Give back counts a report could not deliver.
    #[pyo3(signature = (statistics, pipeline = None))]
    fn xray_restore_statistics(&self, statistics: Vec<(String, u64, u64, u64)>, pipeline: Option<usize>) -> PyResult<()> {
        let statistics: Vec<Statistics> = statistics
            .into_iter()
            .map(|(rule_name, requests, sampled, borrowed)| Statistics { rule_name, requests, sampled, borrowed })
            .collect();
        self.xray(pipeline)?.restore_statistics(&statistics);
        Ok(())
    }

    /// The rule a span with these attributes would be decided by (None: the fallback).
    #[pyo3(signature = (attributes = None, name = None, pipeline = None))]
    fn xray_rule_for<'py>(
        &self,
        py: Python<'py>,
        attributes: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyAny>>,
        pipeline: Option<usize>,
    ) -> PyResult<Option<String>> {
        let xray = self.xray(pipeline)?;
        let api = OtelApi::get(py)?;
        let empty = pyo3::types::PyString::new(py, "");
        let name = name.unwrap_or(empty.as_any());
        let span = PySpanView::new(api, name, None, attributes, true, &self.keys);
        let clock = self.clock.clone().map_or_else(|| Arc::new(SystemClock) as Arc<dyn Clock>, |c| c as Arc<dyn Clock>);
        let table = xray.table();
        let choice = xray.choose(&table, &span, &Moment::new(&*clock), self.xray_plan(pipeline)?.xray_keys_at());
        py_clock::interrupted()?;
        Ok(choice.map(|i| table.rules[i].spec.name.clone()))
    }

    /// What is in force: the rules (each with its target and counts), the
    /// fallback's decisions, answers applied and refused.
    #[pyo3(signature = (pipeline = None))]
    fn xray_status<'py>(&self, py: Python<'py>, pipeline: Option<usize>) -> PyResult<Bound<'py, PyDict>> {
        let xray = self.xray(pipeline)?;
        let (wall, now) = self.xray_now();
        let out = PyDict::new(py);
        out.set_item("service_name", &xray.resource.service_name)?;
        out.set_item("in_force", xray.describe(Some(now)))?;
        out.set_item("rule_updates", xray.rule_updates.load(Relaxed))?;
        out.set_item("target_updates", xray.target_updates.load(Relaxed))?;
        out.set_item("rejected", xray.rejected.load(Relaxed))?;
        out.set_item("fallback_decisions", xray.fallback_decisions.load(Relaxed))?;
        out.set_item("notes", xray.notes())?;
        let rules = PyList::empty(py);
        let table = xray.table();
        for (rule, target) in table.rules.iter().zip(&table.targets) {
            let (requests, sampled, borrowed) = rule.totals();
            let entry = PyDict::new(py);
            entry.set_item("name", &rule.spec.name)?;
            entry.set_item("priority", rule.spec.priority)?;
            entry.set_item("for_this_service", rule.for_this_service)?;
            entry.set_item("fixed_rate", target.fixed_rate)?;
            entry.set_item(
                "reservoir_per_second",
                if target.reservoir.is_some() && wall < target.reservoir_until { target.quota } else { 0.0 },
            )?;
            entry.set_item("reservoir_until", target.reservoir_until.is_finite().then_some(target.reservoir_until))?;
            entry.set_item("borrowing", target.borrowing)?;
            entry.set_item("requests", requests)?;
            entry.set_item("sampled", sampled)?;
            entry.set_item("borrowed", borrowed)?;
            rules.append(entry)?;
        }
        out.set_item("rules", rules)?;
        Ok(out)
    }
}

impl NativeSampler {
    fn xray(&self, pipeline: Option<usize>) -> PyResult<&Arc<XRay>> {
        self.xray_plan(pipeline)?.xray().ok_or_else(|| PyTypeError::new_err("needs a sampler with an xray_remote stage"))
    }

    fn xray_plan(&self, pipeline: Option<usize>) -> PyResult<&Plan> {
        Ok(match (pipeline, self.core.plan().composite()) {
            (None, _) => self.core.plan(),
            (Some(index), Some(tree)) => {
                &*tree.pipelines.get(index).ok_or_else(|| PyTypeError::new_err(format!("no pipeline node {index}")))?.plan
            }
            (Some(_), None) => return Err(PyTypeError::new_err("pipeline= needs a composite sampler")),
        })
    }

    fn xray_document(&self, xray: &XRay, document: &Bound<'_, PyAny>) -> PyResult<Data> {
        to_data(document, &DataPath::root("(answer)")).inspect_err(|_| {
            xray.rejected.fetch_add(1, Relaxed);
        })
    }

    /// (Unix seconds, monotonic seconds) on the sampler's clock.
    fn xray_now(&self) -> (f64, f64) {
        match &self.clock {
            Some(clock) => (clock.now(), clock.monotonic()),
            None => (SystemClock.now(), SystemClock.monotonic()),
        }
    }
}
