//! The hot path: `should_sample`, one native call per span, which never raises
//! into the application; and the side-effect-free `explain` walks.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::composite::{apply_trace_state_updates, CompositeParts};
use super::NativeSampler;
use crate::clock::{Clock, FixedClock, Moment, ShiftedClock};
use crate::plan::BareSpan;
use crate::python::args;
use crate::python::foreign::ForeignCalls;
use crate::python::otel_api::OtelApi;
use crate::python::py_clock;
use crate::python::sampling_result;
use crate::python::span_input;
use crate::python::span_view::{text_of_str, PySpanView};
use crate::rules::{Action, SpanView};
use crate::threshold::{self, NEVER};
use pyo3::exceptions::PyTypeError;

/// Span attribute naming the rule that decided (`record_rule = true`).
pub const RULE_ATTRIBUTE: &str = "tracesieve.rule";

/// A copy of the start attributes with the deciding rule's name added.
fn with_rule_attribute<'py>(py: Python<'py>, attributes: Option<&Bound<'py, PyAny>>, rule: &str) -> Option<Bound<'py, PyAny>> {
    let copy = PyDict::new(py);
    if let Some(attributes) = attributes {
        if let Ok(dict) = attributes.cast::<PyDict>() {
            copy.update(dict.as_mapping()).ok()?;
        }
    }
    copy.set_item(RULE_ATTRIBUTE, rule).ok()?;
    Some(copy.into_any())
}

#[pymethods]
impl NativeSampler {
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
        let mut input = span_input::read(py, api, parent_context, trace_id);
        if !input.ok {
            self.core.counters().record_input_error();
        }
        if !self.core.plan().trust_incoming && input.distrust_remote_parent() {
            self.core.counters().record_incoming_ignored();
        }
        if let Some(parts) = self.composite.as_deref() {
            return self.should_sample_composite(py, api, parts, input, parent_context, name, kind, attributes, links, trace_state);
        }
        let root = input.facts.parent.is_none();
        let decision = if self.keys.is_empty() {
            // A remote strategy reads the span name (per-operation probabilities).
            let name = if self.reads_name { name.cast::<PyString>().ok().and_then(text_of_str).unwrap_or("") } else { "" };
            self.core.decide(&input.facts, &BareSpan { name, root })
        } else {
            let span = PySpanView::new(api, name, kind, attributes, root, &self.keys);
            self.core.decide(&input.facts, &span)
        };
        py_clock::interrupted()?;
        let labelled;
        let attributes = match (self.core.plan().record_rule && decision.sampled, decision.rule) {
            (true, Some(slot)) => {
                labelled = with_rule_attribute(py, attributes, self.core.plan().rule_name(slot));
                labelled.as_ref().or(attributes)
            }
            _ => attributes,
        };
        self.result(py, api, decision, attributes, &input)
    }

    /// Which rule decides a span with these properties, and with what probability
    /// (before the parent and the randomness are considered). For rule samplers.
    #[pyo3(signature = (name, kind = None, attributes = None, root = true, now = None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        root: bool,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = args::optional(now, |v| args::number("now", v, "Unix seconds (a number)"))?;
        let api = OtelApi::get(py)?;
        let Some(set) = self.core.plan().rules() else {
            return Err(PyTypeError::new_err("explain() needs a rule-based sampler"));
        };
        let span = PySpanView::new(api, name, kind, attributes, root, &self.keys);
        let reading = match now {
            Some(t) => Arc::new(FixedClock(t)) as Arc<dyn Clock>,
            None => self.clock.clone().map_or_else(|| Arc::new(crate::clock::SystemClock) as Arc<dyn Clock>, |c| c as Arc<dyn Clock>),
        };
        let outcome = set.evaluate(&span, &mut || reading.now());
        py_clock::interrupted()?;
        let out = PyDict::new(py);
        out.set_item("rule", set.rule_name(outcome.rule))?;
        out.set_item("route", span.route())?;
        match outcome.action {
            Action::Keep => {
                out.set_item("action", "keep")?;
                out.set_item("probability", 1.0)?;
            }
            Action::Drop => {
                out.set_item("action", "drop")?;
                out.set_item("probability", 0.0)?;
            }
            Action::Rate(p) => {
                out.set_item("action", "rate")?;
                let t = threshold::threshold_for_probability(p, self.core.plan().precision);
                out.set_item("probability", p)?;
                out.set_item("th", if t < NEVER { Some(threshold::encode_th(t)) } else { None })?;
            }
        }
        Ok(out)
    }

    /// The whole plan's walk for a span like this, in plain words, with the
    /// live boost and pace: `{"lines": [...], "probability": p or None, "th": str or None}`.
    /// Changes no state.
    #[pyo3(signature = (name, kind = None, attributes = None, parent = false, now = None))]
    fn explain_plan<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        parent: bool,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = args::optional(now, |v| args::number("now", v, "Unix seconds (a number)"))?;
        let api = OtelApi::get(py)?;
        let span = PySpanView::new(api, name, kind, attributes, !parent, &self.keys);
        let shifted = now.map(|wall| ShiftedClock::at(self.core.clock(), wall));
        let reading: &dyn Clock = match &shifted {
            Some(shifted) => shifted,
            None => self.core.clock(),
        };
        let explanation = crate::explain::explain(self.core.plan(), &span, parent, &Moment::new(reading));
        py_clock::interrupted()?;
        let out = PyDict::new(py);
        out.set_item("lines", explanation.lines)?;
        out.set_item("probability", explanation.probability)?;
        out.set_item("th", explanation.th)?;
        out.set_item("forced", explanation.forced)?;
        Ok(out)
    }
}

