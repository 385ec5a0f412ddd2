//! `NativeTailBuffer`: the tail processor's `on_end`, natively. Reads what the
//! buffer needs from an ended span (trace id, sampled flag, error, local root)
//! and files the span; the decisions stay with the Python processor's worker.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::args;
use super::py_clock::{self, PyClock};
use crate::budget::pacer::{TailClass, TailPolicy};
use crate::budget::tail::TailSpend;
use crate::clock::Clock;
use crate::tail_buffer::{Facts, Limits, Mark, Settled, Sharing, TailBuffer, Trace};

/// Announcements waiting to be sent at most (beyond: the oldest is dropped and counted).
const MAX_OUTBOX: usize = 10_000;

struct Api {
    status: Py<PyAny>,
    error: Py<PyAny>,
    exception: Py<PyString>,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

fn api(py: Python<'_>) -> PyResult<&'static Api> {
    API.get_or_try_init(py, || {
        Ok(Api {
            status: py.import("opentelemetry.trace.status")?.getattr("Status")?.unbind(),
            error: py.import("opentelemetry.trace")?.getattr("StatusCode")?.getattr("ERROR")?.unbind(),
            exception: PyString::intern(py, "exception").unbind(),
        })
    })
}

/// Seconds on a monotonic clock, from when the buffer was made.
pub(super) struct Monotonic(pub(super) Instant);

impl Clock for Monotonic {
    fn now(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    fn monotonic(&self) -> f64 {
        self.now()
    }
}

/// The tail processor's settings, checked once here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TailSettings {
    pub decision_wait: f64,
    pub trace_timeout: f64,
    pub latency_threshold: Option<f64>,
    pub latency_probability: f64,
    pub max_queue_size: u64,
    pub max_export_batch_size: u64,
    pub schedule_delay: f64,
}

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeTailBuffer {
    buffer: TailBuffer<Py<PyAny>>,
    clock: Arc<dyn Clock>,
    unreadable: AtomicU64,
    settings: TailSettings,
}

fn read_facts(py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<Facts> {
    let api = api(py)?;
    let sdk = span.hasattr(intern!(py, "_context"))?;
    let context = if sdk { span.getattr(intern!(py, "_context"))? } else { span.getattr(intern!(py, "context"))? };
    let context = context.cast_into::<PyTuple>()?;
    let trace_id = context.get_item(0)?.extract::<u128>()?;
    let sampled = context.get_item(3)?.extract::<u64>()? & 1 == 1;
    let parent = if sdk { span.getattr(intern!(py, "_parent"))? } else { span.getattr(intern!(py, "parent"))? };
    let local_root = parent.is_none() || parent.cast::<PyTuple>().is_ok_and(|p| p.get_item(2).and_then(|r| r.is_truthy()).unwrap_or(false));
    let status = if sdk { span.getattr(intern!(py, "_status"))? } else { span.getattr(intern!(py, "status"))? };
    let code = if status.get_type().is(api.status.bind(py)) {
        status.getattr(intern!(py, "_status_code"))?
    } else {
        status.getattr(intern!(py, "status_code"))?
    };
    let mut error = code.is(api.error.bind(py));
    if !error {
        let events = if sdk { span.getattr(intern!(py, "_events"))? } else { span.getattr(intern!(py, "events"))? };
        let events = events.getattr(intern!(py, "_dq")).unwrap_or(events);
        if !events.is_none() && events.len().unwrap_or(0) > 0 {
            for event in events.try_iter()? {
                if event?.getattr(intern!(py, "name"))?.eq(api.exception.bind(py))? {
                    error = true;
                    break;
                }
            }
        }
    }
    Ok(Facts { trace_id, sampled, error, local_root })
}

fn trace_tuple<'py>(py: Python<'py>, buffer: &TailBuffer<Py<PyAny>>, id: u128, trace: Trace<Py<PyAny>>) -> PyResult<Bound<'py, PyTuple>> {
    let root = trace.root.map(|i| trace.spans[i].clone_ref(py));
    let keep = trace.keep.map(|mark| (buffer.reason_text(mark.reason), mark.weight));
    let spans = PyList::new(py, trace.spans)?;
    PyTuple::new(
        py,
        [
            id.into_pyobject(py)?.into_any(),
            spans.into_any(),
            root.into_pyobject(py)?.into_any(),
            pyo3::types::PyBool::new(py, trace.head_sampled).to_owned().into_any(),
            pyo3::types::PyBool::new(py, trace.error).to_owned().into_any(),
            keep.into_pyobject(py)?.into_any(),
            pyo3::types::PyBool::new(py, trace.root_judged).to_owned().into_any(),
        ],
    )
}

fn traces<'py>(py: Python<'py>, buffer: &TailBuffer<Py<PyAny>>, items: Vec<(u128, Trace<Py<PyAny>>)>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (id, trace) in items {
        list.append(trace_tuple(py, buffer, id, trace)?)?;
    }
    Ok(list)
}

