//! Turning `should_sample`'s Python arguments into [`SpanFacts`]. Reads what
//! the SDK's own `get_current_span(ctx).get_span_context()` would, natively,
//! and treats anything malformed as absent (a root span, randomness zero).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::context::{current_context, native_ids, span_context_of};
use super::otel_api::OtelApi;
use crate::ot_entry;
use crate::plan::{ParentFacts, SpanFacts};

/// A valid parent span context and the pieces of it a result may reuse.
pub struct Parent<'py> {
    pub trace_state: Bound<'py, PyAny>,
    /// The parent's tracestate as a plain dict when it is a stock `TraceState`.
    pub entries: Option<Bound<'py, PyDict>>,
    /// The raw `ot` entry value, if any.
    pub ot_value: Option<Bound<'py, PyString>>,
    /// The parent's `ot` entry is not passed on (a remote parent not trusted).
    pub strip_ot: bool,
    /// Whether the `ot` entry can be passed on as it is (see [`ot_entry::Form`]).
    pub ot_form: ot_entry::Form,
    /// The parent's valid `th`, kept when an invalid sub-key is cleaned out.
    pub ot_th: Option<u64>,
}

/// Facts for the plan plus the parent objects; `ok` is false when some input
/// could not be read and a fallback was used.
pub struct SpanInput<'py> {
    pub facts: SpanFacts,
    pub parent: Option<Parent<'py>>,
    pub ok: bool,
}

pub fn read<'py>(py: Python<'py>, api: &OtelApi, parent_context: &Bound<'py, PyAny>, trace_id: &Bound<'py, PyAny>) -> SpanInput<'py> {
    let (trace_id_low64, mut ok) = match trace_id_low64(trace_id) {
        Some(value) => (value, true),
        None => (0, false),
    };
    let (parent_facts, parent) = match read_parent(py, api, parent_context) {
        Ok(Some((facts, parent))) => (Some(facts), Some(parent)),
        Ok(None) => (None, None),
        Err(_) => {
            ok = false;
            (None, None)
        }
    };
    SpanInput { facts: SpanFacts { trace_id_low64, parent: parent_facts }, parent, ok }
}

impl SpanInput<'_> {
    /// Ignore a remote parent's sampling (`trust_incoming=False`): the span is
    /// decided as a root, and the parent's `ot` entry (its `th` and `rv`) is
    /// not passed on. Returns whether there was a remote parent to ignore.
    pub fn distrust_remote_parent(&mut self) -> bool {
        if !self.facts.parent.is_some_and(|p| p.remote) {
            return false;
        }
        self.facts.parent = None;
        if let Some(parent) = self.parent.as_mut() {
            parent.strip_ot = parent.ot_value.take().is_some();
        }
        true
    }
}

/// `trace_id & (2**64 - 1)` for any Python int (negative and huge included).
fn trace_id_low64(trace_id: &Bound<'_, PyAny>) -> Option<u64> {
    // SAFETY: the pointer is a live object; PyLong_Check only reads its type.
    unsafe {
        if ffi::PyLong_Check(trace_id.as_ptr()) == 0 {
            return None;
        }
        let value = ffi::PyLong_AsUnsignedLongLongMask(trace_id.as_ptr());
        if value == u64::MAX && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(value)
    }
}

