//! `NativeTracer`: the SDK `Tracer`'s `start_span` and `start_as_current_span`,
//! natively: the parent from the context (tracesieve's spans read without a
//! `SpanContext`), ids, the sampler, and a `NativeSpan` (recorded) or a
//! `NativeNonRecordingSpan` (dropped). `CurrentSpan` is the context manager
//! `start_as_current_span` returns: it attaches the span's context through the
//! SDK's context variable natively, and works as a decorator too.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::api::RecordingApi;
use super::recorder::{Recorder, Slot};
use super::span::{count_not_recorded, link_of, now_ns, time_of, trace_state_pairs, Ids, NativeNonRecordingSpan, NativeSpan};
use super::values::{bounded_mapping, name_text};
use crate::python::context::{context_var_reset, context_var_set, current_context, native_ids, span_context_of};
use crate::python::otel_api::OtelApi;
use crate::recording::record::{Link, Parent, SpanRecord};

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeTracer {
    slot: Arc<Slot>,
    sampler: Py<PyAny>,
    /// This tracer's place in the provider's list (its resource and scope).
    index: u32,
    /// None: ids made natively (the SDK's `RandomIdGenerator` does the same).
    id_generator: Option<Py<PyAny>>,
    /// The W3C random-trace-id flag for root spans (0 when the SDK has none).
    random_flag: u8,
    /// Whether the id generator's failure was logged (once per tracer).
    id_failure_logged: AtomicBool,
}

/// A valid parent span context's parts.
struct ParentInfo<'py> {
    trace_id: u128,
    span_id: u64,
    flags: u8,
    remote: bool,
    trace_state: Bound<'py, PyAny>,
}

/// The current span of `context` (the current context when None), if valid.
fn parent_of<'py>(py: Python<'py>, api: &OtelApi, context: &Bound<'py, PyAny>) -> PyResult<Option<ParentInfo<'py>>> {
    let Ok(context) = context.cast::<PyDict>() else { return Ok(None) };
    let Some(span) = context.get_item(api.span_key.bind(py))? else { return Ok(None) };
    if let Some(ids) = native_ids(&span) {
        return Ok(Some(ParentInfo {
            trace_id: ids.trace_id,
            span_id: ids.span_id,
            flags: ids.flags,
            remote: false,
            trace_state: ids.trace_state,
        }));
    }
    let Some(span_context) = span_context_of(py, api, &span)? else { return Ok(None) };
    let Ok(fields) = span_context.cast_into::<PyTuple>() else { return Ok(None) };
    if fields.len() != 6 || !fields.get_item(5)?.is_truthy()? {
        return Ok(None);
    }
    Ok(Some(ParentInfo {
        trace_id: fields.get_item(0)?.extract::<u128>()?,
        span_id: fields.get_item(1)?.extract::<u64>()?,
        flags: fields.get_item(3)?.extract::<u8>().unwrap_or(0),
        remote: fields.get_item(2)?.is_truthy()?,
        trace_state: fields.get_item(4)?,
    }))
}

/// The context's baggage entries (what processors' `on_start` would read), as text.
fn baggage_of(py: Python<'_>, api: &RecordingApi, context: &Bound<'_, PyAny>) -> Vec<(String, String)> {
    let Ok(context) = context.cast::<PyDict>() else { return Vec::new() };
    let Ok(Some(baggage)) = context.get_item(api.baggage_key.bind(py)) else { return Vec::new() };
    let Ok(baggage) = baggage.cast::<PyDict>() else { return Vec::new() };
    baggage
        .iter()
        .filter_map(|(key, value)| {
            Some((key.cast::<PyString>().ok()?.to_str().ok()?.to_owned(), value.str().ok()?.to_str().ok()?.to_owned()))
        })
        .collect()
}

impl NativeTracer {
    pub fn new(slot: Arc<Slot>, sampler: Py<PyAny>, index: u32, id_generator: Option<Py<PyAny>>, random_flag: u8) -> Self {
        NativeTracer { slot, sampler, index, id_generator, random_flag, id_failure_logged: AtomicBool::new(false) }
    }

    fn trace_id(&self, py: Python<'_>) -> PyResult<u128> {
        match &self.id_generator {
            None => Ok(fastrand::u128(1..)),
            Some(generator) => {
                let made = self.generated(py, generator.bind(py).call_method0("generate_trace_id"), "generate_trace_id", u128::MAX)?;
                Ok(made.unwrap_or_else(|| fastrand::u128(1..)))
            }
        }
    }

    fn span_id(&self, py: Python<'_>) -> PyResult<u64> {
        match &self.id_generator {
            None => Ok(fastrand::u64(1..)),
            Some(generator) => {
                let made = self.generated(py, generator.bind(py).call_method0("generate_span_id"), "generate_span_id", u64::MAX.into())?;
                Ok(made.map_or_else(|| fastrand::u64(1..), |id| id as u64))
            }
        }
    }

