//! The current OpenTelemetry context and a span's `SpanContext`, read natively
//! where the stock SDK objects allow it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use super::otel_api::OtelApi;

/// The current context, read straight from the SDK's ContextVar while the stock
/// runtime context is installed, else through `opentelemetry.context.get_current()`.
pub fn current_context<'py>(py: Python<'py>, api: &OtelApi) -> PyResult<Bound<'py, PyAny>> {
    if let Some(var) = &api.context_var {
        let version = module_version(api);
        if version.is_some_and(|v| v == api.stock_context_at.load(Relaxed)) {
            return context_var_get(py, var);
        }
        // SAFETY: a borrowed lookup in a live dict, compared by identity only
        // (PyDict_GetItem would save and restore the error state around it).
        let installed = unsafe { ffi::PyDict_GetItemWithError(api.context_globals.as_ptr(), api.names.runtime_context.as_ptr()) };
        if installed == api.runtime_context.as_ptr() {
            if let Some(version) = version {
                api.stock_context_at.store(version, Relaxed);
            }
            return context_var_get(py, var);
        }
        if installed.is_null() {
            // Missing, or an odd key in the module failed to compare: ask the API.
            let _ = PyErr::take(py);
        }
    }
    api.get_current.bind(py).call0()
}

/// The version tag of `opentelemetry.context`'s globals, which changes with
/// every change to them (CPython 3.10 to 3.13; None elsewhere: search each time).
#[cfg(not(any(Py_LIMITED_API, PyPy, GraalPy, Py_3_14, Py_GIL_DISABLED)))]
#[inline]
fn module_version(api: &OtelApi) -> Option<u64> {
    // SAFETY: `context_globals` is a live dict; the GIL is held, so no one writes the tag meanwhile.
    #[allow(deprecated)]
    let version = unsafe { (*api.context_globals.as_ptr().cast::<ffi::PyDictObject>()).ma_version_tag };
    Some(version).filter(|v| *v != 0)
}

#[cfg(any(Py_LIMITED_API, PyPy, GraalPy, Py_3_14, Py_GIL_DISABLED))]
#[inline]
fn module_version(_api: &OtelApi) -> Option<u64> {
    None
}

/// `var.get()`: through the C API where the full API is there, else (a
/// limited-API build) through the method.
#[cfg(not(Py_LIMITED_API))]
fn context_var_get<'py>(py: Python<'py>, var: &Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `var` is a ContextVar; on success `value` is a new reference.
    let status = unsafe { ffi::PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut value) };
    if status == 0 && !value.is_null() {
        return Ok(unsafe { Bound::from_owned_ptr(py, value) });
    }
    Err(PyErr::fetch(py))
}

#[cfg(Py_LIMITED_API)]
fn context_var_get<'py>(py: Python<'py>, var: &Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
    var.bind(py).call_method0(pyo3::intern!(py, "get"))
}

/// `var.set(value)`: its token, or None when it failed (the error cleared).
#[cfg(not(Py_LIMITED_API))]
pub fn context_var_set<'py>(py: Python<'py>, var: &Py<PyAny>, value: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    // SAFETY: `var` is a ContextVar and `value` a live object; a new reference (the token) or NULL.
    let token = unsafe { ffi::PyContextVar_Set(var.as_ptr(), value.as_ptr()) };
    if token.is_null() {
        let _ = PyErr::take(py);
        return None;
    }
    Some(unsafe { Bound::from_owned_ptr(py, token) })
}

#[cfg(Py_LIMITED_API)]
pub fn context_var_set<'py>(py: Python<'py>, var: &Py<PyAny>, value: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    var.bind(py).call_method1(pyo3::intern!(py, "set"), (value,)).ok()
}

/// `var.reset(token)`: true when it worked (the error cleared otherwise).
#[cfg(not(Py_LIMITED_API))]
pub fn context_var_reset(py: Python<'_>, var: &Py<PyAny>, token: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `var` is a ContextVar and `token` the token its set gave.
    if unsafe { ffi::PyContextVar_Reset(var.as_ptr(), token.as_ptr()) } == 0 {
        return true;
    }
    let _ = PyErr::take(py);
    false
}

#[cfg(Py_LIMITED_API)]
pub fn context_var_reset(py: Python<'_>, var: &Py<PyAny>, token: &Bound<'_, PyAny>) -> bool {
    var.bind(py).call_method1(pyo3::intern!(py, "reset"), (token,)).is_ok()
}

/// `span.get_span_context()` for a real span, `None` for anything else.
pub fn span_context_of<'py>(py: Python<'py>, api: &OtelApi, span: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let span_type = span.get_type();
    if span_type.is(api.sdk_span_type.bind(py)) || span_type.is(api.non_recording_span_type.bind(py)) {
        return Ok(Some(span.getattr(api.names.context.bind(py))?));
    }
    if !span.is_instance(api.span_abc.bind(py))? {
        return Ok(None);
    }
    let span_context = span.call_method0(api.names.get_span_context.bind(py))?;
    if span_context.is_instance(api.span_context_type.bind(py))? {
        Ok(Some(span_context))
    } else {
        Ok(None)
    }
}

/// A native span's context, read without making a `SpanContext`.
pub struct NativeIds<'py> {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
    pub trace_state: Bound<'py, PyAny>,
}

/// Reads a native span's ids; the recording layer installs it, so the sampler
/// path can recognise native spans without depending on that layer.
pub type NativeIdsReader = for<'py> fn(&Bound<'py, PyAny>) -> Option<NativeIds<'py>>;

static NATIVE_IDS_READER: OnceLock<NativeIdsReader> = OnceLock::new();

pub fn install_native_ids_reader(reader: NativeIdsReader) {
    let _ = NATIVE_IDS_READER.set(reader);
}

/// The ids of a span tracesieve's tracer made (recorded or not), if it is one.
pub fn native_ids<'py>(span: &Bound<'py, PyAny>) -> Option<NativeIds<'py>> {
    NATIVE_IDS_READER.get().and_then(|read| read(span))
}