#[pymethods]
impl NativeTailBuffer {
    #[new]
    #[pyo3(signature = (*, decision_wait = None, trace_timeout = None, latency_threshold = None, latency_probability = None,
        max_traces = None, max_spans_per_trace = None, decision_cache_size = None, max_queue_size = None,
        max_export_batch_size = None, schedule_delay = None, share_ttl = None, judge_roots = true, clock = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        decision_wait: Option<&Bound<'_, PyAny>>,
        trace_timeout: Option<&Bound<'_, PyAny>>,
        latency_threshold: Option<&Bound<'_, PyAny>>,
        latency_probability: Option<&Bound<'_, PyAny>>,
        max_traces: Option<&Bound<'_, PyAny>>,
        max_spans_per_trace: Option<&Bound<'_, PyAny>>,
        decision_cache_size: Option<&Bound<'_, PyAny>>,
        max_queue_size: Option<&Bound<'_, PyAny>>,
        max_export_batch_size: Option<&Bound<'_, PyAny>>,
        schedule_delay: Option<&Bound<'_, PyAny>>,
        share_ttl: Option<&Bound<'_, PyAny>>,
        judge_roots: bool,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (settings, limits, sharing) = settings_from(
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
        let clock: Arc<dyn Clock> = match py_clock::from_argument(clock)? {
            Some(c) => c as Arc<PyClock>,
            None => Arc::new(Monotonic(Instant::now())),
        };
        Ok(NativeTailBuffer {
            buffer: TailBuffer::new(limits, sharing).judging_roots(judge_roots),
            clock,
            unreadable: AtomicU64::new(0),
            settings,
        })
    }

    /// The checked settings: (decision_wait, trace_timeout, latency_threshold or None,
    /// latency_probability, max_queue_size, max_export_batch_size, schedule_delay).
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

    /// The `SpanProcessor.on_end` hook: file the span, never raising.
    fn on_end(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        match read_facts(py, span) {
            Ok(facts) => {
                let now = self.clock.monotonic();
                self.buffer.offer(span.clone().unbind(), facts, now);
            }
            Err(_) => {
                self.unreadable.fetch_add(1, Relaxed);
            }
        }
        py_clock::interrupted()
    }

    fn now(&self) -> PyResult<f64> {
        let now = self.clock.monotonic();
        py_clock::interrupted()?;
        Ok(now)
    }

