//! `NativeSignals`: the windows an `ErrorWindowProcessor` feeds, with a native
//! `on_end` that reads an ended span (status, exception events, duration,
//! route) and records it. It never raises into the application.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

use super::args;
use super::errors::{config_error, config_message};
use super::otel_api::OtelApi;
use super::py_clock::{self, PyClock};
use crate::adaptive::Signals;
use crate::clock::{Clock, SystemClock};
use crate::rules::ROUTE_KEYS;

/// SDK objects `on_end` compares against, looked up once.
struct SpanApi {
    status: Py<PyAny>,
    sdk_span: Py<PyAny>,
    readable_span: Py<PyAny>,
    status_error: Py<PyAny>,
    exception: Py<PyString>,
}

static SPAN_API: PyOnceLock<SpanApi> = PyOnceLock::new();

fn span_api(py: Python<'_>) -> PyResult<&'static SpanApi> {
    SPAN_API.get_or_try_init(py, || {
        let sdk = py.import("opentelemetry.sdk.trace")?;
        Ok(SpanApi {
            status: py.import("opentelemetry.trace.status")?.getattr("Status")?.unbind(),
            sdk_span: sdk.getattr("_Span")?.unbind(),
            readable_span: sdk.getattr("ReadableSpan")?.unbind(),
            status_error: py.import("opentelemetry.trace")?.getattr("StatusCode")?.getattr("ERROR")?.unbind(),
            exception: PyString::intern(py, "exception").unbind(),
        })
    })
}

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeSignals {
    pub(crate) signals: Arc<Signals>,
    py_clock: Option<Arc<PyClock>>,
    route_keys: Vec<Py<PyString>>,
    failures: std::sync::atomic::AtomicU64,
}

/// What `on_end` needs from a span.
struct Ended<'py> {
    error: bool,
    duration: Option<f64>,
    route: Option<Bound<'py, PyString>>,
    /// How many spans this one stands for: its adjusted count from `th`.
    weight: u64,
}

/// How many spans an ended span stands for. When every span is recorded
/// (drops deferred as RECORD_ONLY), each counts once. Otherwise only sampled
/// spans arrive, each standing for its adjusted count 1/p from `th`; the
/// windows count whole spans, so the fraction is rounded up or down at random,
/// using the span id's bits (independent of the trace id that decided
/// sampling), which keeps every window total unbiased.
fn weight_of(py: Python<'_>, span_context: &Bound<'_, PyAny>, signals: &Signals) -> PyResult<u64> {
    let Ok(fields) = span_context.cast::<pyo3::types::PyTuple>() else { return Ok(1) };
    if fields.len() != 6 {
        return Ok(1);
    }
    let sampled = fields.get_item(3)?.extract::<u64>().is_ok_and(|flags| flags & 1 == 1);
    if !sampled {
        // Recorded but not sampled: drops are recorded, so every span reaches us.
        signals.set_all_recorded(true);
        return Ok(1);
    }
    if signals.all_recorded() {
        return Ok(1);
    }
    let state = fields.get_item(4)?;
    let api = OtelApi::get(py)?;
    let ot = if state.get_type().is(api.trace_state_type.bind(py)) {
        state.getattr(api.names.dict.bind(py))?.cast_into::<PyDict>()?.get_item(api.names.ot.bind(py))?
    } else {
        state.get_item(api.names.ot.bind(py)).ok()
    };
    let Some(ot) = ot else { return Ok(1) };
    let Ok(ot) = ot.cast::<PyString>() else { return Ok(1) };
    let Some(th) = ot.to_str().ok().and_then(|ot| crate::ot_entry::read(ot).th) else { return Ok(1) };
    let span_id = fields.get_item(1)?.extract::<u64>().unwrap_or(0);
    Ok(crate::adaptive::whole_weight(crate::threshold::adjusted_count(th), span_id))
}

impl NativeSignals {
    pub(crate) fn py_clock(&self) -> Option<Arc<PyClock>> {
        self.py_clock.clone()
    }

    pub(crate) fn from_signals(py: Python<'_>, signals: Arc<Signals>, py_clock: Option<Arc<PyClock>>) -> Self {
        let route_keys = ROUTE_KEYS.iter().map(|k| PyString::intern(py, k).unbind()).collect();
        NativeSignals { signals, py_clock, route_keys, failures: Default::default() }
    }

    /// Another handle on the same windows (the counters of unreadable spans are per handle).
    pub(crate) fn share(&self, py: Python<'_>) -> Self {
        NativeSignals::from_signals(py, self.signals.clone(), self.py_clock.clone())
    }

