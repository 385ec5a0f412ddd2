//! `NativeSampler`: one native call per span decision. Converts arguments,
//! runs the plan, builds the result; never raises into the application.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use super::convert::to_data;
use super::otel_api::OtelApi;
use super::py_clock::{self, PyClock};
use super::sampling_result::{self, LastTraceState, ReusableKeep, RootTraceStates};
use super::span_input;
use super::signals::NativeSignals;
use super::span_view::{KeyTable, PySpanView};
use crate::adaptive::{BoostPolicy, Booster, ErrorPolicy};
use crate::budget::pacer::Pacer;
use crate::budget::period::{Calendar, PeriodKind};
use crate::clock::{Clock, FixedClock};
use crate::config::{self, ConfigError};
use crate::data::Path as DataPath;
use crate::plan::{BareSpan, Path, Plan, Stage};
use crate::rules::{self, Action, SpanView};
use crate::sampler::SamplerCore;
use crate::threshold::{self, DEFAULT_PRECISION, NEVER};

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
}

/// How many distinct kept-root tracestates a sampler prebuilds at most.
const MAX_CACHED_TRACE_STATES: usize = 4096;

pub(crate) fn config_error(error: ConfigError) -> PyErr {
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

fn probability(field: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    config::probability(field, number(field, value)?).map_err(config_error)
}

impl NativeSampler {
    fn build(
        py: Python<'_>,
        plan: Plan,
        clock: Option<Arc<PyClock>>,
        description: String,
        rate: f64,
    ) -> PyResult<Self> {
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
        })
    }
}

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

fn parent_note(respect_parent: bool) -> &'static str {
    if respect_parent {
        ""
    } else {
        ",respect_parent=False"
    }
}

#[pymethods]
impl NativeSampler {
    /// Consistent probability sampling at `rate` (writes `th`).
    #[staticmethod]
    #[pyo3(signature = (rate, *, respect_parent = true, precision = DEFAULT_PRECISION as i64, class_name = "ProbabilitySampler"))]
    fn probability(py: Python<'_>, rate: &Bound<'_, PyAny>, respect_parent: bool, precision: i64, class_name: &str) -> PyResult<Self> {
        let rate = probability("rate", rate)?;
        let precision = config::precision("precision", precision).map_err(config_error)?;
        let mut plan = Plan::new(respect_parent, vec![Stage::probability(rate, precision)]);
        plan.precision = precision;
        let description = format!("{class_name}{{{rate}{}}}", parent_note(respect_parent));
        NativeSampler::build(py, plan, None, description, rate)
    }

    /// The SDK's `TraceIdRatioBased(rate)` decision.
    #[staticmethod]
    #[pyo3(signature = (rate, *, respect_parent = true, class_name = "TraceIdRatioSampler"))]
    fn trace_id_ratio(py: Python<'_>, rate: &Bound<'_, PyAny>, respect_parent: bool, class_name: &str) -> PyResult<Self> {
        let rate = probability("rate", rate)?;
        let plan = Plan::new(respect_parent, vec![Stage::trace_id_ratio(rate)]);
        let description = format!("{class_name}{{{rate}{}}}", parent_note(respect_parent));
        NativeSampler::build(py, plan, None, description, rate)
    }

    /// Rule-based sampling from plain data (see `tracesieve.RuleSampler`).
    #[staticmethod]
    #[pyo3(signature = (rules, *, default_rate, multipliers = None, respect_parent = true, precision = DEFAULT_PRECISION as i64, clock = None, class_name = "RuleSampler"))]
    #[allow(clippy::too_many_arguments)]
    fn rules(
        py: Python<'_>,
        rules: &Bound<'_, PyAny>,
        default_rate: &Bound<'_, PyAny>,
        multipliers: Option<&Bound<'_, PyAny>>,
        respect_parent: bool,
        precision: i64,
        clock: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let default_rate = probability("default_rate", default_rate)?;
        let precision = config::precision("precision", precision).map_err(config_error)?;
        let rules_data = to_data(rules, &DataPath::root("rules"))?;
        let multipliers_data = match multipliers {
            Some(m) => to_data(m, &DataPath::root("multipliers"))?,
            None => crate::data::Data::List(Vec::new()),
        };
        let set = rules::parse(&rules_data, default_rate, &multipliers_data).map_err(config_error)?;
        let clock = py_clock::from_argument(clock)?;
        let description = format!("{class_name}{{rules={},default_rate={default_rate}{}}}", set.rules.len(), parent_note(respect_parent));
        let mut plan = Plan::new(respect_parent, vec![Stage::Rules(Arc::new(set))]);
        plan.precision = precision;
        NativeSampler::build(py, plan, clock, description, default_rate)
    }