    /// Due traces as (trace_id, spans, root span or None, head_sampled, error,
    /// (reason, weight) of the likeliest keep known besides the head and an error, or None,
    /// whether the root was handed out by `take_fresh_roots` already).
    fn take_due<'py>(&self, py: Python<'py>, wait: f64, timeout: f64) -> PyResult<Bound<'py, PyList>> {
        let now = self.clock.monotonic();
        py_clock::interrupted()?;
        traces(py, &self.buffer, self.buffer.take_due(now, wait, timeout))
    }

    fn take_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        traces(py, &self.buffer, self.buffer.take_all())
    }

    /// Record a trace's decision: `reason` None drops it; "head" keeps it as
    /// the head sampler did (exported unchanged); any other reason keeps it
    /// with that reason and `weight` (its spans' adjusted count), spending the
    /// budget unless the head kept it (`head`). Kept spans are queued (a full
    /// queue drops and counts them). Returns "kept", "refused" (by the budget) or "dropped".
    #[pyo3(signature = (trace_id, spans, reason, weight = 1.0, head = false))]
    fn settle(&self, trace_id: u128, spans: Vec<Py<PyAny>>, reason: Option<&str>, weight: f64, head: bool) -> &'static str {
        let verdict = reason.map(|text| Mark { reason: self.buffer.reason(text), weight });
        match self.buffer.settle(trace_id, spans, verdict, head) {
            Settled::Kept => "kept",
            Settled::Refused => "refused",
            Settled::Dropped => "dropped",
        }
    }

    /// Have the traces this buffer keeps spend `sampler`'s budget stage (None:
    /// spend none), `order` first to last when the allowance is short, the
    /// `exempt` kinds whatever the budget says.
    #[pyo3(signature = (sampler, order = None, exempt = None))]
    fn set_budget(
        &self,
        sampler: Option<PyRef<'_, super::sampler::NativeSampler>>,
        order: Option<Vec<Bound<'_, pyo3::types::PyString>>>,
        exempt: Option<Vec<Bound<'_, pyo3::types::PyString>>>,
    ) -> PyResult<()> {
        // The kinds are checked even with no budget to spend: a misspelt one fails at construction.
        let policy = tail_policy(order, exempt)?;
        let Some(sampler) = sampler else {
            self.buffer.set_budget(None);
            return Ok(());
        };
        let (pacer, clock) = sampler.budget_parts().ok_or_else(|| {
            super::errors::config_message("budget: expected a BudgetSampler or a pipeline with a budget stage, got a sampler without one")
        })?;
        self.buffer.set_budget(Some(Arc::new(TailSpend::new(pacer, policy, clock))));
        Ok(())
    }

    /// Up to `max` queued spans as (span, reason or None for head-kept, weight, late).
    fn take_batch<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for queued in self.buffer.take_batch(max) {
            let reason = (queued.mark.reason != crate::tail_buffer::HEAD).then(|| self.buffer.reason_text(queued.mark.reason));
            list.append((queued.span, reason, queued.mark.weight, queued.late))?;
        }
        Ok(list)
    }

    /// Local roots that ended since the last call, as (trace_id, root span).
    fn take_fresh_roots(&self, py: Python<'_>) -> Vec<(u128, Py<PyAny>)> {
        self.buffer.take_fresh_roots(|span| span.clone_ref(py))
    }

    /// A keep decided on a buffered trace's root (such as "latency" or
    /// "rule:<name>", with its adjusted count); announced when sharing.
    fn keep(&self, trace_id: u128, reason: &str, weight: f64) {
        self.buffer.keep(trace_id, reason, weight);
    }

    /// Up to `max` waiting announcements as one batch of bytes, or None.
    fn take_announcements<'py>(&self, py: Python<'py>, max: usize) -> Option<Bound<'py, pyo3::types::PyBytes>> {
        self.buffer.take_announcements(max).map(|bytes| pyo3::types::PyBytes::new(py, &bytes))
    }

    /// A batch `take_announcements` gave that could not be sent: queued again, first.
    fn return_announcements(&self, batch: &[u8]) {
        self.buffer.return_announcements(batch);
    }

    /// A batch of announcements from another process.
    fn hear(&self, batch: &[u8]) -> PyResult<()> {
        let now = self.clock.monotonic();
        py_clock::interrupted()?;
        self.buffer.hear(batch, now);
        Ok(())
    }

    /// Whether this buffer shares decisions.
    #[getter]
    fn sharing(&self) -> bool {
        self.buffer.sharing()
    }

    /// Take no more spans (a shutdown began): those that end from now on are
    /// dropped and counted in `spans_after_shutdown`.
    fn close(&self) {
        self.buffer.close();
    }

    /// Remove everything queued; returns how many spans that was (shutdown counts them as lost).
    fn drain(&self) -> usize {
        self.buffer.drain_queue().len()
    }

    /// Span and trace counts, sizes now, and spans that could not be read.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        buffer_counts(py, &self.buffer, self.unreadable.load(Relaxed))
    }
}