fn read_parent<'py>(py: Python<'py>, api: &OtelApi, parent_context: &Bound<'py, PyAny>) -> PyResult<Option<(ParentFacts, Parent<'py>)>> {
    let context = if parent_context.is_none() { current_context(py, api)? } else { parent_context.clone() };
    let Ok(context) = context.cast_into::<PyDict>() else {
        return Ok(None);
    };
    let Some(span) = span_of(&context, api.span_key.bind(py))? else {
        return Ok(None);
    };
    let (sampled, remote, trace_state) = match native_ids(&span) {
        // tracesieve's own spans: their ids natively, no SpanContext made.
        Some(ids) => (ids.flags & 1 == 1, false, ids.trace_state),
        None => {
            let Some(span_context) = span_context_of(py, api, &span)? else {
                return Ok(None);
            };
            // SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid).
            let Ok(fields) = span_context.cast_into::<PyTuple>() else {
                return Ok(None);
            };
            if fields.len() != 6 || !fields.get_item(5)?.is_truthy()? {
                return Ok(None);
            }
            let flags = fields.get_item(3)?;
            (trace_id_low64(&flags).is_some_and(|f| f & 1 == 1), fields.get_item(2)?.is_truthy()?, fields.get_item(4)?)
        }
    };
    let (entries, ot_value, reading) = trace_state_parts(py, api, &trace_state)?;
    let ot = reading.fields;
    let parent = Parent { trace_state, entries, ot_value, strip_ot: false, ot_form: reading.form, ot_th: ot.th };
    Ok(Some((ParentFacts { sampled, remote, ot }, parent)))
}

/// `context.get(key)` for a context (a dict): one borrowed lookup, no new reference juggling.
fn span_of<'py>(context: &Bound<'py, PyDict>, key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    if context.is_empty() {
        // A root span's context is often empty: nothing to look up.
        return Ok(None);
    }
    // SAFETY: a borrowed lookup in a live dict; a found value is incref'd at once.
    let item = unsafe { ffi::PyDict_GetItemWithError(context.as_ptr(), key.as_ptr()) };
    if !item.is_null() {
        return Ok(Some(unsafe { Bound::from_borrowed_ptr(context.py(), item) }));
    }
    match PyErr::take(context.py()) {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

type TraceStateParts<'py> = (Option<Bound<'py, PyDict>>, Option<Bound<'py, PyString>>, ot_entry::Reading);

/// A tracestate's entries (as a dict, for a stock `TraceState`), its raw `ot`
/// value and what that value says.
fn trace_state_parts<'py>(py: Python<'py>, api: &OtelApi, trace_state: &Bound<'py, PyAny>) -> PyResult<TraceStateParts<'py>> {
    let mut entries = None;
    let mut ot_value = None;
    if trace_state.get_type().is(api.trace_state_type.bind(py)) {
        if let Ok(dict) = trace_state.getattr(api.names.dict.bind(py))?.cast_into::<PyDict>() {
            ot_value = dict.get_item(api.names.ot.bind(py))?.and_then(|v| v.cast_into::<PyString>().ok());
            entries = Some(dict);
        }
    } else if !trace_state.is_none() {
        if let Ok(value) = trace_state.get_item(api.names.ot.bind(py)) {
            ot_value = value.cast_into::<PyString>().ok();
        }
    }
    let reading = match &ot_value {
        // An `ot` value that is not valid text is malformed.
        Some(value) => value.to_str().map_or(ot_entry::Reading { form: ot_entry::Form::Malformed, ..Default::default() }, ot_entry::parse),
        None => Default::default(),
    };
    Ok((entries, ot_value, reading))
}

/// Take the parent's tracestate from `trace_state` (the SDK's composite
/// sampler reads the one its caller passes) instead of the parent context.
/// A root span has no parent tracestate to replace.
pub fn use_trace_state<'py>(py: Python<'py>, api: &OtelApi, input: &mut SpanInput<'py>, trace_state: &Bound<'py, PyAny>) {
    let (Some(facts), Some(parent)) = (input.facts.parent.as_mut(), input.parent.as_mut()) else { return };
    let Ok((entries, ot_value, reading)) = trace_state_parts(py, api, trace_state) else {
        input.ok = false;
        return;
    };
    facts.ot = reading.fields;
    *parent = Parent {
        trace_state: trace_state.clone(),
        entries,
        ot_value,
        strip_ot: parent.strip_ot,
        ot_form: reading.form,
        ot_th: reading.fields.th,
    };
}
