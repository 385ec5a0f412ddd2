//! `NativeSpan`: the whole `opentelemetry.trace.Span` API, recording into a
//! native struct with the SDK `_Span`'s rules (limits, status precedence,
//! warnings for calls on an ended span), handed to the recorder at `end`.
//! `NativeNonRecordingSpan`: a dropped span, as the SDK's `NonRecordingSpan`.
//!
//! Python code (cleaning an unusual value, logging, formatting an exception)
//! never runs while a span's lock is held: another thread waiting for that
//! lock while holding the GIL would wait for ever.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString, PyTuple};

use super::api::RecordingApi;
use super::recorder::{Recorder, Slot};
use super::values::{attributes_to_python, bounded_mapping, clean, clean_mapping, name_text, span_text, Cleaned};
use crate::python::context::NativeIds;
use crate::python::otel_api::OtelApi;
use crate::recording::engine::Engine;
use crate::recording::record::{Event, Link, SpanRecord, TraceState, ERROR, OK, UNSET};

/// Nanoseconds since the Unix epoch, as `time.time_ns()` gives them.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A timestamp argument: nanoseconds when it is a whole number >= 0 or a
/// finite float >= 0 (its whole part), else None (the clock's reading is
/// used: a span call never raises on a bad time).
pub fn time_of(value: Option<&Bound<'_, PyAny>>) -> Option<u64> {
    let value = value.filter(|v| !v.is_none() && !v.is_instance_of::<pyo3::types::PyBool>())?;
    if let Ok(float) = value.cast::<pyo3::types::PyFloat>() {
        // Nanoseconds as a float (`time.time() * 1e9`): the SDK takes them too; whole ones are kept.
        let nanos = float.value();
        return (nanos.is_finite() && (0.0..1.8e19).contains(&nanos)).then_some(nanos as u64);
    }
    value.extract::<u64>().ok()
}

/// What a span's context is made of (for `get_span_context`, children and links).
pub struct Ids {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
    pub trace_state: Py<PyAny>,
}

impl Ids {
    /// The SDK's `SpanContext` tuple: (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid).
    fn span_context<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let api = OtelApi::get(py)?;
        let recording = RecordingApi::get(py)?;
        let flags = recording.trace_flags_type.bind(py).call1((self.flags,))?;
        let fields = PyTuple::new(
            py,
            [
                self.trace_id.into_pyobject(py)?.into_any(),
                self.span_id.into_pyobject(py)?.into_any(),
                pyo3::types::PyBool::new(py, false).to_owned().into_any(),
                flags,
                self.trace_state.bind(py).clone(),
                pyo3::types::PyBool::new(py, true).to_owned().into_any(),
            ],
        )?;
        recording.tuple_new.bind(py).call1((api.span_context_type.bind(py), fields))
    }
}

/// A `TraceState`'s entries.
pub fn trace_state_pairs(py: Python<'_>, trace_state: &Bound<'_, PyAny>) -> TraceState {
    if trace_state.is_none() {
        return Vec::new();
    }
    let Ok(api) = OtelApi::get(py) else { return Vec::new() };
    let entries = match trace_state.getattr(api.names.dict.bind(py)).ok().and_then(|d| d.cast_into::<PyDict>().ok()) {
        Some(dict) => dict.iter().collect::<Vec<_>>(),
        None => match trace_state.call_method0("items").and_then(|items| items.try_iter().map(|it| it.flatten().collect::<Vec<_>>())) {
            Ok(items) => items.iter().filter_map(|pair| pair.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>().ok()).collect(),
            Err(_) => Vec::new(),
        },
    };
    entries
        .iter()
        .filter_map(|(key, value)| {
            Some((key.cast::<PyString>().ok()?.to_str().ok()?.to_owned(), value.cast::<PyString>().ok()?.to_str().ok()?.to_owned()))
        })
        .collect()
}

