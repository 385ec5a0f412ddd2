//! Building the SDK's `SamplingResult` (and, when `th` changes, a new
//! `TraceState`) for a decision, without running the classes' Python `__init__`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};

use super::otel_api::OtelApi;
use super::span_input::Parent;
use crate::ot_entry;
use crate::plan::{Decision, ThUpdate};

/// W3C limit on tracestate members.
const MAX_TRACESTATE_ENTRIES: usize = 32;

/// Kept root spans' tracestates, one per threshold the plan can produce,
/// shared by every kept root at that threshold (`TraceState` is immutable).
pub struct RootTraceStates {
    /// Sorted by threshold.
    entries: Vec<(u64, Py<PyAny>)>,
}

/// The most recent kept-root tracestate whose threshold was not prebuilt
/// (budget pacing moves the threshold only once per interval, so it repeats).
/// Only touched with the GIL held and without running Python code meanwhile.
pub struct LastTraceState(std::cell::UnsafeCell<Option<(u64, Py<PyAny>)>>);

// SAFETY: every access happens while the GIL is held (a `Python` token is
// required) and no Python code runs during it, so accesses never overlap.
// Free-threaded builds do not use the cell.
unsafe impl Sync for LastTraceState {}

impl LastTraceState {
    pub fn new() -> Self {
        LastTraceState(std::cell::UnsafeCell::new(None))
    }

    #[cfg(not(Py_GIL_DISABLED))]
    fn get<'py>(&self, py: Python<'py>, threshold: u64) -> Option<Bound<'py, PyAny>> {
        // SAFETY: see the Sync impl.
        let slot = unsafe { &*self.0.get() };
        match slot {
            Some((t, state)) if *t == threshold => Some(state.bind(py).clone()),
            _ => None,
        }
    }

    #[cfg(not(Py_GIL_DISABLED))]
    fn put(&self, _py: Python<'_>, threshold: u64, state: &Bound<'_, PyAny>) {
        // SAFETY: see the Sync impl. The old value is dropped after the write.
        let old = unsafe { (*self.0.get()).replace((threshold, state.clone().unbind())) };
        drop(old);
    }

    #[cfg(Py_GIL_DISABLED)]
    fn get<'py>(&self, _py: Python<'py>, _threshold: u64) -> Option<Bound<'py, PyAny>> {
        None
    }

    #[cfg(Py_GIL_DISABLED)]
    fn put(&self, _py: Python<'_>, _threshold: u64, _state: &Bound<'_, PyAny>) {}
}

impl RootTraceStates {
    pub fn new(py: Python<'_>, api: &OtelApi, thresholds: impl IntoIterator<Item = u64>) -> PyResult<Self> {
        let mut thresholds: Vec<u64> = thresholds.into_iter().filter(|t| *t < crate::threshold::NEVER).collect();
        thresholds.sort_unstable();
        thresholds.dedup();
        let entries =
            thresholds.into_iter().map(|t| Ok((t, new_trace_state(py, api, None, Some(t))?.unbind()))).collect::<PyResult<_>>()?;
        Ok(RootTraceStates { entries })
    }

    fn get<'py>(&self, py: Python<'py>, threshold: u64) -> Option<Bound<'py, PyAny>> {
        let index = self.entries.binary_search_by_key(&threshold, |(t, _)| *t).ok()?;
        Some(self.entries[index].1.bind(py).clone())
    }
}

#[allow(clippy::too_many_arguments)]
pub fn build<'py>(
    py: Python<'py>,
    api: &OtelApi,
    decision: Decision,
    attributes: Option<&Bound<'py, PyAny>>,
    parent: Option<&Parent<'py>>,
    root_trace_states: &RootTraceStates,
    last: &LastTraceState,
    reusable_keep: Option<&ReusableKeep>,
) -> PyResult<Bound<'py, PyAny>> {
    if !decision.sampled {
        return match parent {
            None => Ok(api.drop_root.bind(py).clone()),
            Some(parent) => {
                // A composite's drop removes `th` (the rest of `ot` stays).
                let trace_state = if decision.th == ThUpdate::Erase && parent.ot_value.is_some() && !parent.strip_ot {
                    new_trace_state(py, api, Some(parent), None)?
                } else {
                    passed_on(py, api, parent)?
                };
                new_result(py, api, api.decision_drop.bind(py), api.empty_attributes.bind(py), &trace_state)
            }
        };
    }
    let trace_state = match (decision.th, parent) {
        (ThUpdate::Set(threshold), None) => match root_trace_states.get(py, threshold) {
            Some(cached) => cached,
            None => match last.get(py, threshold) {
                Some(cached) => cached,
                None => {
                    let state = new_trace_state(py, api, None, Some(threshold))?;
                    last.put(py, threshold, &state);
                    state
                }
            },
        },
        (ThUpdate::Set(threshold), Some(parent)) => new_trace_state(py, api, Some(parent), Some(threshold))?,
        (ThUpdate::Erase, Some(parent)) if parent.ot_value.is_some() => new_trace_state(py, api, Some(parent), None)?,
        (_, Some(parent)) => passed_on(py, api, parent)?,
        (_, None) => py.None().into_bound(py),
    };
    let attributes = echo_attributes(py, api, attributes);
    if let Some(reusable) = reusable_keep {
        if let Some(result) = reuse(py, api, reusable, &attributes, &trace_state)? {
            return Ok(result);
        }
    }
    new_result(py, api, api.decision_record_and_sample.bind(py), &attributes, &trace_state)
}