    /// `base`'s plan with a live error/latency boost from `signals` appended.
    #[staticmethod]
    #[pyo3(signature = (base, signals, *, error_steps = None, error_rate_target = None, min_spans = 20, latency_boost = 2.0, slow_ratio = 0.1, max_boost = 10.0, class_name = "AdaptiveSampler"))]
    #[allow(clippy::too_many_arguments)]
    fn adaptive(
        py: Python<'_>,
        base: PyRef<'_, NativeSampler>,
        signals: PyRef<'_, NativeSignals>,
        error_steps: Option<Vec<(i64, f64)>>,
        error_rate_target: Option<f64>,
        min_spans: i64,
        latency_boost: f64,
        slow_ratio: f64,
        max_boost: f64,
        class_name: &str,
    ) -> PyResult<Self> {
        let mut plan = base.core.plan().clone();
        if plan.stages.iter().any(|s| matches!(s, Stage::TraceIdRatio { .. })) {
            return Err(PyValueError::new_err(
                "base: a TraceIdRatioSampler decides by the legacy rule, which has no probability to boost; use a ProbabilitySampler or RuleSampler",
            ));
        }
        if plan.booster().is_some() {
            return Err(PyValueError::new_err("base: already an AdaptiveSampler; give its base instead"));
        }
        let non_negative = |field: &str, value: i64| -> PyResult<u64> {
            u64::try_from(value).map_err(|_| PyValueError::new_err(format!("{field}: {value} is negative; expected a count >= 0")))
        };
        let errors = match (error_rate_target, error_steps) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err("error_rate_target: give either error_steps (count mode) or error_rate_target (rate mode), not both"))
            }
            (Some(target), None) => ErrorPolicy::Rate { target, min_spans: non_negative("min_spans", min_spans)? },
            (None, Some(steps)) => ErrorPolicy::Steps(
                steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, (count, m))| Ok((non_negative(&format!("error_steps[{i}]"), count)?, m)))
                    .collect::<PyResult<_>>()?,
            ),
            (None, None) => BoostPolicy::seed().errors,
        };
        let policy = BoostPolicy { errors, latency_boost, slow_ratio, min_spans: non_negative("min_spans", min_spans)?, max_boost };
        let booster = Booster::new(signals.signals.clone(), policy).map_err(config_error)?;
        plan.stages.push(Stage::Boost(Arc::new(booster)));
        let description = format!("{class_name}{{{}}}", base.description);
        NativeSampler::build(py, plan, signals.py_clock(), description, base.rate)
    }

    /// `inner`'s plan, paced to `budget` spans per calendar `period` in `timezone`.
    #[staticmethod]
    #[pyo3(signature = (inner, budget, *, period = "month", timezone = "UTC", cap_forced_keeps = false, clock = None, class_name = "BudgetSampler"))]
    #[allow(clippy::too_many_arguments)]
    fn budget(
        py: Python<'_>,
        inner: PyRef<'_, NativeSampler>,
        budget: i64,
        period: &str,
        timezone: &str,
        cap_forced_keeps: bool,
        clock: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let mut plan = inner.core.plan().clone();
        if plan.stages.iter().any(|s| matches!(s, Stage::TraceIdRatio { .. })) {
            return Err(PyValueError::new_err(
                "inner: a TraceIdRatioSampler decides by the legacy rule, which has no probability to pace; use a ProbabilitySampler or RuleSampler",
            ));
        }
        if plan.pacer().is_some() {
            return Err(PyValueError::new_err("inner: already a BudgetSampler; give its inner sampler instead"));
        }
        if budget < 1 {
            return Err(PyValueError::new_err(format!("budget: {budget} spans; expected a budget of at least one span")));
        }
        let kind = PeriodKind::parse(period).map_err(config_error)?;
        let calendar = Calendar::new(kind, timezone).map_err(config_error)?;
        let clock = match py_clock::from_argument(clock)? {
            Some(c) => Some(c),
            None => inner.clock.clone(),
        };
        let now = match &clock {
            Some(c) => c.now(),
            None => crate::clock::SystemClock.now(),
        };
        let pacer = Pacer::new(calendar, budget as u64, cap_forced_keeps, now).map_err(config_error)?;
        plan.stages.push(Stage::Budget(Arc::new(pacer)));
        let description = format!("{class_name}{{{},budget={budget}/{period}}}", inner.description);
        NativeSampler::build(py, plan, clock, description, inner.rate)
    }

    /// Spending so far: budget, used, remaining, refused spans, pacing
    /// probability, period bounds, recent rates and the projected end-of-period total.
    fn budget_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Some(pacer) = self.core.plan().pacer() else {
            return Err(PyTypeError::new_err("budget_status() needs a BudgetSampler"));
        };
        let now = self.clock.as_ref().map_or_else(|| crate::clock::SystemClock.now(), |c| c.now());
        let status = pacer.status(now);
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
        let now = self.clock.as_ref().map_or_else(|| crate::clock::SystemClock.now(), |c| c.now());
        Ok(pacer.restore(period_start, used, now))
    }

    /// A whole pipeline from a configuration document (plain data). Returns the
    /// sampler and, when it has an adaptive stage, the signals its processor feeds
    /// (`signals` reuses existing ones, for reloads).
    #[staticmethod]
    #[pyo3(signature = (document, *, clock = None, signals = None, class_name = "PipelineSampler"))]
    fn pipeline(
        py: Python<'_>,
        document: &Bound<'_, PyAny>,
        clock: Option<&Bound<'_, PyAny>>,
        signals: Option<PyRef<'_, NativeSignals>>,
        class_name: &str,
    ) -> PyResult<(Self, Option<NativeSignals>)> {
        let doc = to_data(document, &DataPath::root(""))?;
        let py_clock = match py_clock::from_argument(clock)? {
            Some(c) => Some(c),
            None => signals.as_ref().and_then(|s| s.py_clock()),
        };
        let clock_arc: Arc<dyn Clock> = match &py_clock {
            Some(c) => c.clone(),
            None => Arc::new(crate::clock::SystemClock),
        };
        let existing = signals.as_ref().map(|s| s.signals.clone());
        let pipeline = crate::pipeline::parse(&doc, clock_arc, existing).map_err(config_error)?;
        let description = format!("{class_name}{{{}}}", pipeline.stage_names.join(","));
        let new_signals = match (pipeline.signals.clone(), signals) {
            (Some(_), Some(existing)) => Some(existing.share(py)),
            (Some(arc), None) => Some(NativeSignals::from_signals(py, arc, py_clock.clone())),
            (None, _) => None,
        };
        let sampler = NativeSampler::build(py, pipeline.plan, py_clock, description, 1.0)?;
        Ok((sampler, new_signals))
    }

    /// The same sampler (same plan, shared stages, fresh counters) recording the
    /// spans it drops as RECORD_ONLY, for a tail-sampling processor to decide on.
    fn deferred(&self, py: Python<'_>) -> PyResult<Self> {
        let mut sampler =
            NativeSampler::build(py, self.core.plan().clone(), self.clock.clone(), self.description.clone(), self.rate)?;
        sampler.respect_parent = self.respect_parent;
        sampler.defer = true;
        Ok(sampler)
    }

    #[getter]
    fn defer(&self) -> bool {
        self.defer
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
        let root = input.facts.parent.is_none();
        let decision = if self.keys.is_empty() {
            self.core.decide(&input.facts, &BareSpan { name: "", root })
        } else {
            let span = PySpanView::new(api, name, kind, attributes, root, &self.keys);
            self.core.decide(&input.facts, &span)
        };
        let labelled;
        let attributes = match (self.core.plan().record_rule && decision.sampled, decision.rule) {
            (true, Some(slot)) => {
                labelled = with_rule_attribute(py, attributes, self.core.plan().rule_name(slot));
                labelled.as_ref().or(attributes)
            }
            _ => attributes,
        };
        if self.defer && !decision.sampled && !decision.refused {
            if let Ok(result) = sampling_result::record_only(py, api, attributes, input.parent.as_ref()) {
                return Ok(result);
            }
        }
        match sampling_result::build(py, api, decision, attributes, input.parent.as_ref(), &self.root_trace_states, &self.last_trace_state, Some(&self.reusable_keep)) {
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
        now: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
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
        if self.core.plan().rule_slots() > 0 {
            let by_rule = PyDict::new(py);
            for (index, (decisions, sampled)) in snapshot.by_rule.iter().enumerate() {
                let entry = PyDict::new(py);
                entry.set_item("decisions", decisions)?;
                entry.set_item("sampled", sampled)?;
                by_rule.set_item(self.core.plan().rule_name(index), entry)?;
            }
            stats.set_item("rules", by_rule)?;
        }
        if let Some(bucket) = self.core.plan().rate_limit() {
            stats.set_item("rate_limited", bucket.refused())?;
        }
        if let Some(booster) = self.core.plan().booster() {
            let now = booster.signals.now();
            stats.set_item("boost", booster.multiplier(None, now))?;
            let counts = booster.signals.counts();
            let window = PyDict::new(py);
            window.set_item("spans", counts.spans)?;
            window.set_item("errors", counts.errors)?;
            window.set_item("slow", counts.slow)?;
            stats.set_item("window", window)?;
        }
        if let Some(pacer) = self.core.plan().pacer() {
            stats.set_item("budget_refused", pacer.status(0.0).refused)?;
        }
        if let Some(clock) = &self.clock {
            stats.set_item("clock_errors", clock.failures())?;
        }
        Ok(stats)
    }

    fn __repr__(&self) -> String {
        self.description.clone()
    }
}