struct Live {
    record: SpanRecord,
    ended: bool,
}

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeSpan {
    recorder: Arc<Recorder>,
    /// The provider's recorder slot (a forked child's recorder counts spans from before the fork).
    slot: Arc<Slot>,
    pub ids: Ids,
    context: OnceLock<Py<PyAny>>,
    record_exception: bool,
    set_status_on_exception: bool,
    live: Mutex<Live>,
}

impl NativeSpan {
    pub fn new(
        recorder: Arc<Recorder>,
        slot: Arc<Slot>,
        ids: Ids,
        record: SpanRecord,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> Self {
        NativeSpan {
            recorder,
            slot,
            ids,
            context: OnceLock::new(),
            record_exception,
            set_status_on_exception,
            live: Mutex::new(Live { record, ended: false }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ended(&self) -> bool {
        self.lock().ended
    }

    /// The SDK's warning for a call on an ended span.
    fn warn_ended(&self, py: Python<'_>, method: &str) -> PyResult<()> {
        let api = RecordingApi::get(py)?;
        api.warn(py, &api.sdk_logger, "Tried calling %s on an ended span.", &[PyString::new(py, method).into_any()]);
        Ok(())
    }

    /// Event or link attributes as the SDK's `BoundedAttributes` keeps them.
    fn bounded_attributes(
        &self,
        py: Python<'_>,
        attributes: Option<&Bound<'_, PyAny>>,
        max: Option<usize>,
    ) -> PyResult<(Vec<(String, crate::recording::value::Value)>, u32)> {
        let api = RecordingApi::get(py)?;
        Ok(bounded_mapping(py, api, attributes, max, self.recorder.max_attribute_length))
    }

    /// "Type: message", as the SDK describes an exception in a status.
    pub fn status_description(exception: &Bound<'_, PyAny>) -> PyResult<String> {
        Ok(format!("{}: {}", exception.get_type().name()?, name_text(exception)))
    }
}

/// A link's fields, if the SDK would keep it (`_is_valid_link`): a valid
/// context, or attributes, or a tracestate.
pub fn link_of(py: Python<'_>, context: &Bound<'_, PyAny>, has_attributes: bool) -> Option<(u128, u64, u8, bool, TraceState)> {
    if context.is_none() || !context.is_truthy().unwrap_or(false) {
        return None;
    }
    let fields = context.cast::<PyTuple>().ok()?;
    let trace_state = fields.get_item(4).ok()?;
    let valid = fields.get_item(5).ok()?.is_truthy().unwrap_or(false);
    if !(valid || has_attributes || trace_state.is_truthy().unwrap_or(false)) {
        return None;
    }
    Some((
        fields.get_item(0).ok()?.extract::<u128>().ok()?,
        fields.get_item(1).ok()?.extract::<u64>().ok()?,
        fields.get_item(3).ok()?.extract::<u8>().unwrap_or(0),
        fields.get_item(2).ok()?.is_truthy().unwrap_or(false),
        trace_state_pairs(py, &trace_state),
    ))
}

#[pymethods]
impl NativeSpan {
    fn get_span_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(context) = self.context.get() {
            return Ok(context.clone_ref(py));
        }
        let context = self.ids.span_context(py)?.unbind();
        Ok(self.context.get_or_init(|| context).clone_ref(py))
    }

    fn is_recording(&self) -> bool {
        !self.ended()
    }

    fn set_attribute(&self, py: Python<'_>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let api = RecordingApi::get(py)?;
        if self.ended() {
            api.warn(py, &api.sdk_logger, "Setting attribute on ended span.", &[]);
            return Ok(());
        }
        let limits = self.recorder.limits;
        if limits.max_attributes == Some(0) {
            self.lock().record.dropped += 1;
            return Ok(());
        }
        let key_text = key.cast::<PyString>().ok().and_then(|k| k.to_str().ok()).filter(|k| !k.is_empty());
        let Some(key_text) = key_text else {
            api.warn(
                py,
                &api.attributes_logger,
                "invalid key `%s`. must be non-empty string. Dropping key from attributes.",
                std::slice::from_ref(key),
            );
            self.lock().record.dropped += 1;
            return Ok(());
        };
        let key_text = key_text.to_owned();
        if let Cleaned::Keep(value) = clean(py, api, value, self.recorder.max_span_attribute_length) {
            let evicted = {
                let mut live = self.lock();
                !live.ended && live.record.set_later(key_text, value, &limits)
            };
            api.warn_evictions(py, u32::from(evicted));
        }
        Ok(())
    }

    fn set_attributes(&self, py: Python<'_>, attributes: &Bound<'_, PyAny>) -> PyResult<()> {
        let api = RecordingApi::get(py)?;
        if self.ended() {
            api.warn(py, &api.sdk_logger, "Setting attribute on ended span.", &[]);
            return Ok(());
        }
        let limits = self.recorder.limits;
        if limits.max_attributes == Some(0) {
            self.lock().record.dropped += attributes.len().unwrap_or(0) as u32;
            return Ok(());
        }
        let (cleaned, dropped) = clean_mapping(py, api, attributes, self.recorder.max_span_attribute_length);
        let mut evicted = 0;
        {
            let mut live = self.lock();
            if live.ended {
                return Ok(());
            }
            live.record.dropped += dropped;
            for (key, value) in cleaned {
                evicted += u32::from(live.record.set_later(key, value, &limits));
            }
        }
        api.warn_evictions(py, evicted);
        Ok(())
    }

    #[pyo3(signature = (name, attributes = None, timestamp = None))]
    fn add_event(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let timestamp = time_of(timestamp);
        let limits = self.recorder.limits;
        let (attributes, dropped) = self.bounded_attributes(py, attributes, limits.max_event_attributes)?;
        let name = name_text(name);
        let event = Event { name, time: timestamp.unwrap_or_else(now_ns), attributes, dropped };
        {
            let mut live = self.lock();
            if !live.ended {
                live.record.add_event(event, &limits);
                return Ok(());
            }
        }
        self.warn_ended(py, "_add_event")
    }

    #[pyo3(signature = (context, attributes = None))]
    fn add_link(&self, py: Python<'_>, context: &Bound<'_, PyAny>, attributes: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let has_attributes = attributes.is_some_and(|a| a.is_truthy().unwrap_or(false));
        let Some((trace_id, span_id, flags, remote, trace_state)) = link_of(py, context, has_attributes) else { return Ok(()) };
        let limits = self.recorder.limits;
        let (attributes, dropped) = self.bounded_attributes(py, attributes, limits.max_link_attributes)?;
        let link = Link { trace_id, span_id, flags, remote, trace_state, attributes, dropped };
        {
            let mut live = self.lock();
            if !live.ended {
                live.record.add_link(link, &limits);
                return Ok(());
            }
        }
        self.warn_ended(py, "_add_link")
    }

    fn update_name(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = name_text(name);
        {
            let mut live = self.lock();
            if !live.ended {
                live.record.name = name;
                return Ok(());
            }
        }
        self.warn_ended(py, "update_name")
    }

    #[pyo3(signature = (status, description = None))]
    fn set_status(&self, py: Python<'_>, status: &Bound<'_, PyAny>, description: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let api = RecordingApi::get(py)?;
        if self.ended() {
            return self.warn_ended(py, "set_status");
        }
        let code_of = |code: &Bound<'_, PyAny>| api.status_codes.iter().position(|member| member.bind(py).is(code)).map(|i| i as u8);
        let (code, text) = if status.is_instance(api.status_type.bind(py))? {
            let code = code_of(&status.getattr("status_code")?);
            let current = self.lock().record.status;
            if current == OK || code == Some(UNSET) || code.is_none() {
                return Ok(());
            }
            if description.is_some_and(|d| !d.is_none()) {
                api.warn(
                    py,
                    &api.sdk_logger,
                    "Description %s ignored. Use either `Status` or `(StatusCode, Description)`",
                    &[description.expect("checked").clone()],
                );
            }
            (code, status.getattr("description")?)
        } else if let Some(code) = code_of(status) {
            let current = self.lock().record.status;
            if current == OK || code == UNSET {
                return Ok(());
            }
            // The SDK's Status checks the description (and warns); one it cannot check is left out.
            let made = api.status_type.bind(py).call1((status, description.cloned().unwrap_or_else(|| py.None().into_bound(py))));
            (Some(code), made.and_then(|made| made.getattr("description")).unwrap_or_else(|_| py.None().into_bound(py)))
        } else {
            return Ok(());
        };
        let text = text.cast::<PyString>().ok().map(span_text);
        let mut live = self.lock();
        if !live.ended {
            if let Some(code) = code {
                live.record.set_status(code, text);
            }
        }
        Ok(())
    }

    #[pyo3(signature = (exception, attributes = None, timestamp = None, escaped = None))]
    fn record_exception(
        &self,
        py: Python<'_>,
        exception: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<&Bound<'_, PyAny>>,
        escaped: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let api = RecordingApi::get(py)?;
        let escaped = escaped.cloned().unwrap_or_else(|| PyBool::new(py, false).to_owned().into_any());
        let merged = api.spans.bind(py).call_method1("exception_attributes", (exception, escaped))?.cast_into::<PyDict>()?;
        if let Some(extra) = attributes.filter(|a| a.is_truthy().unwrap_or(false)) {
            if let Ok(mapping) = extra.cast::<pyo3::types::PyMapping>() {
                // A mapping that fails part-way gives what it gave.
                let _ = merged.update(mapping);
            }
        }
        self.add_event(py, &PyString::new(py, "exception"), Some(merged.as_any()), timestamp)
    }

    #[pyo3(signature = (end_time = None))]
    fn end(&self, py: Python<'_>, end_time: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let end_time = time_of(end_time);
        // The tracestate's entries are read from Python: before the lock.
        let trace_state = trace_state_pairs(py, self.ids.trace_state.bind(py));
        let done = {
            let mut live = self.lock();
            if live.ended {
                None
            } else {
                live.ended = true;
                live.record.end_time = end_time.unwrap_or_else(now_ns);
                live.record.trace_state = trace_state;
                self.recorder.feed(&live.record);
                Some((live.record.encode().into_boxed_slice(), Engine::facts(&live.record)))
            }
        };
        let Some((record, facts)) = done else {
            let api = RecordingApi::get(py)?;
            api.warn(py, &api.sdk_logger, "Calling end() on an ended span.", &[]);
            return Ok(());
        };
        // A few map operations under the engine's lock, which no holder keeps while waiting for the GIL.
        self.recorder.finish(&self.slot, record, facts);
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Ends the span; an exception leaving the block is recorded (escaped)
    /// and sets an ERROR status first, as the SDK's span does.
    #[pyo3(signature = (exc_type = None, exc_val = None, exc_tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_val: Option<&Bound<'_, PyAny>>,
        exc_tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (exc_type, exc_tb);
        if let Some(exception) = exc_val.filter(|e| !e.is_none()) {
            if !self.ended() {
                if self.record_exception {
                    self.record_exception(py, exception, None, None, Some(PyBool::new(py, true).as_any()))?;
                }
                if self.set_status_on_exception {
                    let api = RecordingApi::get(py)?;
                    let description = NativeSpan::status_description(exception)?;
                    let status = api.status_type.bind(py).call1((api.status_codes[ERROR as usize].bind(py), description))?;
                    self.set_status(py, &status, None)?;
                }
            }
        }
        self.end(py, None)
    }

    #[getter]
    fn name(&self) -> String {
        self.lock().record.name.clone()
    }

    #[getter]
    fn kind(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let api = OtelApi::get(py)?;
        Ok(api.span_kinds[usize::from(self.lock().record.kind).min(4)].clone_ref(py))
    }

    #[getter]
    fn start_time(&self) -> u64 {
        self.lock().record.start_time
    }

    #[getter]
    fn end_time(&self) -> Option<u64> {
        let live = self.lock();
        live.ended.then_some(live.record.end_time)
    }

    /// The span's attributes now (start attributes, then those set later).
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let attributes = self.lock().record.attributes.clone();
        let dict = attributes_to_python(py, &attributes)?;
        py.import("types")?.getattr("MappingProxyType")?.call1((dict,))
    }

    #[getter]
    fn context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get_span_context(py)
    }

    /// The parent's span context (None for a root).
    #[getter]
    fn parent<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let parent = self.lock().record.parent.clone();
        let Some(parent) = parent else { return Ok(py.None().into_bound(py)) };
        let api = OtelApi::get(py)?;
        let recording = RecordingApi::get(py)?;
        let trace_state =
            api.trace_state_type.bind(py).call1((parent.trace_state.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),))?;
        let flags = recording.trace_flags_type.bind(py).call1((parent.flags,))?;
        api.span_context_type.bind(py).call1((self.ids.trace_id, parent.span_id, parent.remote, flags, trace_state))
    }

    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let api = RecordingApi::get(py)?;
        let (code, description) = {
            let live = self.lock();
            (live.record.status, live.record.status_description.clone())
        };
        if code == UNSET {
            return Ok(api.unset_status.bind(py).clone());
        }
        api.status_type.bind(py).call1((api.status_codes[usize::from(code).min(2)].bind(py), description))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let context = self.get_span_context(py)?;
        Ok(format!("NativeSpan(name=\"{}\", context={})", self.name(), context.bind(py).repr()?))
    }
}

