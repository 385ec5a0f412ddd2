//! `NativeRecorder`: a provider's recording engine, its settings, and what its
//! worker calls (decide, take kept records as what the SDK's span needs to be
//! replayed, capture, share). Tracers hold the recorder's slot, so that a
//! forked child swaps in a fresh engine that every tracer then uses.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::values::attributes_to_python;
use crate::budget::tail::TailSpend;
use crate::clock::Clock;
use crate::data::Path as DataPath;
use crate::python::args;
use crate::python::convert::to_data;
use crate::python::errors::{config_error, config_message};
use crate::python::py_clock::{self, PyClock};
use crate::python::tail::{buffer_counts, tail_policy, Monotonic};
use crate::recording::engine::{Engine, Judge};
use crate::recording::record::{Limits, SpanRecord, TraceState};
use crate::rules::RuleSet;
use crate::tail_buffer::{self, Capture, Sharing};

/// Forks seen by this process (a span from before the last fork is not this process's).
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Announcements waiting to be sent at most.
const MAX_OUTBOX: usize = 10_000;

pub fn fork_generation() -> u64 {
    FORKS.load(Relaxed)
}

/// In a forked child, before any Python code runs: a new fork generation, and
/// fresh randomness for ids (the child would otherwise repeat its parent's).
extern "C" fn in_forked_child() {
    FORKS.fetch_add(1, Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    fastrand::seed(fastrand::u64(..) ^ nanos ^ (u64::from(std::process::id()) << 32));
}

/// Count forks and reseed ids from the first recorder on (once per process).
fn watch_forks() {
    static WATCHING: std::sync::Once = std::sync::Once::new();
    WATCHING.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic and this thread's generator.
        unsafe { libc::pthread_atfork(None, None, Some(in_forked_child)) };
    });
}

/// What a recording engine is built from (again, in a forked child).
#[derive(Clone)]
struct Blueprint {
    limits: tail_buffer::Limits,
    sharing: Option<Sharing>,
    retention_bytes: usize,
    latency_ns: Option<u64>,
    latency_probability: f64,
    rules: Option<Arc<RuleSet>>,
    span_limits: Limits,
    max_span_attribute_length: Option<usize>,
    max_attribute_length: Option<usize>,
    clock: Option<Arc<PyClock>>,
}

/// A recording engine and what its spans are recorded with.
pub struct Recorder {
    pub engine: Engine,
    pub limits: Limits,
    pub max_span_attribute_length: Option<usize>,
    pub max_attribute_length: Option<usize>,
    clock: Arc<dyn Clock>,
    /// The fork generation the engine belongs to.
    pub generation: u64,
    pub recorded: AtomicU64,
    pub not_recorded: AtomicU64,
    /// Spans started before a fork and ended after it, in the child: not this process's.
    pub from_before_fork: AtomicU64,
    /// The adaptive stage's windows, fed every recorded span as it ends.
    signals: arc_swap::ArcSwapOption<crate::adaptive::Signals>,
}

/// The SDK's `SpanLimits` in field order: attributes, events, links, event and link attributes, lengths.
type SpanLimitsTuple = (Option<usize>, Option<usize>, Option<usize>, Option<usize>, Option<usize>, Option<usize>, Option<usize>);