    /// The id the application's generator made (1 to `max`); None, with one
    /// warning, when it raised or made no valid id (not a whole number in
    /// range, or 0), for a random one instead: a span is never refused, nor
    /// given an invalid context, for its id. A Ctrl-C or an exit goes through.
    fn generated(&self, py: Python<'_>, made: PyResult<Bound<'_, PyAny>>, method: &str, max: u128) -> PyResult<Option<u128>> {
        let problem = match made {
            Err(error) if crate::python::py_clock::is_interrupt(py, &error) => return Err(error),
            Err(error) => format!("raised {error}"),
            Ok(value) => match value.extract::<u128>() {
                Ok(id) if (1..=max).contains(&id) && !value.is_instance_of::<pyo3::types::PyBool>() => return Ok(Some(id)),
                _ => format!("returned {}, not a valid id", crate::python::args::shown(&value)),
            },
        };
        if !self.id_failure_logged.swap(true, Relaxed) {
            if let Ok(api) = RecordingApi::get(py) {
                let message = format!("tracesieve: the id generator's {method}() {problem}; random ids are used where it fails");
                api.warn(py, &api.sdk_logger, "%s", &[PyString::new(py, &message).into_any()]);
            }
        }
        Ok(None)
    }

    /// `start_span`, as the SDK's tracer does it (its `on_start` calls aside:
    /// they run when the span's trace is kept).
    #[allow(clippy::too_many_arguments)]
    fn start<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        links: Option<&Bound<'py, PyAny>>,
        start_time: Option<u64>,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let api = OtelApi::get(py)?;
        let recording = RecordingApi::get(py)?;
        let recorder: Arc<Recorder> = self.slot.0.load_full();
        let context = context.filter(|c| !c.is_none());
        let effective = match context {
            Some(context) => context.clone(),
            None => current_context(py, api)?,
        };
        let kind = match kind.filter(|k| !k.is_none()) {
            Some(kind) => kind.clone(),
            None => api.span_kinds[0].bind(py).clone(),
        };
        let kind_index = api.span_kinds.iter().position(|member| member.bind(py).is(&kind)).unwrap_or(0) as u8;
        let links = match links.filter(|l| !l.is_none()) {
            Some(links) => links.clone(),
            None => api.empty_tuple.bind(py).clone().into_any(),
        };
        let parent = parent_of(py, api, &effective)?;
        let trace_id = match &parent {
            Some(parent) => parent.trace_id,
            None => self.trace_id(py)?,
        };
        let none = py.None().into_bound(py);
        let result = self
            .sampler
            .bind(py)
            .call_method1("should_sample", (context.unwrap_or(&none), trace_id, name, &kind, attributes.unwrap_or(&none), &links))?;
        let decision = result.getattr(api.names.decision.bind(py))?;
        let sampled = decision.is(api.decision_record_and_sample.bind(py));
        let recorded = sampled || decision.is(api.decision_record_only.bind(py));
        let flags = u8::from(sampled)
            | match &parent {
                None => self.random_flag,
                Some(parent) => parent.flags & 2,
            };
        let trace_state = result.getattr(api.names.trace_state.bind(py))?;
        let trace_state = if trace_state.is_none() { api.trace_state_type.bind(py).call0()? } else { trace_state };
        let ids = Ids { trace_id, span_id: self.span_id(py)?, flags, trace_state: trace_state.unbind() };
        if !recorded {
            count_not_recorded(&recorder);
            return Ok(Bound::new(py, NativeNonRecordingSpan::new(ids))?.into_any());
        }
        let limits = recorder.limits;
        let sampled_attributes = result.getattr(api.names.attributes.bind(py))?;
        let (start_attributes, start_dropped) =
            bounded_mapping(py, recording, Some(&sampled_attributes), limits.max_attributes, recorder.max_span_attribute_length);
        let mut span_links = Vec::new();
        // Links that cannot be iterated are none; iteration that fails ends them.
        let iterator = if links.is_truthy().unwrap_or(false) { links.try_iter().ok() } else { None };
        if let Some(iterator) = iterator {
            for link in iterator {
                let Ok(link) = link else { break };
                if link.is_none() || !link.is_truthy().unwrap_or(false) {
                    continue;
                }
                // Something that is not a Link is skipped (the SDK would raise on it).
                let Ok(link_context) = link.getattr("context") else { continue };
                let link_attributes = link.getattr("attributes").ok().filter(|a| !a.is_none());
                let has_attributes = link_attributes.as_ref().is_some_and(|a| a.is_truthy().unwrap_or(false));
                let Some((link_trace, link_span, link_flags, remote, link_state)) = link_of(py, &link_context, has_attributes) else {
                    continue;
                };
                let (attributes, dropped) =
                    bounded_mapping(py, recording, link_attributes.as_ref(), limits.max_link_attributes, recorder.max_attribute_length);
                span_links.push(Link {
                    trace_id: link_trace,
                    span_id: link_span,
                    flags: link_flags,
                    remote,
                    trace_state: link_state,
                    attributes,
                    dropped,
                });
            }
        }
        let links_dropped = match limits.max_links {
            Some(max) if span_links.len() > max => {
                let dropped = span_links.len() - max;
                span_links.drain(..dropped);
                dropped as u32
            }
            _ => 0,
        };
        let name_text = name_text(name);
        let record = SpanRecord {
            trace_id,
            span_id: ids.span_id,
            flags,
            parent: parent.as_ref().map(|p| Parent {
                span_id: p.span_id,
                flags: p.flags,
                remote: p.remote,
                trace_state: trace_state_pairs(py, &p.trace_state),
            }),
            tracer: self.index,
            kind: kind_index,
            start_name: name_text.clone(),
            name: name_text,
            start_time: start_time.unwrap_or_else(now_ns),
            links: span_links,
            links_dropped,
            baggage: baggage_of(py, recording, &effective),
            ..SpanRecord::default()
        };
        let mut record = record;
        record.start_with(start_attributes, start_dropped);
        let span = NativeSpan::new(recorder, self.slot.clone(), ids, record, record_exception, set_status_on_exception);
        Ok(Bound::new(py, span)?.into_any())
    }
}