/// The tail settings, checked: (settings, the buffer's limits, sharing when `share_ttl` is given).
#[allow(clippy::too_many_arguments)]
pub(crate) fn settings_from(
    decision_wait: Option<&Bound<'_, PyAny>>,
    trace_timeout: Option<&Bound<'_, PyAny>>,
    latency_threshold: Option<&Bound<'_, PyAny>>,
    latency_probability: Option<&Bound<'_, PyAny>>,
    max_traces: Option<&Bound<'_, PyAny>>,
    max_spans_per_trace: Option<&Bound<'_, PyAny>>,
    decision_cache_size: Option<&Bound<'_, PyAny>>,
    max_queue_size: Option<&Bound<'_, PyAny>>,
    max_export_batch_size: Option<&Bound<'_, PyAny>>,
    schedule_delay: Option<&Bound<'_, PyAny>>,
    share_ttl: Option<&Bound<'_, PyAny>>,
    max_outbox: usize,
) -> PyResult<(TailSettings, Limits, Option<Sharing>)> {
    let seconds = |field: &str, value: Option<&Bound<'_, PyAny>>, default: f64| {
        args::optional(value, |v| args::seconds(field, v, true)).map(|v| v.unwrap_or(default))
    };
    let count = |field: &str, value: Option<&Bound<'_, PyAny>>, default: u64| {
        args::optional(value, |v| args::count(field, v, 1)).map(|v| v.unwrap_or(default))
    };
    let settings = TailSettings {
        decision_wait: seconds("decision_wait", decision_wait, 2.0)?,
        trace_timeout: seconds("trace_timeout", trace_timeout, 30.0)?,
        latency_threshold: args::optional(latency_threshold, |v| args::seconds("latency_threshold", v, false))?,
        latency_probability: args::optional(latency_probability, |v| args::probability("latency_probability", v))?.unwrap_or(1.0),
        max_queue_size: count("max_queue_size", max_queue_size, 100_000)?,
        max_export_batch_size: count("max_export_batch_size", max_export_batch_size, 512)?,
        schedule_delay: seconds("schedule_delay", schedule_delay, 1.0)?,
    };
    let limits = Limits {
        max_traces: count("max_traces", max_traces, 10_000)? as usize,
        max_spans_per_trace: count("max_spans_per_trace", max_spans_per_trace, 1_000)? as usize,
        decision_cache: count("decision_cache_size", decision_cache_size, 100_000)? as usize,
        max_queue: settings.max_queue_size as usize,
    };
    let sharing = args::optional(share_ttl, |v| args::seconds("share_ttl", v, false))?.map(|ttl| Sharing { ttl, max_outbox });
    Ok((settings, limits, sharing))
}

