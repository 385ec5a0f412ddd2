//! Building samplers from Python arguments: every argument is checked here
//! (through `args`), then handed to the core as a plan.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::NativeSampler;
use crate::adaptive::{self, BoostPolicy, Booster, ErrorPolicy};
use crate::budget::pacer::{Downstream, Pacer};
use crate::budget::period::{Calendar, PeriodKind};
use crate::clock::{Clock, Moment};
use crate::config;
use crate::data::{Data, Path as DataPath};
use crate::plan::{Plan, Stage};
use crate::python::args;
use crate::python::convert::{from_data, to_data};
use crate::python::errors::{config_error, config_message};
use crate::python::py_clock;
use crate::python::signals::NativeSignals;
use crate::rules;
use crate::threshold::DEFAULT_PRECISION;

pub(super) fn parent_note(respect_parent: bool) -> &'static str {
    if respect_parent {
        ""
    } else {
        ",respect_parent=False"
    }
}

pub(super) fn precision_of(value: &Bound<'_, PyAny>) -> PyResult<u32> {
    let digits = args::count("precision", value, 0)?;
    config::precision("precision", i64::try_from(digits).unwrap_or(i64::MAX)).map_err(config_error)
}

/// A plan that can take a boost or a budget: not the legacy trace-id ratio.
fn rate_plan(inner: &NativeSampler, field: &str, what: &str) -> PyResult<Plan> {
    let plan = inner.core.plan().clone();
    if plan.stages.iter().any(|s| matches!(s, Stage::TraceIdRatio { .. })) {
        return Err(config_message(format!(
            "{field}: a TraceIdRatioSampler decides by the legacy rule, which has no probability to {what}; use a ProbabilitySampler or RuleSampler"
        )));
    }
    Ok(plan)
}

#[pymethods]
impl NativeSampler {
    /// Consistent probability sampling at `rate` (writes `th`).
    #[staticmethod]
    #[pyo3(signature = (rate, *, respect_parent = None, precision = None, class_name = "ProbabilitySampler"))]
    fn probability(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        respect_parent: Option<&Bound<'_, PyAny>>,
        precision: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let rate = args::probability("rate", rate)?;
        let respect_parent = args::optional(respect_parent, |v| args::flag("respect_parent", v))?.unwrap_or(true);
        let precision = args::optional(precision, precision_of)?.unwrap_or(DEFAULT_PRECISION);
        let mut plan = Plan::new(respect_parent, vec![Stage::probability(rate, precision)]);
        plan.precision = precision;
        let description = format!("{class_name}{{{rate}{}}}", parent_note(respect_parent));
        NativeSampler::build(py, plan, None, description, rate)
    }

    /// The SDK's `TraceIdRatioBased(rate)` decision.
    #[staticmethod]
    #[pyo3(signature = (rate, *, respect_parent = None, class_name = "TraceIdRatioSampler"))]
    fn trace_id_ratio(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        respect_parent: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let rate = args::probability("rate", rate)?;
        let respect_parent = args::optional(respect_parent, |v| args::flag("respect_parent", v))?.unwrap_or(true);
        let plan = Plan::new(respect_parent, vec![Stage::trace_id_ratio(rate)]);
        let description = format!("{class_name}{{{rate}{}}}", parent_note(respect_parent));
        NativeSampler::build(py, plan, None, description, rate)
    }

