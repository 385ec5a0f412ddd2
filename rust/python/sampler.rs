//! `NativeSampler`: one native call per span decision. Converts arguments,
//! runs the plan, builds the result; never raises into the application.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use super::otel_api::OtelApi;
use super::sampling_result::{self, RootTraceState};
use super::span_input;
use crate::config::{self, ConfigError};
use crate::plan::{Path, Plan, Stage};
use crate::sampler::SamplerCore;
use crate::threshold::DEFAULT_PRECISION;

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeSampler {
    core: SamplerCore,
    description: String,
    rate: f64,
    respect_parent: bool,
    root_trace_state: Option<RootTraceState>,
}

fn config_error(error: ConfigError) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// A number for a probability field: int or float (or anything with `__float__`),
/// but not bool or str. The type is checked here, the range in `config`.
fn number(field: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let is_number = !value.is_instance_of::<PyBool>()
        && !value.is_instance_of::<PyString>()
        && (value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() || value.hasattr("__float__")?);
    if !is_number {
        let shown = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".to_owned());
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a number in [0, 1], got {} {shown}",
            value.get_type().name()?
        )));
    }
    value.extract::<f64>()
}

#[pymethods]
impl NativeSampler {
    /// `kind` is "probability" (consistent, writes `th`) or "traceidratio"
    /// (the SDK's TraceIdRatioBased decision).
    #[new]
    #[pyo3(signature = (kind, rate, *, respect_parent = true, precision = DEFAULT_PRECISION as i64, class_name = None))]
    fn new(
        py: Python<'_>,
        kind: &str,
        rate: &Bound<'_, PyAny>,
        respect_parent: bool,
        precision: i64,
        class_name: Option<String>,
    ) -> PyResult<Self> {
        let rate = config::probability("rate", number("rate", rate)?).map_err(config_error)?;
        let precision = config::precision("precision", precision).map_err(config_error)?;
        let stage = match kind {
            "probability" => Stage::probability(rate, precision),
            "traceidratio" => Stage::trace_id_ratio(rate),
            other => {
                return Err(PyValueError::new_err(format!(
                    "kind: unknown sampler kind {other:?}; expected \"probability\" or \"traceidratio\""
                )))
            }
        };
        let api = OtelApi::get(py)?;
        let root_trace_state = match stage {
            Stage::Probability { threshold, .. } if threshold < crate::threshold::NEVER => Some(RootTraceState {
                threshold,
                trace_state: sampling_result::new_trace_state(py, api, None, Some(threshold))?.unbind(),
            }),
            _ => None,
        };
        let class_name = class_name.unwrap_or_else(|| "NativeSampler".to_owned());
        let parent_note = if respect_parent { "" } else { ",respect_parent=False" };
        Ok(NativeSampler {
            core: SamplerCore::new(Plan { respect_parent, stages: vec![stage] }),
            description: format!("{class_name}{{{rate}{parent_note}}}"),
            rate,
            respect_parent,
            root_trace_state,
        })
    }

    /// The SDK's `Sampler.should_sample` signature. `trace_state` is accepted
    /// and ignored, as the SDK never passes it: the parent's comes from the context.
    #[pyo3(signature = (parent_context, trace_id, name, kind = None, attributes = None, links = None, trace_state = None))]
    #[allow(clippy::too_many_arguments, unused_variables)]
    fn should_sample<'py>(
        &self,
        py: Python<'py>,
        parent_context: &Bound<'py, PyAny>,
        trace_id: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        links: Option<&Bound<'py, PyAny>>,
        trace_state: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let api = OtelApi::get(py)?;
        let input = span_input::read(py, api, parent_context, trace_id);
        if !input.ok {
            self.core.counters().record_input_error();
        }
        let decision = self.core.decide(&input.facts);
        match sampling_result::build(py, api, decision, attributes, input.parent.as_ref(), self.root_trace_state.as_ref()) {
            Ok(result) => Ok(result),
            Err(_) => {
                // Only hostile look-alike objects get here; the decision stands,
                // without attributes or tracestate.
                self.core.counters().record_input_error();
                let fallback = if decision.sampled { &api.keep_bare } else { &api.drop_root };
                Ok(fallback.bind(py).clone())
            }
        }
    }

    fn get_description(&self) -> &str {
        &self.description
    }

    #[getter]
    fn rate(&self) -> f64 {
        self.rate
    }

    #[getter]
    fn respect_parent(&self) -> bool {
        self.respect_parent
    }

    /// The `th` this sampler writes on kept root spans, or None (rate 0 or legacy mode).
    #[getter]
    fn threshold(&self) -> Option<String> {
        match self.core.plan().stages.first() {
            Some(Stage::Probability { threshold, .. }) if *threshold < crate::threshold::NEVER => {
                Some(crate::threshold::encode_th(*threshold))
            }
            _ => None,
        }
    }

    /// Exact decision counts: decisions, sampled, dropped, per path, input errors.
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
        Ok(stats)
    }

    fn __repr__(&self) -> String {
        self.description.clone()
    }
}