/// A tail buffer's span and trace counts and sizes now, as a dict.
pub(super) fn buffer_counts<'py, S>(py: Python<'py>, buffer: &TailBuffer<S>, unreadable: u64) -> PyResult<Bound<'py, PyDict>> {
    let c = &buffer.counts;
    let (traces, spans, queued, decisions) = buffer.sizes();
    let (waiting, held, outbox_dropped, expired, evicted) = buffer.share_sizes();
    let out = PyDict::new(py);
    let kept = c.late_kept.load(Relaxed) + c.decided_kept.load(Relaxed);
    for (key, value) in [
        ("spans_ended", c.ended.load(Relaxed)),
        ("spans_after_shutdown", c.after_close.load(Relaxed)),
        ("spans_kept", kept),
        ("head_kept", c.head_kept.load(Relaxed)),
        ("late_kept", c.late_kept.load(Relaxed)),
        ("late_dropped", c.late_dropped.load(Relaxed)),
        ("spans_dropped", c.decided_dropped.load(Relaxed)),
        ("traces_kept", c.traces_kept.load(Relaxed)),
        ("traces_dropped", c.traces_dropped.load(Relaxed)),
        ("evicted_early", c.evicted_early.load(Relaxed)),
        ("queue_full_dropped", c.queue_full.load(Relaxed)),
        ("spans_taken", c.taken.load(Relaxed)),
        ("unreadable_spans", unreadable),
        ("traces_buffered", traces as u64),
        ("spans_buffered", spans as u64),
        ("spans_queued", queued as u64),
        ("decisions_remembered", decisions as u64),
        ("shared_kept", c.shared_kept.load(Relaxed)),
        ("announced", c.announced.load(Relaxed)),
        ("announcements_waiting", waiting as u64),
        ("announcements_dropped", outbox_dropped),
        ("heard", c.heard.load(Relaxed)),
        ("heard_held", held as u64),
        ("heard_expired", expired),
        ("heard_evicted", evicted),
        ("heard_too_late", c.heard_too_late.load(Relaxed)),
        ("bad_batches", c.bad_batches.load(Relaxed)),
        ("retained_kept", c.retained_kept.load(Relaxed)),
        ("captures", c.captures.load(Relaxed)),
        ("captures_beyond_horizon", c.captures_beyond_horizon.load(Relaxed)),
        ("captures_refused", c.captures_refused.load(Relaxed)),
        ("budget_refused_error", c.budget_refused_traces[0].load(Relaxed)),
        ("budget_refused_latency", c.budget_refused_traces[1].load(Relaxed)),
        ("budget_refused_rule", c.budget_refused_traces[2].load(Relaxed)),
        ("budget_refused_spans", c.budget_refused_spans.iter().map(|n| n.load(Relaxed)).sum()),
    ] {
        out.set_item(key, value)?;
    }
    Ok(out)
}

/// The tail's budget priorities: `order` (every kind, first to last) and the
/// `exempt` kinds, as names ("error", "latency", "rule").
pub(super) fn tail_policy(
    order: Option<Vec<Bound<'_, pyo3::types::PyString>>>,
    exempt: Option<Vec<Bound<'_, pyo3::types::PyString>>>,
) -> PyResult<TailPolicy> {
    let texts = |field: &str, items: Option<Vec<Bound<'_, pyo3::types::PyString>>>| {
        items.map(|items| {
            items.iter().enumerate().map(|(i, s)| super::args::utf8(&format!("{field}[{i}]"), s)).collect::<PyResult<Vec<_>>>()
        })
    };
    let order = texts("budget_priorities", order).transpose()?;
    let exempt = texts("budget_exempt", exempt).transpose()?;
    let names = "\"error\", \"latency\", \"rule\"";
    let class = |field: &str, name: &str| {
        TailClass::parse(name).ok_or_else(|| {
            super::errors::config_message(format!("{field}: {} is no tail reason; expected some of {names}", crate::words::quoted(name)))
        })
    };
    let mut policy = TailPolicy::default();
    if let Some(order) = order {
        let classes = order.iter().map(|name| class("budget_priorities", name)).collect::<PyResult<Vec<_>>>()?;
        let mut seen = [false; 3];
        for class in &classes {
            seen[*class as usize] = true;
        }
        if classes.len() != 3 || !seen.iter().all(|s| *s) {
            return Err(super::errors::config_message(format!(
                "budget_priorities: {} must name each of {names} once, most important first",
                crate::words::clipped(format!("{order:?}"))
            )));
        }
        policy.order = [classes[0], classes[1], classes[2]];
    }
    for name in exempt.unwrap_or_default() {
        policy.exempt[class("budget_exempt", &name)? as usize] = true;
    }
    Ok(policy)
}