    fn read_span<'py>(&self, py: Python<'py>, span: &Bound<'py, PyAny>) -> PyResult<Ended<'py>> {
        let api = span_api(py)?;
        // The SDK's own spans keep their state in underscore fields; read those
        // directly, and go through the public properties for anything else.
        let sdk = span.get_type().is(api.sdk_span.bind(py)) || span.get_type().is(api.readable_span.bind(py));
        let status = if sdk { span.getattr(intern!(py, "_status"))? } else { span.getattr(intern!(py, "status"))? };
        // `Status.status_code` is a Python property; its field is read directly when it is the SDK's class.
        let code = if status.get_type().is(api.status.bind(py)) {
            status.getattr(intern!(py, "_status_code"))?
        } else {
            status.getattr(intern!(py, "status_code"))?
        };
        let mut error = code.is(api.status_error.bind(py));
        if !error {
            let events = if sdk { span.getattr(intern!(py, "_events"))? } else { span.getattr(intern!(py, "events"))? };
            // BoundedList's __len__ is Python; its deque answers natively.
            let count = match events.getattr(intern!(py, "_dq")) {
                Ok(deque) => deque.len().unwrap_or(0),
                Err(_) if events.is_none() => 0,
                Err(_) => events.len().unwrap_or(0),
            };
            if count > 0 {
                for event in events.try_iter()? {
                    if event?.getattr("name")?.eq(api.exception.bind(py))? {
                        error = true;
                        break;
                    }
                }
            }
        }
        let (start, end) = if sdk {
            (span.getattr(intern!(py, "_start_time"))?, span.getattr(intern!(py, "_end_time"))?)
        } else {
            (span.getattr(intern!(py, "start_time"))?, span.getattr(intern!(py, "end_time"))?)
        };
        let duration = match (start.extract::<i64>(), end.extract::<i64>()) {
            (Ok(start), Ok(end)) if end >= start => Some((end - start) as f64 * 1e-9),
            _ => None,
        };
        let route = if self.signals.routes.len() > 1 { self.read_route(py, span, sdk)? } else { None };
        let context = if sdk { span.getattr(intern!(py, "_context"))? } else { span.call_method0(intern!(py, "get_span_context"))? };
        Ok(Ended { error, duration, route, weight: weight_of(py, &context, &self.signals)? })
    }