/// A deferred drop: recorded (so a tail stage can still keep it) but not sampled.
pub fn record_only<'py>(
    py: Python<'py>,
    api: &OtelApi,
    attributes: Option<&Bound<'py, PyAny>>,
    parent: Option<&Parent<'py>>,
) -> PyResult<Bound<'py, PyAny>> {
    let attributes = echo_attributes(py, api, attributes);
    let trace_state = match parent {
        Some(parent) => passed_on(py, api, parent)?,
        None => py.None().into_bound(py),
    };
    new_result(py, api, api.decision_record_only.bind(py), &attributes, &trace_state)
}

/// The parent's tracestate as children inherit it: as it is; without its `ot`
/// entry when the parent is not trusted or the entry is malformed; without an
/// invalid `th` or `rv` (the rest of the entry kept).
fn passed_on<'py>(py: Python<'py>, api: &OtelApi, parent: &Parent<'py>) -> PyResult<Bound<'py, PyAny>> {
    if parent.strip_ot {
        return new_trace_state(py, api, Some(parent), None);
    }
    match parent.ot_form {
        ot_entry::Form::Sound => Ok(parent.trace_state.clone()),
        _ => new_trace_state(py, api, Some(parent), parent.ot_th),
    }
}

/// A kept result object owned by one sampler, refilled instead of allocated
/// when nothing else holds it. The SDK reads a result once and drops it, so
/// the object is normally free again by the next span.
pub struct ReusableKeep {
    result: Py<PyAny>,
    /// The result's instance dict: refilling it directly skips attribute lookup.
    fields: Py<PyDict>,
}

impl ReusableKeep {
    pub fn new(py: Python<'_>, api: &OtelApi) -> PyResult<Self> {
        let result =
            new_result(py, api, api.decision_record_and_sample.bind(py), api.empty_attributes.bind(py), &py.None().into_bound(py))?;
        let fields = instance_dict(&result)?;
        Ok(ReusableKeep { result: result.unbind(), fields: fields.unbind() })
    }
}

/// `obj.__dict__` of a plain Python instance.
fn instance_dict<'py>(object: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    // SAFETY: returns a new reference or NULL with an exception set.
    let dict = unsafe { Bound::from_owned_ptr_or_err(object.py(), ffi::PyObject_GenericGetDict(object.as_ptr(), std::ptr::null_mut()))? };
    Ok(dict.cast_into::<PyDict>()?)
}

#[cfg(not(Py_GIL_DISABLED))]
fn reuse<'py>(
    py: Python<'py>,
    api: &OtelApi,
    reusable: &ReusableKeep,
    attributes: &Bound<'py, PyAny>,
    trace_state: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let result = reusable.result.bind(py);
    // SAFETY: reading the reference count of a live object. With the GIL held,
    // a count of 1 means only this sampler refers to the object.
    if unsafe { ffi::Py_REFCNT(result.as_ptr()) } != 1 {
        return Ok(None);
    }
    // Claim it before touching it: the strong reference taken here (no Python
    // code can run between the check and this line) makes the count 2, so a
    // thread that gets the GIL while the refill below runs Python code (freeing
    // the previous call's attributes can run `__del__`, a finaliser, the GC)
    // builds its own result instead of refilling this one under our feet.
    let claimed = result.clone();
    // `decision` never changes: this object only ever carries RECORD_AND_SAMPLE.
    let fields = reusable.fields.bind(py);
    fields.set_item(api.names.attributes.bind(py), attributes)?;
    fields.set_item(api.names.trace_state.bind(py), trace_state)?;
    Ok(Some(claimed))
}

#[cfg(Py_GIL_DISABLED)]
fn reuse<'py>(
    _py: Python<'py>,
    _api: &OtelApi,
    _reusable: &ReusableKeep,
    _attributes: &Bound<'py, PyAny>,
    _trace_state: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(None)
}