impl NativeSampler {
    /// The `SamplingResult` for a decision (a deferred drop recorded for the tail).
    fn result<'py>(
        &self,
        py: Python<'py>,
        api: &OtelApi,
        decision: crate::plan::Decision,
        attributes: Option<&Bound<'py, PyAny>>,
        input: &span_input::SpanInput<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Deferred: a span the plan drops (by probability, by a drop rule, or
        // refused by the budget or the rate limit) is recorded for the tail
        // stage, which keeps it only for an error, a latency or a rule.
        if self.defer && !decision.sampled {
            if let Ok(result) = sampling_result::record_only(py, api, attributes, input.parent.as_ref()) {
                self.core.counters().record_deferred();
                return Ok(result);
            }
        }
        match sampling_result::build(
            py,
            api,
            decision,
            attributes,
            input.parent.as_ref(),
            &self.root_trace_states,
            &self.last_trace_state,
            Some(&self.reusable_keep),
        ) {
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

    /// A composite sampler's decision: the tree may call Python composables
    /// and predicates, a kept span gets its marks' attributes, and Python
    /// composables may update its tracestate (never its `ot` entry).
    #[allow(clippy::too_many_arguments)]
    fn should_sample_composite<'py>(
        &self,
        py: Python<'py>,
        api: &OtelApi,
        parts: &CompositeParts,
        mut input: span_input::SpanInput<'py>,
        parent_context: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        links: Option<&Bound<'py, PyAny>>,
        trace_state: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // The SDK's composite sampler reads the parent tracestate its caller
        // passes; the SDK's TracerProvider passes none, and then it is the parent's.
        if let Some(trace_state) = trace_state.filter(|t| !t.is_none()) {
            span_input::use_trace_state(py, api, &mut input, trace_state);
        }
        let calls = ForeignCalls::new(py, &parts.foreign, parent_context, name, kind, attributes, links, trace_state);
        let root = input.facts.parent.is_none();
        let span = PySpanView::new(api, name, kind, attributes, root, &self.keys).with_foreign(&calls);
        let decision = self.core.decide(&input.facts, &span);
        if calls.failures() > 0 {
            self.core.counters().record_input_error();
        }
        py_clock::interrupted()?;
        if decision.marks == 0 {
            return self.result(py, api, decision, attributes, &input);
        }
        let marked = match parts.attributes(py, &calls, decision.marks, attributes) {
            Ok(marked) => Some(marked.into_any()),
            Err(error) if py_clock::is_interrupt(py, &error) => return Err(error),
            Err(_) => {
                self.core.counters().record_input_error();
                None
            }
        };
        let result = self.result(py, api, decision, marked.as_ref().or(attributes), &input)?;
        let updates = parts.trace_state_updates(&calls, decision.marks);
        if !updates.is_empty() {
            match apply_trace_state_updates(py, api, &result, &updates) {
                Err(error) if py_clock::is_interrupt(py, &error) => return Err(error),
                Err(_) => self.core.counters().record_input_error(),
                Ok(()) => {}
            }
        }
        Ok(result)
    }
}