#[pymethods]
impl NativeTracer {
    #[pyo3(signature = (name, context = None, kind = None, attributes = None, links = None, start_time = None, record_exception = true, set_status_on_exception = true))]
    #[allow(clippy::too_many_arguments)]
    fn start_span<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        links: Option<&Bound<'py, PyAny>>,
        start_time: Option<&Bound<'py, PyAny>>,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.start(py, name, context, kind, attributes, links, time_of(start_time), record_exception, set_status_on_exception)
    }

    /// A context manager (and decorator) that starts a span, makes it current,
    /// and ends it on exit, as the SDK's `start_as_current_span` does.
    #[pyo3(signature = (*args, **kwargs))]
    fn start_as_current_span(slf: Py<Self>, args: Py<PyTuple>, kwargs: Option<Py<PyDict>>) -> CurrentSpan {
        CurrentSpan { tracer: slf, args, kwargs, span: None, token: None }
    }

    #[getter]
    fn sampler(&self, py: Python<'_>) -> Py<PyAny> {
        self.sampler.clone_ref(py)
    }
}

/// The arguments of `start_as_current_span`, by name.
struct Arguments<'py> {
    name: Bound<'py, PyAny>,
    context: Option<Bound<'py, PyAny>>,
    kind: Option<Bound<'py, PyAny>>,
    attributes: Option<Bound<'py, PyAny>>,
    links: Option<Bound<'py, PyAny>>,
    start_time: Option<u64>,
    record_exception: bool,
    set_status_on_exception: bool,
    end_on_exit: bool,
}

const PARAMETERS: [&str; 9] =
    ["name", "context", "kind", "attributes", "links", "start_time", "record_exception", "set_status_on_exception", "end_on_exit"];

fn arguments<'py>(py: Python<'py>, args: &Bound<'py, PyTuple>, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Arguments<'py>> {
    let mut values: [Option<Bound<'py, PyAny>>; 9] = Default::default();
    if args.len() > PARAMETERS.len() {
        return Err(pyo3::exceptions::PyTypeError::new_err("start_as_current_span() takes at most 9 arguments"));
    }
    for (i, value) in args.iter().enumerate() {
        values[i] = Some(value);
    }
    if let Some(kwargs) = kwargs {
        for (key, value) in kwargs.iter() {
            let key = key.str()?.to_string();
            let Some(i) = PARAMETERS.iter().position(|p| *p == key) else {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "start_as_current_span() got an unexpected keyword argument '{key}'"
                )));
            };
            if values[i].is_some() {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "start_as_current_span() got multiple values for argument '{key}'"
                )));
            }
            values[i] = Some(value);
        }
    }
    let [name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception, end_on_exit] = values;
    let name = name
        .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("start_as_current_span() missing 1 required positional argument: 'name'"))?;
    let flag = |value: Option<Bound<'py, PyAny>>| value.map_or(Ok(true), |v| v.is_truthy());
    let _ = py;
    Ok(Arguments {
        name,
        context,
        kind,
        attributes,
        links,
        start_time: time_of(start_time.as_ref()),
        record_exception: flag(record_exception)?,
        set_status_on_exception: flag(set_status_on_exception)?,
        end_on_exit: flag(end_on_exit)?,
    })
}