/// The start attributes as the read-only mapping `SamplingResult` holds.
fn echo_attributes<'py>(py: Python<'py>, api: &OtelApi, attributes: Option<&Bound<'py, PyAny>>) -> Bound<'py, PyAny> {
    let Some(attributes) = attributes else {
        return api.empty_attributes.bind(py).clone();
    };
    // Only real mappings: a str or a list also passes CPython's mapping check.
    if !attributes.is_instance_of::<PyDict>() && !attributes.is_instance(api.mapping_abc.bind(py)).unwrap_or(false) {
        return api.empty_attributes.bind(py).clone();
    }
    // SAFETY: PyDictProxy_New accepts any mapping and returns a new reference or NULL.
    let proxy = unsafe { ffi::PyDictProxy_New(attributes.as_ptr()) };
    if proxy.is_null() {
        // Not a mapping: the SDK would fail on it too; start the span without them.
        unsafe { ffi::PyErr_Clear() };
        return api.empty_attributes.bind(py).clone();
    }
    unsafe { Bound::from_owned_ptr(py, proxy) }
}

/// `object.__new__(cls)` for a plain Python class.
fn bare_instance<'py>(py: Python<'py>, api: &OtelApi, cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
    let type_ptr = cls.as_ptr() as *mut ffi::PyTypeObject;
    // SAFETY: both classes are ordinary heap types whose tp_new is object's;
    // calling it with an empty tuple is what `cls.__new__(cls)` does.
    unsafe {
        let slot = ffi::PyType_GetSlot(type_ptr, ffi::Py_tp_new);
        if slot.is_null() {
            return Err(pyo3::exceptions::PyTypeError::new_err("type has no tp_new"));
        }
        let new: ffi::newfunc = std::mem::transmute(slot);
        let object = new(type_ptr, api.empty_tuple.as_ptr(), std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(py, object)
    }
}

fn new_result<'py>(
    py: Python<'py>,
    api: &OtelApi,
    decision: &Bound<'py, PyAny>,
    attributes: &Bound<'py, PyAny>,
    trace_state: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let result = bare_instance(py, api, api.sampling_result_type.bind(py))?;
    let fields = instance_dict(&result)?;
    fields.set_item(api.names.decision.bind(py), decision)?;
    fields.set_item(api.names.attributes.bind(py), attributes)?;
    fields.set_item(api.names.trace_state.bind(py), trace_state)?;
    Ok(result)
}

/// A `TraceState` whose `ot` entry has `th` set or removed, placed first as the
/// W3C update rule asks, with every other member kept in order. When the parent
/// already has the maximum of 32 members and no `ot`, the parent's tracestate is
/// returned unchanged (no member is evicted to make room for `th`).
pub fn new_trace_state<'py>(
    py: Python<'py>,
    api: &OtelApi,
    parent: Option<&Parent<'py>>,
    threshold: Option<u64>,
) -> PyResult<Bound<'py, PyAny>> {
    // An `ot` value that is not valid text is dropped rather than carried.
    let previous = parent.and_then(|p| p.ot_value.as_ref()).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ot_value = ot_entry::rewrite(previous.as_deref(), threshold);
    let others: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = match parent {
        Some(parent) => foreign_members(py, api, parent)?,
        None => Vec::new(),
    };
    if ot_value.is_some() && previous.is_none() && others.len() >= MAX_TRACESTATE_ENTRIES {
        return Ok(parent.map_or_else(|| py.None().into_bound(py), |p| p.trace_state.clone()));
    }
    let entries = PyDict::new(py);
    if let Some(value) = ot_value {
        entries.set_item(api.names.ot.bind(py), PyString::new(py, &value))?;
    }
    for (key, value) in others {
        entries.set_item(key, value)?;
    }
    let trace_state = bare_instance(py, api, api.trace_state_type.bind(py))?;
    trace_state.setattr(api.names.dict.bind(py), entries)?;
    Ok(trace_state)
}

/// The parent's tracestate members other than `ot`, in order.
fn foreign_members<'py>(py: Python<'py>, api: &OtelApi, parent: &Parent<'py>) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let ot = api.names.ot.bind(py);
    let mut members = Vec::new();
    if let Some(dict) = &parent.entries {
        for (key, value) in dict.iter() {
            if !key.eq(ot)? {
                members.push((key, value));
            }
        }
    } else if parent.trace_state.is_instance(api.mapping_abc.bind(py))? {
        // A TraceState subclass or look-alike mapping: go through its public API.
        for key in parent.trace_state.try_iter()? {
            let key = key?;
            if key.is_instance_of::<PyString>() && !key.eq(ot)? {
                let value = parent.trace_state.get_item(&key)?;
                if value.is_instance_of::<PyString>() {
                    members.push((key, value));
                }
            }
            if members.len() > MAX_TRACESTATE_ENTRIES {
                break;
            }
        }
    }
    Ok(members)
}