    fn read_route<'py>(&self, py: Python<'py>, span: &Bound<'py, PyAny>, sdk: bool) -> PyResult<Option<Bound<'py, PyString>>> {
        let attributes = if sdk { span.getattr(intern!(py, "_attributes"))? } else { span.getattr(intern!(py, "attributes"))? };
        if attributes.is_none() {
            return Ok(None);
        }
        // BoundedAttributes keeps a plain dict in `_dict`.
        let attributes = match attributes.getattr(intern!(py, "_dict")) {
            Ok(inner) => inner,
            Err(_) => attributes,
        };
        for key in &self.route_keys {
            let value = match attributes.cast::<PyDict>() {
                Ok(dict) => dict.get_item(key.bind(py))?,
                Err(_) => attributes.get_item(key.bind(py)).ok(),
            };
            if let Some(Ok(text)) = value.map(|v| v.cast_into::<PyString>()) {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }
}

#[pymethods]
impl NativeSignals {
    #[new]
    #[pyo3(signature = (*, window = None, resolution = None, slow_threshold = None, route_thresholds = None, clock = None, store = None))]
    fn new(
        py: Python<'_>,
        window: Option<&Bound<'_, PyAny>>,
        resolution: Option<&Bound<'_, PyAny>>,
        slow_threshold: Option<&Bound<'_, PyAny>>,
        route_thresholds: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let window = args::optional(window, |v| args::seconds("window", v, false))?.unwrap_or(300.0);
        let resolution = args::optional(resolution, |v| args::seconds("resolution", v, false))?.unwrap_or(1.0);
        let slow_threshold = args::optional(slow_threshold, |v| args::seconds("slow_threshold", v, false))?.unwrap_or(2.0);
        let mut routes = Vec::new();
        if let Some(mapping) = route_thresholds.filter(|m| !m.is_none()) {
            let Ok(mapping) = mapping.cast::<PyDict>() else {
                return Err(config_message(format!(
                    "route_thresholds: expected a mapping of route to seconds, got {}",
                    args::shown(mapping)
                )));
            };
            for (route, seconds) in mapping.iter() {
                let route = args::text("route_thresholds", &route, "routes as strings")?;
                let seconds = args::seconds(&format!("route_thresholds[{}]", crate::words::py_str(&route)), &seconds, false)?;
                routes.push((route, seconds));
            }
        }
        let py_clock = py_clock::from_argument(clock)?;
        let clock: Arc<dyn Clock> = match &py_clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let store = super::store::open(py, store)?;
        // Placing the windows may wait for another process's lock: not holding the GIL.
        let signals = py.detach(|| Signals::in_store(&store, clock.clone(), window, resolution, slow_threshold, &routes));
        py_clock::interrupted()?;
        let signals = signals.map_err(config_error)?;
        let route_keys = ROUTE_KEYS.iter().map(|k| PyString::intern(py, k).unbind()).collect();
        Ok(NativeSignals { signals: Arc::new(signals), py_clock, route_keys, failures: Default::default() })
    }

    /// The `SpanProcessor.on_end` hook: record one ended span.
    fn on_end(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        match self.read_span(py, span) {
            Ok(ended) => {
                let route = ended.route.as_ref().and_then(|r| r.to_str().ok());
                self.signals.record_span(ended.error, ended.duration, route, ended.weight)
            }
            Err(_) => {
                self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        py_clock::interrupted()
    }

    #[pyo3(signature = (count = 1))]
    fn record_error(&self, count: i64) -> PyResult<()> {
        if count < 0 {
            return Err(config_message(format!("count: {count} is not a count; expected a whole number >= 0")));
        }
        self.signals.record_error(count as u64);
        py_clock::interrupted()
    }

    #[pyo3(signature = (seconds, route = None))]
    fn record_latency(&self, seconds: f64, route: Option<&str>) -> PyResult<()> {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(config_message(format!(
                "seconds: {} is not a duration; expected a number of seconds >= 0",
                crate::words::plain(seconds)
            )));
        }
        self.signals.record_latency(seconds, route);
        py_clock::interrupted()
    }

    /// Window counts: spans, errors, slow (and per configured route), plus
    /// spans that could not be read and clock failures.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counts = self.signals.counts();
        let out = PyDict::new(py);
        out.set_item("spans", counts.spans)?;
        out.set_item("errors", counts.errors)?;
        out.set_item("slow", counts.slow)?;
        let now = self.signals.now();
        let routes = PyDict::new(py);
        for bucket in &self.signals.routes[1..] {
            let entry = PyDict::new(py);
            entry.set_item("spans", bucket.spans.total(now))?;
            entry.set_item("slow", bucket.slow.total(now))?;
            routes.set_item(bucket.route.as_deref().unwrap_or(""), entry)?;
        }
        out.set_item("routes", routes)?;
        out.set_item("unreadable_spans", self.failures.load(std::sync::atomic::Ordering::Relaxed))?;
        out.set_item("clock_errors", self.py_clock.as_ref().map_or(0, |c| c.failures()))?;
        py_clock::interrupted()?;
        Ok(out)
    }

    /// Where the windows live (see `NativeSampler.store_info`).
    /// Changes under its store file since the last call, each once.
    fn store_check(&self) -> Vec<String> {
        super::store::check(&vec![("signals", self.signals.store(), self.signals.is_shared())])
    }

    fn store_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = super::store::info(py, &vec![("signals", self.signals.store(), self.signals.is_shared())])?;
        let clock = crate::clock::SystemClock;
        info.set_item("fleet", super::fleet::status(py, &[("signals", &*self.signals)], &crate::clock::Moment::new(&clock))?)?;
        Ok(info)
    }

    /// Tell the windows whether every span is recorded (drops deferred as
    /// RECORD_ONLY): then each ended span counts once, not as its adjusted count.
    fn set_all_recorded(&self, all_recorded: bool) {
        self.signals.set_all_recorded(all_recorded);
    }

    #[getter]
    fn all_recorded(&self) -> bool {
        self.signals.all_recorded()
    }

    #[getter]
    fn window(&self) -> f64 {
        self.signals.errors.length()
    }

    #[getter]
    fn resolution(&self) -> f64 {
        self.signals.errors.resolution()
    }

    fn __repr__(&self) -> String {
        format!("NativeSignals(window={}, resolution={})", self.window(), self.resolution())
    }
}

/// The fleet worker's calls (see `python::fleet`); the windows read their own clock.
#[pymethods]
impl NativeSignals {
    fn fleet_connection(&self) -> Option<(String, f64)> {
        super::fleet::connection(self.signals.store().fleet())
    }

    fn fleet_requests<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let clock = crate::clock::SystemClock;
        super::fleet::requests(py, &[("signals", &*self.signals)], &crate::clock::Moment::new(&clock))
    }

    #[pyo3(signature = (kind, reply, reason = ""))]
    fn fleet_reply(&self, kind: &str, reply: Option<Vec<String>>, reason: &str) -> Option<String> {
        let clock = crate::clock::SystemClock;
        super::fleet::reply(&[("signals", &*self.signals)], kind, reply, reason, &crate::clock::Moment::new(&clock))
    }

    fn fleet_after_fork(&self) {
        super::fleet::after_fork(&[("signals", &*self.signals)]);
    }

    fn fleet_status<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let clock = crate::clock::SystemClock;
        super::fleet::status(py, &[("signals", &*self.signals)], &crate::clock::Moment::new(&clock))
    }
}