    /// Rule-based sampling from plain data (see `tracesieve.RuleSampler`).
    #[staticmethod]
    #[pyo3(signature = (rules, *, default_rate, multipliers = None, respect_parent = None, precision = None, clock = None, class_name = "RuleSampler"))]
    #[allow(clippy::too_many_arguments)]
    fn rules(
        py: Python<'_>,
        rules: &Bound<'_, PyAny>,
        default_rate: &Bound<'_, PyAny>,
        multipliers: Option<&Bound<'_, PyAny>>,
        respect_parent: Option<&Bound<'_, PyAny>>,
        precision: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let default_rate = args::probability("default_rate", default_rate)?;
        let respect_parent = args::optional(respect_parent, |v| args::flag("respect_parent", v))?.unwrap_or(true);
        let precision = args::optional(precision, precision_of)?.unwrap_or(DEFAULT_PRECISION);
        let rules_data = to_data(rules, &DataPath::root("rules"))?;
        let multipliers_data = match multipliers {
            Some(m) if !m.is_none() => to_data(m, &DataPath::root("multipliers"))?,
            _ => Data::List(Vec::new()),
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
    #[pyo3(signature = (base, signals, *, error_steps = None, error_rate_target = None, min_spans = None, latency_boost = None, slow_ratio = None, max_boost = None, class_name = "AdaptiveSampler"))]
    #[allow(clippy::too_many_arguments)]
    fn adaptive(
        py: Python<'_>,
        base: PyRef<'_, NativeSampler>,
        signals: PyRef<'_, NativeSignals>,
        error_steps: Option<&Bound<'_, PyAny>>,
        error_rate_target: Option<&Bound<'_, PyAny>>,
        min_spans: Option<&Bound<'_, PyAny>>,
        latency_boost: Option<&Bound<'_, PyAny>>,
        slow_ratio: Option<&Bound<'_, PyAny>>,
        max_boost: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let mut plan = rate_plan(&base, "base", "boost")?;
        if plan.booster().is_some() {
            return Err(config_message("base: already an AdaptiveSampler; give its base instead"));
        }
        let seed = BoostPolicy::seed();
        let min_spans = args::optional(min_spans, |v| args::count("min_spans", v, 0))?.unwrap_or(seed.min_spans);
        let target = args::optional(error_rate_target, |v| args::number("error_rate_target", v, "a fraction in (0, 1]"))?;
        let steps = match error_steps {
            Some(steps) if !steps.is_none() => {
                let path = DataPath::root("error_steps");
                Some(adaptive::steps_from_data(&path, &to_data(steps, &path)?).map_err(config_error)?)
            }
            _ => None,
        };
        let errors = match (target, steps) {
            (Some(_), Some(_)) => {
                return Err(config_message(
                    "error_rate_target: give either error_steps (count mode) or error_rate_target (rate mode), not both",
                ))
            }
            (Some(target), None) => ErrorPolicy::Rate { target, min_spans },
            (None, Some(steps)) => ErrorPolicy::Steps(steps),
            (None, None) => seed.errors,
        };
        let policy = BoostPolicy {
            errors,
            latency_boost: args::optional(latency_boost, |v| args::number("latency_boost", v, "a boost >= 1"))?
                .unwrap_or(seed.latency_boost),
            slow_ratio: args::optional(slow_ratio, |v| args::number("slow_ratio", v, "a fraction in (0, 1]"))?.unwrap_or(seed.slow_ratio),
            min_spans,
            max_boost: args::optional(max_boost, |v| args::number("max_boost", v, "a cap >= 1"))?.unwrap_or(seed.max_boost),
        };
        let booster = Booster::new(signals.signals.clone(), policy).map_err(config_error)?;
        plan.stages.push(Stage::Boost(Arc::new(booster)));
        let description = format!("{class_name}{{{}}}", base.description);
        NativeSampler::build(py, plan, signals.py_clock(), description, base.rate)
    }

    /// `inner`'s plan, paced to a budget per calendar `period` in `timezone`:
    /// `budget` spans, or money when `cost_per_span` is given.
    #[staticmethod]
    #[pyo3(signature = (inner, budget, *, cost_per_span = None, period = None, timezone = None, cap_forced_keeps = None, downstream = None, clock = None, store = None, class_name = "BudgetSampler"))]
    #[allow(clippy::too_many_arguments)]
    fn budget(
        py: Python<'_>,
        inner: PyRef<'_, NativeSampler>,
        budget: &Bound<'_, PyAny>,
        cost_per_span: Option<&Bound<'_, PyAny>>,
        period: Option<&Bound<'_, PyAny>>,
        timezone: Option<&Bound<'_, PyAny>>,
        cap_forced_keeps: Option<&Bound<'_, PyAny>>,
        downstream: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
        class_name: &str,
    ) -> PyResult<Self> {
        let mut plan = rate_plan(&inner, "inner", "pace")?;
        if plan.pacer().is_some() {
            return Err(config_message("inner: already a BudgetSampler; give its inner sampler instead"));
        }
        let money = args::positive("budget", budget)?;
        let cost = args::optional(cost_per_span, |v| args::positive("cost_per_span", v))?.unwrap_or(1.0);
        let spans = (money / cost + 1e-9).floor();
        if spans < 1.0 {
            return Err(config_message(format!(
                "budget: {} at cost_per_span {} buys {spans} spans; expected enough for at least one span",
                crate::words::plain(money),
                crate::words::plain(cost)
            )));
        }
        let period = args::optional(period, |v| args::text("period", v, "one of hour, day, week, month"))?;
        let kind = PeriodKind::parse(period.as_deref().unwrap_or("month")).map_err(config_error)?;
        let zone = args::optional(timezone, |v| args::text("timezone", v, "an IANA zone name such as 'UTC'"))?;
        let zone = zone.as_deref().unwrap_or("UTC");
        let calendar = Calendar::new(kind, zone).map_err(config_error)?;
        let cap = args::optional(cap_forced_keeps, |v| args::flag("cap_forced_keeps", v))?.unwrap_or(false);
        let downstream = args::optional(downstream, |v| args::text("downstream", v, "\"pace\" or \"follow\""))?;
        let downstream =
            Downstream::parse(downstream.as_deref().unwrap_or("pace")).map_err(|e| config_message(format!("downstream: {e}")))?;
        let clock = match py_clock::from_argument(clock)? {
            Some(c) => Some(c),
            None => inner.clock.clone(),
        };
        let system = crate::clock::SystemClock;
        let reading: &dyn Clock = match &clock {
            Some(c) => &**c,
            None => &system,
        };
        let store = crate::python::store::open(py, store)?;
        // Placing the pacer may wait for another process's lock: not holding the GIL.
        let pacer = py.detach(|| Pacer::in_store(&store, calendar, spans as u64, cap, downstream, &Moment::new(reading)));
        py_clock::interrupted()?;
        let pacer = pacer.map_err(config_error)?;
        plan.stages.push(Stage::Budget(Arc::new(pacer)));
        let description = format!("{class_name}{{{},budget={spans}/{}}}", inner.description, kind.name());
        NativeSampler::build(py, plan, clock, description, inner.rate)
    }

    /// A whole pipeline from a configuration document (plain data). Returns the
    /// sampler, the signals its processor feeds when it has an adaptive stage
    /// (`signals` reuses existing ones, for reloads), the resolved document
    /// (every setting with its default) and the plan in plain words.
    #[staticmethod]
    #[pyo3(signature = (document, *, clock = None, signals = None, previous = None, budget_store = None, class_name = "PipelineSampler"))]
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn pipeline<'py>(
        py: Python<'py>,
        document: &Bound<'py, PyAny>,
        clock: Option<&Bound<'py, PyAny>>,
        signals: Option<PyRef<'py, NativeSignals>>,
        previous: Option<PyRef<'py, NativeSampler>>,
        budget_store: Option<String>,
        class_name: &str,
    ) -> PyResult<(Self, Option<NativeSignals>, Bound<'py, PyAny>, Bound<'py, PyList>)> {
        let doc = to_data(document, &DataPath::root(""))?;
        let py_clock = match py_clock::from_argument(clock)? {
            Some(c) => Some(c),
            None => signals.as_ref().and_then(|s| s.py_clock()),
        };
        let clock_arc: Arc<dyn Clock> = match &py_clock {
            Some(c) => c.clone(),
            None => Arc::new(crate::clock::SystemClock),
        };
        let existing_signals = signals.as_ref().map(|s| s.signals.clone());
        // A reload carries the replaced pipeline's pacing and rate limit over.
        let existing = match &previous {
            Some(previous) => crate::pipeline::Existing::from_plan(previous.core.plan(), existing_signals),
            None => crate::pipeline::Existing { signals: existing_signals, ..Default::default() },
        };
        // Opening its store may wait for another process's lock: not holding the GIL.
        let pipeline = py.detach(|| crate::pipeline::parse(&doc, clock_arc, &existing, budget_store.as_deref()));
        py_clock::interrupted()?;
        let pipeline = pipeline.map_err(config_error)?;
        let words = crate::describe::describe(&pipeline.plan, &pipeline.settings, &pipeline.stage_names);
        let description = format!("{class_name}{{{}}}", pipeline.stage_names.join(","));
        let new_signals = match (pipeline.signals.clone(), signals) {
            (Some(_), Some(existing)) => Some(existing.share(py)),
            (Some(arc), None) => Some(NativeSignals::from_signals(py, arc, py_clock.clone())),
            (None, _) => None,
        };
        let resolved = from_data(py, &pipeline.resolved)?;
        let sampler = NativeSampler::build(py, pipeline.plan, py_clock, description, 1.0)?;
        Ok((sampler, new_signals, resolved, PyList::new(py, words)?))
    }

    /// The same sampler (same plan, shared stages, fresh counters) that ignores
    /// what remote parents send when `trust_incoming` is false.
    fn trusting(&self, py: Python<'_>, trust_incoming: bool) -> PyResult<Self> {
        let mut plan = self.core.plan().clone();
        plan.trust_incoming = trust_incoming;
        let mut description = self.description.clone();
        if !trust_incoming && description.ends_with('}') && !description.contains("trust_incoming") {
            description.insert_str(description.len() - 1, ",trust_incoming=False");
        }
        let mut sampler = NativeSampler::build(py, plan, self.clock.clone(), description, self.rate)?;
        sampler.respect_parent = self.respect_parent;
        sampler.defer = self.defer;
        sampler.composite = self.composite.clone();
        Ok(sampler)
    }

    /// The same sampler (same plan, its stages' state shared) with counters of its own.
    fn with_fresh_counters(&self, py: Python<'_>) -> PyResult<Self> {
        self.trusting(py, self.core.plan().trust_incoming)
    }

    /// Whether remote parents' sampled flag, `th` and `rv` are followed.
    #[getter]
    fn trust_incoming(&self) -> bool {
        self.core.plan().trust_incoming
    }

    /// The same sampler (same plan, shared stages, fresh counters) recording the
    /// spans it drops as RECORD_ONLY, for a tail-sampling processor to decide on.
    fn deferred(&self, py: Python<'_>) -> PyResult<Self> {
        let mut sampler = NativeSampler::build(py, self.core.plan().clone(), self.clock.clone(), self.description.clone(), self.rate)?;
        sampler.respect_parent = self.respect_parent;
        sampler.defer = true;
        sampler.composite = self.composite.clone();
        Ok(sampler)
    }
}
