//! Composite samplers (OpenTelemetry's CompositeSampler): built from a tree
//! spec, with the Python composables and predicates it refers to; a kept
//! span's attributes from its annotations; the root's intent on request.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::NativeSampler;
use crate::clock::{Clock, Moment};
use crate::composable::{self, Mark};
use crate::data::Path as DataPath;
use crate::plan::{Plan, Stage};
use crate::python::convert::{from_data, to_data};
use crate::python::errors::{config_error, config_message};
use crate::python::foreign::{ForeignCalls, ForeignParts};
use crate::python::otel_api::OtelApi;
use crate::python::py_clock;
use crate::python::signals::NativeSignals;
use crate::python::span_input;
use crate::python::span_view::PySpanView;

/// Where a mark's attributes come from, ready for the hot path.
pub enum MarkSource {
    Attributes(Py<PyDict>),
    Foreign(usize),
}

/// A composite sampler's Python side: its Python objects and its marks.
pub struct CompositeParts {
    pub foreign: ForeignParts,
    pub marks: Vec<MarkSource>,
}

impl CompositeParts {
    /// The attributes a kept span gets: its start attributes, then each
    /// mark's, in mark order (later ones win on a shared key).
    pub fn attributes<'py>(
        &self,
        py: Python<'py>,
        calls: &ForeignCalls<'_, 'py>,
        marks: u64,
        start: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let merged = PyDict::new(py);
        if let Some(start) = start {
            if let Ok(dict) = start.cast::<PyDict>() {
                merged.update(dict.as_mapping())?;
            } else if let Ok(mapping) = start.cast::<pyo3::types::PyMapping>() {
                merged.update(mapping)?;
            }
        }
        for (mark, source) in self.marks.iter().enumerate() {
            if marks & (1 << mark) == 0 {
                continue;
            }
            match source {
                MarkSource::Attributes(dict) => merged.update(dict.bind(py).as_mapping())?,
                MarkSource::Foreign(slot) => {
                    if let Some(intent) = calls.intent_object(*slot) {
                        let attributes = intent.getattr("attributes")?;
                        if let Ok(mapping) = attributes.cast::<pyo3::types::PyMapping>() {
                            merged.update(mapping)?;
                        }
                    }
                }
            }
        }
        Ok(merged)
    }

    /// The `update_trace_state` callables of the Python composables a kept
    /// span's marks name.
    pub fn trace_state_updates<'py>(&self, calls: &ForeignCalls<'_, 'py>, marks: u64) -> Vec<Bound<'py, PyAny>> {
        self.marks
            .iter()
            .enumerate()
            .filter(|(mark, _)| marks & (1 << mark) != 0)
            .filter_map(|(_, source)| match source {
                MarkSource::Foreign(slot) => calls.intent_object(*slot),
                MarkSource::Attributes(_) => None,
            })
            .filter_map(|intent| intent.getattr("update_trace_state").ok().filter(|f| f.is_callable()))
            .collect()
    }
}

/// Apply Python composables' trace-state updates to a result, keeping the
/// `ot` entry the composite decided (composables must not change it).
pub fn apply_trace_state_updates<'py>(
    py: Python<'py>,
    api: &OtelApi,
    result: &Bound<'py, PyAny>,
    updates: &[Bound<'py, PyAny>],
) -> PyResult<()> {
    let names = &api.names;
    let mut state = result.getattr(names.trace_state.bind(py))?;
    let ours = if state.is_none() { None } else { state.call_method1("get", (names.ot.bind(py),))?.cast_into::<PyString>().ok() };
    if state.is_none() {
        state = api.trace_state_type.bind(py).call0()?;
    }
    for update in updates {
        state = update.call1((&state,))?;
    }
    state = match &ours {
        Some(ot) => state.call_method1("update", (names.ot.bind(py), ot))?,
        None if state.call_method1("get", (names.ot.bind(py),))?.is_none() => state,
        None => state.call_method1("delete", (names.ot.bind(py),))?,
    };
    result.setattr(names.trace_state.bind(py), state)
}