/// `start_as_current_span`'s context manager.
#[pyclass(module = "tracesieve._core")]
pub struct CurrentSpan {
    tracer: Py<NativeTracer>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    span: Option<Py<PyAny>>,
    /// The context token, and whether it came from the context variable natively.
    token: Option<(Py<PyAny>, bool)>,
}

/// Make `span` current: the current context with the span set, attached.
fn attach<'py>(py: Python<'py>, api: &OtelApi, recording: &RecordingApi, span: &Bound<'py, PyAny>) -> PyResult<(Py<PyAny>, bool)> {
    let current = current_context(py, api)?;
    let values = match current.cast::<PyDict>() {
        Ok(dict) => dict.copy()?,
        Err(_) => PyDict::new(py),
    };
    values.set_item(api.span_key.bind(py), span)?;
    let context = recording.context_type.bind(py).call1((values,))?;
    if let Some(var) = stock_context_var(py, api) {
        if let Some(token) = context_var_set(py, var, &context) {
            return Ok((token.unbind(), true));
        }
    }
    Ok((recording.attach.bind(py).call1((context,))?.unbind(), false))
}

/// The SDK's context variable, while the stock runtime context is installed.
fn stock_context_var<'a>(py: Python<'_>, api: &'a OtelApi) -> Option<&'a Py<PyAny>> {
    let var = api.context_var.as_ref()?;
    // SAFETY: a borrowed lookup in a live dict, compared by identity only.
    let installed = unsafe { ffi::PyDict_GetItem(api.context_globals.as_ptr(), api.names.runtime_context.as_ptr()) };
    let _ = py;
    (installed == api.runtime_context.as_ptr()).then_some(var)
}

/// Undo `attach`. A token from another context (an async generator, say) is
/// handed to the SDK's `detach`, which logs the failure as the SDK does.
fn detach(py: Python<'_>, api: &OtelApi, recording: &RecordingApi, token: &Bound<'_, PyAny>, native: bool) {
    if native {
        if let Some(var) = stock_context_var(py, api) {
            if context_var_reset(py, var, token) {
                return;
            }
        }
    }
    if recording.detach.bind(py).call1((token,)).is_err() {
        let _ = PyErr::take(py);
    }
}

#[pymethods]
impl CurrentSpan {
    fn __enter__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let api = OtelApi::get(py)?;
        let recording = RecordingApi::get(py)?;
        let args = arguments(py, self.args.bind(py), self.kwargs.as_ref().map(|k| k.bind(py)))?;
        let tracer = self.tracer.get();
        let span = tracer.start(
            py,
            &args.name,
            args.context.as_ref(),
            args.kind.as_ref(),
            args.attributes.as_ref(),
            args.links.as_ref(),
            args.start_time,
            args.record_exception,
            args.set_status_on_exception,
        )?;
        self.token = Some(attach(py, api, recording, &span)?);
        self.span = Some(span.clone().unbind());
        Ok(span)
    }

    /// Leave the span's context; an `Exception` leaving the block is recorded
    /// (not escaped) and sets an ERROR status, as the SDK's `use_span` does;
    /// the span ends unless `end_on_exit` was False. Never suppresses.
    #[pyo3(signature = (exc_type = None, exc_val = None, exc_tb = None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_val: Option<&Bound<'_, PyAny>>,
        exc_tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let _ = (exc_type, exc_tb);
        let api = OtelApi::get(py)?;
        let recording = RecordingApi::get(py)?;
        let args = arguments(py, self.args.bind(py), self.kwargs.as_ref().map(|k| k.bind(py)))?;
        if let Some((token, native)) = self.token.take() {
            detach(py, api, recording, token.bind(py), native);
        }
        let Some(span) = self.span.take() else { return Ok(false) };
        let span = span.bind(py);
        if let Some(exception) = exc_val.filter(|e| !e.is_none()) {
            let is_error = exception.is_instance(&py.get_type::<pyo3::exceptions::PyException>())?;
            if is_error && span.call_method0("is_recording")?.is_truthy()? {
                if args.record_exception {
                    span.call_method1("record_exception", (exception,))?;
                }
                if args.set_status_on_exception {
                    let description = NativeSpan::status_description(exception)?;
                    let status = recording.status_type.bind(py).call1((recording.status_codes[2].bind(py), description))?;
                    span.call_method1("set_status", (status,))?;
                }
            }
        }
        if args.end_on_exit {
            span.call_method0("end")?;
        }
        Ok(false)
    }

    /// As a decorator: a span around every call of `function`.
    fn __call__<'py>(&self, py: Python<'py>, function: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let recording = RecordingApi::get(py)?;
        let kwargs = match &self.kwargs {
            Some(kwargs) => kwargs.bind(py).clone(),
            None => PyDict::new(py),
        };
        recording.spans.bind(py).call_method1("decorate", (self.tracer.bind(py), self.args.bind(py), kwargs, function))
    }
}
