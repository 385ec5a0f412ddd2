//! `NativeSampler`: one native call per span decision. This module holds the
//! object and what its parts share; `constructors` builds plans from Python
//! arguments, `decide` is the hot path, `status` reports counts and spending.

mod composite;
mod constructors;
mod decide;
mod fleet;
mod remote;
mod status;
mod xray;

use std::sync::Arc;

use pyo3::prelude::*;

use super::otel_api::OtelApi;
use super::py_clock::PyClock;
use super::sampling_result::{LastTraceState, ReusableKeep, RootTraceStates};
use super::span_view::KeyTable;
use crate::clock::Clock;
use crate::plan::{Plan, Stage};
use crate::sampler::SamplerCore;
use crate::threshold::{self, NEVER};

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeSampler {
    core: SamplerCore,
    description: String,
    rate: f64,
    respect_parent: bool,
    root_trace_states: RootTraceStates,
    reusable_keep: ReusableKeep,
    last_trace_state: LastTraceState,
    /// Interned attribute keys of the rule set, by key index.
    keys: KeyTable,
    clock: Option<Arc<PyClock>>,
    /// Record spans it would drop (RECORD_ONLY) so a tail stage can keep them.
    defer: bool,
    /// Whether the plan reads the span name without reading attributes (a
    /// remote strategy's per-operation probabilities).
    reads_name: bool,
    /// A composite sampler's Python parts (its Python objects, its marks).
    composite: Option<Arc<composite::CompositeParts>>,
}

/// How many distinct kept-root tracestates a sampler prebuilds at most.
const MAX_CACHED_TRACE_STATES: usize = 4096;

impl NativeSampler {
    fn build(py: Python<'_>, plan: Plan, clock: Option<Arc<PyClock>>, description: String, rate: f64) -> PyResult<Self> {
        let api = OtelApi::get(py)?;
        // Every threshold a kept root can carry, when they are few enough to list.
        let mut thresholds: Vec<u64> = plan
            .possible_probabilities(MAX_CACHED_TRACE_STATES)
            .unwrap_or_default()
            .into_iter()
            .map(|p| threshold::threshold_for_probability(p, plan.precision))
            .collect();
        if let Some(Stage::Probability { threshold, .. }) = plan.stages.first() {
            thresholds.push(*threshold);
        }
        let root_trace_states = RootTraceStates::new(py, api, thresholds)?;
        let keys = KeyTable::new(py, &plan.attribute_keys())?;
        let respect_parent = plan.respect_parent;
        let reads_name = plan.remote().is_some();
        let core = match &clock {
            Some(clock) => SamplerCore::with_clock(plan, clock.clone() as Arc<dyn Clock>),
            None => SamplerCore::new(plan),
        };
        let reusable_keep = ReusableKeep::new(py, api)?;
        Ok(NativeSampler {
            core,
            description,
            rate,
            respect_parent,
            root_trace_states,
            reusable_keep,
            last_trace_state: LastTraceState::new(),
            keys,
            clock,
            defer: false,
            reads_name,
            composite: None,
        })
    }
}

impl NativeSampler {
    /// The budget stage's pacer and the clock it runs on, if the plan has one.
    pub fn budget_parts(&self) -> Option<(Arc<crate::budget::pacer::Pacer>, Arc<dyn Clock>)> {
        self.core.plan().stages.iter().find_map(|stage| match stage {
            Stage::Budget(pacer) => Some((pacer.clone(), self.core.clock_arc())),
            _ => None,
        })
    }
}

#[pymethods]
impl NativeSampler {
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

    #[getter]
    fn defer(&self) -> bool {
        self.defer
    }

    /// The `th` this sampler writes on kept root spans, or None (rate 0, legacy
    /// mode, or a rule sampler whose probability varies).
    #[getter]
    fn threshold(&self) -> Option<String> {
        match self.core.plan().stages.as_slice() {
            [Stage::Probability { threshold, .. }] if *threshold < NEVER => Some(threshold::encode_th(*threshold)),
            _ => None,
        }
    }

    /// Names of the rules, in priority order (rule samplers; empty otherwise).
    fn rule_names(&self) -> Vec<String> {
        self.core.plan().rules().map(|set| set.rules.iter().map(|r| r.name.clone()).collect()).unwrap_or_default()
    }

    fn __repr__(&self) -> String {
        self.description.clone()
    }
}