#[pymethods]
impl NativeSampler {
    /// A composite sampler from a composable tree spec (plain data; see
    /// `tracesieve.composable`). `composables` and `predicates`: the Python
    /// objects its `foreign` entries name, by slot.
    #[staticmethod]
    #[pyo3(signature = (spec, *, composables = None, predicates = None, path = "composite", clock = None, budget_store = None, description = None))]
    #[allow(clippy::too_many_arguments)]
    fn composite(
        py: Python<'_>,
        spec: &Bound<'_, PyAny>,
        composables: Option<Vec<Py<PyAny>>>,
        predicates: Option<Vec<Py<PyAny>>>,
        path: &str,
        clock: Option<&Bound<'_, PyAny>>,
        budget_store: Option<String>,
        description: Option<String>,
    ) -> PyResult<Self> {
        let description = description.unwrap_or_else(|| "CompositeSampler".to_owned());
        let doc = to_data(spec, &DataPath::root(path))?;
        let py_clock = py_clock::from_argument(clock)?;
        let clock_arc: Arc<dyn Clock> = match &py_clock {
            Some(c) => c.clone(),
            None => Arc::new(crate::clock::SystemClock),
        };
        // A pipeline node's store may wait for another process's lock: not holding the GIL.
        let tree = py.detach(|| composable::parse::composite(&doc, &DataPath::root(path), &clock_arc, budget_store.as_deref()));
        py_clock::interrupted()?;
        let tree = tree.map_err(config_error)?;
        let foreign = ForeignParts { composables: composables.unwrap_or_default(), predicates: predicates.unwrap_or_default() };
        if tree.foreign_composables > foreign.composables.len() || tree.foreign_predicates > foreign.predicates.len() {
            return Err(config_message(format!("{path}: refers to Python samplers or predicates it was not given")));
        }
        let marks = tree
            .marks
            .iter()
            .map(|mark| {
                Ok(match mark {
                    Mark::Attributes(data) => MarkSource::Attributes(from_data(py, data)?.cast_into::<PyDict>()?.unbind()),
                    Mark::Foreign(slot) => MarkSource::Foreign(*slot),
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let plan = Plan::new(false, vec![Stage::Composite(Arc::new(tree))]);
        let mut sampler = NativeSampler::build(py, plan, py_clock, description, 1.0)?;
        sampler.composite = Some(Arc::new(CompositeParts { foreign, marks }));
        Ok(sampler)
    }

    /// The tree's pipeline nodes, in order: `{"path", "resolved", "signals"}`
    /// (the resolved pipeline document, and the windows an adaptive stage
    /// reads, or None).
    fn composite_pipelines<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for parts in self.core.plan().composite().map(|tree| tree.pipelines.as_slice()).unwrap_or_default() {
            let entry = PyDict::new(py);
            entry.set_item("path", &parts.path)?;
            entry.set_item("resolved", from_data(py, &parts.resolved)?)?;
            let signals = parts.signals.clone().map(|signals| NativeSignals::from_signals(py, signals, self.clock.clone()));
            entry.set_item("signals", signals.map(|s| Bound::new(py, s)).transpose()?)?;
            out.append(entry)?;
        }
        Ok(out)
    }

    /// The composite root's sampling intent for these arguments, with no
    /// draw: `(threshold, reliable, attributes, intents)`, the threshold -1
    /// when there is none, the attributes a kept span would get (None when
    /// none), and the intents of the Python composables reached.
    #[pyo3(signature = (parent_context, name, kind = None, attributes = None, links = None, trace_state = None))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn intent<'py>(
        &self,
        py: Python<'py>,
        parent_context: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        links: Option<&Bound<'py, PyAny>>,
        trace_state: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(i128, bool, Option<Bound<'py, PyDict>>, Bound<'py, PyList>)> {
        let (Some(tree), Some(parts)) = (self.core.plan().composite(), self.composite.as_deref()) else {
            return Err(pyo3::exceptions::PyTypeError::new_err("intent() needs a composite sampler"));
        };
        let api = OtelApi::get(py)?;
        let zero = 0u8.into_pyobject(py)?.into_any();
        let mut input = span_input::read(py, api, parent_context, &zero);
        if let Some(trace_state) = trace_state.filter(|t| !t.is_none()) {
            span_input::use_trace_state(py, api, &mut input, trace_state);
        }
        let calls = ForeignCalls::new(py, &parts.foreign, parent_context, name, kind, attributes, links, trace_state);
        let root = input.facts.parent.is_none();
        let span = PySpanView::new(api, name, kind, attributes, root, &self.keys).with_foreign(&calls);
        let intent = tree.intent(&input.facts, &span, &Moment::new(self.core.clock()));
        py_clock::interrupted()?;
        let threshold = intent.threshold.map_or(-1, i128::from);
        let marked = if intent.marks == 0 { None } else { Some(parts.attributes(py, &calls, intent.marks, None)?) };
        let reached = PyList::empty(py);
        for slot in 0..parts.foreign.composables.len() {
            if let Some(object) = calls.intent_object(slot) {
                reached.append(object)?;
            }
        }
        Ok((threshold, intent.reliable, marked, reached))
    }
}