/// A span the sampler dropped: its context only, every call a no-op.
#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeNonRecordingSpan {
    pub ids: Ids,
    context: OnceLock<Py<PyAny>>,
}

impl NativeNonRecordingSpan {
    pub fn new(ids: Ids) -> Self {
        NativeNonRecordingSpan { ids, context: OnceLock::new() }
    }
}

#[pymethods]
impl NativeNonRecordingSpan {
    fn get_span_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(context) = self.context.get() {
            return Ok(context.clone_ref(py));
        }
        let context = self.ids.span_context(py)?.unbind();
        Ok(self.context.get_or_init(|| context).clone_ref(py))
    }

    fn is_recording(&self) -> bool {
        false
    }

    #[pyo3(signature = (*_args, **_kwargs))]
    fn set_attribute(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    #[pyo3(signature = (*_args, **_kwargs))]
    fn set_attributes(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    #[pyo3(signature = (*_args, **_kwargs))]
    fn add_event(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    #[pyo3(signature = (*_args, **_kwargs))]
    fn add_link(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    #[pyo3(signature = (*_args, **_kwargs))]
    fn update_name(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    #[pyo3(signature = (*_args, **_kwargs))]
    fn set_status(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    #[pyo3(signature = (*_args, **_kwargs))]
    fn record_exception(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    #[pyo3(signature = (end_time = None))]
    fn end(&self, end_time: Option<&Bound<'_, PyAny>>) {
        let _ = end_time;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {}

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("NonRecordingSpan({})", self.get_span_context(py)?.bind(py).repr()?))
    }
}

/// Counted in the recorder: a span the sampler did not record.
pub fn count_not_recorded(recorder: &Recorder) {
    recorder.not_recorded.fetch_add(1, Relaxed);
}

/// The ids of a span tracesieve's tracer made (recorded or not), if it is one;
/// installed as [`crate::python::context::native_ids`]'s reader at module init.
pub fn native_ids_of<'py>(span: &Bound<'py, PyAny>) -> Option<NativeIds<'py>> {
    let py = span.py();
    let ids =
        if let Ok(native) = span.cast::<NativeSpan>() { &native.get().ids } else { &span.cast::<NativeNonRecordingSpan>().ok()?.get().ids };
    Some(NativeIds { trace_id: ids.trace_id, span_id: ids.span_id, flags: ids.flags, trace_state: ids.trace_state.bind(py).clone() })
}