impl Recorder {
    fn build(blueprint: &Blueprint) -> Recorder {
        let judge =
            Judge { latency_ns: blueprint.latency_ns, latency_probability: blueprint.latency_probability, rules: blueprint.rules.clone() };
        let clock: Arc<dyn Clock> = match &blueprint.clock {
            Some(clock) => clock.clone(),
            None => Arc::new(Monotonic(Instant::now())),
        };
        Recorder {
            engine: Engine::new(blueprint.limits, blueprint.sharing, blueprint.retention_bytes, judge),
            limits: blueprint.span_limits,
            max_span_attribute_length: blueprint.max_span_attribute_length,
            max_attribute_length: blueprint.max_attribute_length,
            clock,
            generation: fork_generation(),
            recorded: AtomicU64::new(0),
            not_recorded: AtomicU64::new(0),
            from_before_fork: AtomicU64::new(0),
            signals: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// A recorded span ended: tell the adaptive stage's windows, if any.
    pub fn feed(&self, record: &SpanRecord) {
        if let Some(signals) = self.signals.load().as_deref() {
            crate::recording::feed::feed(signals, record);
        }
    }

    /// Monotonic seconds, for the engine.
    pub fn now(&self) -> f64 {
        self.clock.monotonic()
    }

    /// A span ended: hand its encoded record to the engine (never waiting on
    /// I/O). A span started before a fork and ended in the child is counted
    /// by the recorder now in force (`slot`), not recorded.
    pub fn finish(&self, slot: &Slot, record: crate::recording::ring::Record, facts: tail_buffer::Facts) {
        if self.generation != fork_generation() {
            slot.0.load().from_before_fork.fetch_add(1, Relaxed);
            return;
        }
        self.recorded.fetch_add(1, Relaxed);
        let now = self.now();
        self.engine.offer_encoded(record, facts, now);
    }
}

/// The recorder in force, swapped whole after a fork.
pub struct Slot(pub ArcSwap<Recorder>);

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeRecorder {
    pub slot: Arc<Slot>,
    blueprint: Blueprint,
    settings: crate::python::tail::TailSettings,
    budget: Mutex<Option<Arc<TailSpend>>>,
    signals: Mutex<Option<Arc<crate::adaptive::Signals>>>,
}

impl NativeRecorder {
    fn current(&self) -> arc_swap::Guard<Arc<Recorder>> {
        self.slot.0.load()
    }
}

fn pairs<'py>(py: Python<'py>, pairs: &TraceState) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// What `tracesieve._spans.replay` takes: a record's fields, as Python values.
fn replay_tuple<'py>(py: Python<'py>, record: &SpanRecord, tail_kept: bool) -> PyResult<Bound<'py, PyTuple>> {
    let flags = if tail_kept { record.flags | 1 } else { record.flags };
    let context = (record.trace_id, record.span_id, false, flags, pairs(py, &record.trace_state)?).into_pyobject(py)?;
    let parent = match &record.parent {
        None => py.None().into_bound(py),
        Some(parent) => {
            (record.trace_id, parent.span_id, parent.remote, parent.flags, pairs(py, &parent.trace_state)?).into_pyobject(py)?.into_any()
        }
    };
    let events = PyList::empty(py);
    for event in &record.events {
        events.append((event.name.as_str(), event.time, attributes_to_python(py, &event.attributes)?, event.dropped))?;
    }
    let links = PyList::empty(py);
    for link in &record.links {
        let fields = (link.trace_id, link.span_id, link.remote, link.flags, pairs(py, &link.trace_state)?);
        links.append((fields, attributes_to_python(py, &link.attributes)?, link.dropped))?;
    }
    let baggage = PyList::empty(py);
    for (key, value) in &record.baggage {
        baggage.append((key.as_str(), value.as_str()))?;
    }
    let items: Vec<Bound<'py, PyAny>> = vec![
        context.into_any(),
        parent,
        record.tracer.into_pyobject(py)?.into_any(),
        record.kind.into_pyobject(py)?.into_any(),
        record.start_name.as_str().into_pyobject(py)?.into_any(),
        record.name.as_str().into_pyobject(py)?.into_any(),
        record.start_time.into_pyobject(py)?.into_any(),
        record.end_time.into_pyobject(py)?.into_any(),
        attributes_to_python(py, &record.start_attributes().to_vec())?.into_any(),
        record.start_dropped.into_pyobject(py)?.into_any(),
        attributes_to_python(py, &record.later_attributes().to_vec())?.into_any(),
        record.later_invalid().into_pyobject(py)?.into_any(),
        record.later_evictions.into_pyobject(py)?.into_any(),
        events.into_any(),
        record.events_dropped.into_pyobject(py)?.into_any(),
        links.into_any(),
        record.links_dropped.into_pyobject(py)?.into_any(),
        record.status.into_pyobject(py)?.into_any(),
        record.status_description.as_deref().into_pyobject(py)?.into_any(),
        baggage.into_any(),
        pyo3::types::PyBool::new(py, true).to_owned().into_any(),
        pyo3::types::PyBool::new(py, true).to_owned().into_any(),
    ];
    PyTuple::new(py, items)
}

#[pymethods]
impl NativeRecorder {
    /// A recording engine. Tail settings as `TailSamplingProcessor`'s;
    /// `rules`: keep rules (RuleSampler conditions with `"action": "keep"`);
    /// `span_limits`: the resolved `SpanLimits` as (max_attributes, max_events,
    /// max_links, max_event_attributes, max_link_attributes,
    /// max_span_attribute_length, max_attribute_length), each None for no limit.
    #[new]
    #[pyo3(signature = (*, decision_wait = None, trace_timeout = None, latency_threshold = None, latency_probability = None,
        rules = None, max_traces = None, max_spans_per_trace = None, decision_cache_size = None, max_queue_size = None,
        max_export_batch_size = None, schedule_delay = None, share_ttl = None, retention_bytes = None,
        span_limits = None, clock = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        decision_wait: Option<&Bound<'_, PyAny>>,
        trace_timeout: Option<&Bound<'_, PyAny>>,
        latency_threshold: Option<&Bound<'_, PyAny>>,
        latency_probability: Option<&Bound<'_, PyAny>>,
        rules: Option<&Bound<'_, PyAny>>,
        max_traces: Option<&Bound<'_, PyAny>>,
        max_spans_per_trace: Option<&Bound<'_, PyAny>>,
        decision_cache_size: Option<&Bound<'_, PyAny>>,
        max_queue_size: Option<&Bound<'_, PyAny>>,
        max_export_batch_size: Option<&Bound<'_, PyAny>>,
        schedule_delay: Option<&Bound<'_, PyAny>>,
        share_ttl: Option<&Bound<'_, PyAny>>,
        retention_bytes: Option<&Bound<'_, PyAny>>,
        span_limits: Option<SpanLimitsTuple>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (settings, limits, sharing) = crate::python::tail::settings_from(
            decision_wait,
            trace_timeout,
            latency_threshold,
            latency_probability,
            max_traces,
            max_spans_per_trace,
            decision_cache_size,
            max_queue_size,
            max_export_batch_size,
            schedule_delay,
            share_ttl,
            MAX_OUTBOX,
        )?;
        let retention_bytes = args::optional(retention_bytes, |v| args::count("retention_bytes", v, 0))?.unwrap_or(64 << 20);
        let rules = match rules {
            Some(rules) if !rules.is_none() => {
                let data = to_data(rules, &DataPath::root("rules"))?;
                let set = crate::rules::parse(&data, 0.0, &crate::data::Data::List(Vec::new())).map_err(config_error)?;
                (!set.rules.is_empty()).then(|| Arc::new(set))
            }
            _ => None,
        };
        let (
            max_attributes,
            max_events,
            max_links,
            max_event_attributes,
            max_link_attributes,
            max_span_attribute_length,
            max_attribute_length,
        ) = span_limits.unwrap_or((Some(128), Some(128), Some(128), Some(128), Some(128), None, None));
        let blueprint = Blueprint {
            limits,
            sharing,
            retention_bytes: usize::try_from(retention_bytes)
                .ok()
                .filter(|bytes| *bytes <= crate::recording::ring::MAX_CAPACITY)
                .ok_or_else(|| {
                    config_message(format!(
                        "retention_bytes: {retention_bytes} is out of range; expected bytes from 0 to {}",
                        crate::recording::ring::MAX_CAPACITY
                    ))
                })?,
            latency_ns: settings.latency_threshold.map(|seconds| (seconds * 1e9) as u64),
            latency_probability: settings.latency_probability,
            rules,
            span_limits: Limits { max_attributes, max_events, max_links, max_event_attributes, max_link_attributes },
            max_span_attribute_length,
            max_attribute_length,
            clock: py_clock::from_argument(clock)?,
        };
        watch_forks();
        let slot = Arc::new(Slot(ArcSwap::from_pointee(Recorder::build(&blueprint))));
        Ok(NativeRecorder { slot, blueprint, settings, budget: Mutex::new(None), signals: Mutex::new(None) })
    }

    /// The checked tail settings, as `NativeTailBuffer.settings` gives them.
    #[getter]
    fn settings(&self) -> (f64, f64, Option<f64>, f64, u64, u64, f64) {
        let s = self.settings;
        (
            s.decision_wait,
            s.trace_timeout,
            s.latency_threshold,
            s.latency_probability,
            s.max_queue_size,
            s.max_export_batch_size,
            s.schedule_delay,
        )
    }

    /// A fresh engine in a forked child (the parent's records stay the parent's).
    fn reset(&self) {
        let recorder = Recorder::build(&self.blueprint);
        if let Some(budget) = self.budget.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            recorder.engine.buffer.set_budget(Some(budget));
        }
        recorder.signals.store(self.signals.lock().unwrap_or_else(|p| p.into_inner()).clone());
        self.slot.0.store(Arc::new(recorder));
    }

    /// Feed every recorded span, as it ends, into the windows of an adaptive
    /// stage (`ErrorWindowProcessor`'s, which then sees no span itself).
    fn feed_signals(&self, signals: Option<PyRef<'_, crate::python::signals::NativeSignals>>) {
        let signals = signals.map(|s| s.signals.clone());
        *self.signals.lock().unwrap_or_else(|p| p.into_inner()) = signals.clone();
        self.current().signals.store(signals);
    }

    /// Judge the local roots that ended, then decide the traces that are due
    /// (every buffered trace with `everything`).
    #[pyo3(signature = (everything = false))]
    fn decide(&self, py: Python<'_>, everything: bool) -> PyResult<()> {
        let recorder = self.current();
        let now = recorder.now();
        py_clock::interrupted()?;
        let (wait, timeout) = (self.settings.decision_wait, self.settings.trace_timeout);
        py.detach(|| recorder.engine.decide(now, wait, timeout, everything));
        Ok(())
    }

    /// Judge the local roots that ended (sharing announces their keeps at once).
    fn judge_roots(&self, py: Python<'_>) {
        let recorder = self.current();
        py.detach(|| recorder.engine.judge_roots());
    }

    /// Up to `max` kept records, as (replay tuple, reason or None for a head
    /// keep, weight, late).
    fn take_batch<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyList>> {
        let recorder = self.current();
        let list = PyList::empty(py);
        for queued in recorder.engine.buffer.take_batch(max) {
            let Some(record) = SpanRecord::decode(&queued.span) else {
                recorder.engine.unreadable.fetch_add(1, Relaxed);
                continue;
            };
            let reason = (queued.mark.reason != tail_buffer::HEAD).then(|| recorder.engine.buffer.reason_text(queued.mark.reason));
            let tuple = replay_tuple(py, &record, reason.is_some())?;
            list.append((tuple, reason, queued.mark.weight, queued.late))?;
        }
        Ok(list)
    }

    /// Keep a trace after the fact: "pending" (still buffered), "kept" (already),
    /// "retained" (its retained spans queued now; the count follows),
    /// "beyond_horizon" (none retained: only spans still to end are kept), or
    /// "refused" (retained, the count following, but the budget has no room).
    fn capture(&self, trace_id: u128) -> (&'static str, usize) {
        match self.current().engine.capture(trace_id) {
            Capture::Pending => ("pending", 0),
            Capture::AlreadyKept => ("kept", 0),
            Capture::Retained(count) => ("retained", count),
            Capture::BeyondHorizon => ("beyond_horizon", 0),
            Capture::Refused(count) => ("refused", count),
        }
    }

    /// Have the traces kept here spend `sampler`'s budget (see `NativeTailBuffer.set_budget`).
    #[pyo3(signature = (sampler, order = None, exempt = None))]
    fn set_budget(
        &self,
        sampler: Option<PyRef<'_, crate::python::sampler::NativeSampler>>,
        order: Option<Vec<Bound<'_, pyo3::types::PyString>>>,
        exempt: Option<Vec<Bound<'_, pyo3::types::PyString>>>,
    ) -> PyResult<()> {
        // The kinds are checked even with no budget to spend: a misspelt one fails at construction.
        let policy = tail_policy(order, exempt)?;
        let spend = match sampler {
            None => None,
            Some(sampler) => {
                let (pacer, clock) = sampler.budget_parts().ok_or_else(|| {
                    config_message("budget: expected a BudgetSampler or a pipeline with a budget stage, got a sampler without one")
                })?;
                Some(Arc::new(TailSpend::new(pacer, policy, clock)))
            }
        };
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = spend.clone();
        self.current().engine.buffer.set_budget(spend.map(|s| s as Arc<dyn tail_buffer::TailBudget>));
        Ok(())
    }

    fn take_announcements<'py>(&self, py: Python<'py>, max: usize) -> Option<Bound<'py, PyBytes>> {
        self.current().engine.buffer.take_announcements(max).map(|bytes| PyBytes::new(py, &bytes))
    }

    fn return_announcements(&self, batch: &[u8]) {
        self.current().engine.buffer.return_announcements(batch);
    }

    fn hear(&self, py: Python<'_>, batch: &[u8]) -> PyResult<()> {
        let recorder = self.current();
        let now = recorder.now();
        py_clock::interrupted()?;
        py.detach(|| recorder.engine.buffer.hear(batch, now));
        Ok(())
    }

    #[getter]
    fn sharing(&self) -> bool {
        self.current().engine.buffer.sharing()
    }

    /// Take no more spans (a shutdown began): those that end from now on are
    /// dropped and counted in `spans_after_shutdown`.
    fn close(&self) {
        self.current().engine.buffer.close();
    }

    /// Remove everything queued; how many records that was.
    fn drain(&self) -> usize {
        self.current().engine.buffer.drain_queue().len()
    }

    /// Buffered traces removed (at shutdown): how many records they held.
    fn drop_buffered(&self) -> usize {
        self.current().engine.buffer.take_all().iter().map(|(_, trace)| trace.spans.len()).sum()
    }

    /// Counts: the tail buffer's, the ring's, traces kept by reason, spans recorded.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let recorder = self.current();
        let out = buffer_counts(py, &recorder.engine.buffer, recorder.engine.unreadable.load(Relaxed))?;
        for (reason, count) in recorder.engine.kept_by_reason() {
            out.set_item(format!("kept_{reason}"), count)?;
        }
        out.set_item("spans_recorded", recorder.recorded.load(Relaxed))?;
        out.set_item("spans_not_recorded", recorder.not_recorded.load(Relaxed))?;
        out.set_item("spans_from_before_fork", recorder.from_before_fork.load(Relaxed))?;
        let (held, bytes, retained, evicted, too_large, capacity) = match &recorder.engine.ring {
            Some(ring) => {
                let (held, bytes) = ring.sizes();
                let c = &ring.counts;
                (held, bytes, c.retained.load(Relaxed), c.evicted.load(Relaxed), c.too_large.load(Relaxed), ring.capacity())
            }
            None => (0, 0, 0, 0, 0, 0),
        };
        out.set_item("retained_spans", held)?;
        out.set_item("retained_bytes", bytes)?;
        out.set_item("retention_bytes", capacity)?;
        out.set_item("retained_total", retained)?;
        out.set_item("retention_evicted", evicted)?;
        out.set_item("retention_too_large", too_large)?;
        Ok(out)
    }

    /// A tracer recording into this engine (see `NativeTracer`).
    #[pyo3(signature = (sampler, index, id_generator = None, random_flag = 0))]
    fn tracer(&self, sampler: Py<PyAny>, index: u32, id_generator: Option<Py<PyAny>>, random_flag: u8) -> super::tracer::NativeTracer {
        super::tracer::NativeTracer::new(self.slot.clone(), sampler, index, id_generator, random_flag)
    }
}
