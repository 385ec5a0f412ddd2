//! The span being started, as the rules see it: its name, kind, whether it is
//! a root, and the start attributes the rule set reads.

use std::cell::{OnceCell, RefCell};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use smallvec::SmallVec;

use super::foreign::ForeignCalls;
use super::otel_api::OtelApi;
use crate::rules::condition::AttrValue;
use crate::rules::{self, SpanView};

/// The attribute keys a rule set reads, interned (so a lookup of a key the
/// instrumentation also interned is decided by identity).
pub struct KeyTable {
    keys: Vec<Py<PyString>>,
}

impl KeyTable {
    pub fn new(py: Python<'_>, keys: &[String]) -> PyResult<Self> {
        Ok(KeyTable { keys: keys.iter().map(|k| PyString::intern(py, k).unbind()).collect() })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// An attribute value as rules read it. String contents are raw slices into
/// Python strings the view holds (Python strings, and their cached UTF-8, are
/// immutable while referenced).
#[derive(Clone, Copy)]
enum Converted {
    Str(*const u8, usize),
    Int(i64),
    Float(f64),
    Bool(bool),
    Other,
}

/// The mark for "looked up, and the span has no such attribute" (never dereferenced).
const ABSENT: *mut ffi::PyObject = std::ptr::dangling_mut();

pub struct PySpanView<'a, 'py> {
    name: &'a str,
    kind: Option<usize>,
    root: bool,
    /// The keys looked up so far (by index in the table) and the span's value
    /// for each, an owned reference or [`ABSENT`]. A key is looked up when a
    /// rule first asks for it (a dict probe per key read is cheaper than
    /// walking the span's attributes), and rules read few keys per span, so
    /// a short list beats a slot per key of the table.
    looked_up: RefCell<SmallVec<[(u32, *mut ffi::PyObject); 6]>>,
    /// Which key holds the route (None: the span name), found on first use.
    route_key: OnceCell<Option<usize>>,
    /// Python composables and predicates of a composite sampler, with the call's arguments.
    foreign: Option<&'a ForeignCalls<'a, 'py>>,
    /// The attributes themselves, for keys named at run time.
    attributes: Option<&'a Bound<'py, PyAny>>,
    keys: &'a KeyTable,
}

impl<'a, 'py> PySpanView<'a, 'py> {
    /// The view of a span; its attributes are looked up as rules ask for them.
    /// Inlined, so the view is built where the caller keeps it.
    #[inline(always)]
    pub fn new(
        api: &OtelApi,
        name: &'a Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&'a Bound<'py, PyAny>>,
        root: bool,
        keys: &'a KeyTable,
    ) -> Self {
        PySpanView {
            name: name.cast::<PyString>().ok().and_then(text_of_str).unwrap_or(""),
            kind: kind.and_then(|kind| api.span_kinds.iter().position(|member| member.is(kind))),
            root,
            looked_up: RefCell::new(SmallVec::new()),
            route_key: OnceCell::new(),
            foreign: None,
            attributes,
            keys,
        }
    }

    /// The same view, able to call a composite sampler's Python parts.
    pub fn with_foreign(mut self, foreign: &'a ForeignCalls<'a, 'py>) -> Self {
        self.foreign = Some(foreign);
        self
    }

    /// The span's value for our key `index`, looked up on first use; a
    /// failing lookup (an odd key in the dict, an odd mapping) counts as absent.
    #[inline]
    fn held(&self, index: usize) -> Option<Borrowed<'_, 'py, PyAny>> {
        let attributes = self.attributes?;
        let known = self.looked_up.borrow().iter().find(|(key, _)| *key as usize == index).map(|(_, value)| *value);
        let value = match known {
            Some(value) => value,
            None if index < self.keys.keys.len() => {
                let value = self.look_up(index).map_or(ABSENT, Bound::into_ptr);
                self.looked_up.borrow_mut().push((index as u32, value));
                value
            }
            None => return None,
        };
        // SAFETY: the list owns a reference to the value until the view is dropped.
        (value != ABSENT).then(|| unsafe { Borrowed::from_ptr(attributes.py(), value) })
    }

    fn look_up(&self, index: usize) -> Option<Bound<'py, PyAny>> {
        let attributes = self.attributes?;
        let key = self.keys.keys[index].bind(attributes.py());
        let Ok(dict) = attributes.cast::<PyDict>() else {
            return attributes.get_item(key).ok();
        };
        // SAFETY: a borrowed lookup in a live dict; the result is incref'd at once.
        let item = unsafe { ffi::PyDict_GetItemWithError(dict.as_ptr(), key.as_ptr()) };
        if item.is_null() {
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(unsafe { Bound::from_borrowed_ptr(attributes.py(), item) })
    }
}

impl Drop for PySpanView<'_, '_> {
    fn drop(&mut self) {
        for &(_, held) in self.looked_up.get_mut().iter() {
            if held != ABSENT {
                // SAFETY: the list owns this reference, and the view lives only
                // inside a call that holds the GIL (or is attached, free-threaded).
                unsafe { ffi::Py_DECREF(held) };
            }
        }
    }
}

impl SpanView for PySpanView<'_, '_> {
    fn name(&self) -> &str {
        self.name
    }

    fn kind(&self) -> Option<usize> {
        self.kind
    }

    fn is_root(&self) -> bool {
        self.root
    }

    #[inline]
    fn attribute(&self, key: usize) -> Option<AttrValue<'_>> {
        let held = self.held(key)?;
        // SAFETY: a string's slice points into a value the view keeps alive.
        Some(unsafe { convert(&held).value() })
    }

    fn any_attribute_text(&self, key: usize, test: &mut dyn FnMut(&str) -> bool) -> bool {
        let Some(value) = self.held(key) else { return false };
        if let Ok(text) = value.cast::<PyString>() {
            return text_of_str(&text).is_some_and(test);
        }
        // A sequence is matched item by item (not a str: that was handled above).
        if value.is_instance_of::<PyTuple>() || value.is_instance_of::<PyList>() {
            if let Ok(items) = value.try_iter() {
                return items.flatten().any(|item| text_of(&item, test));
            }
            return false;
        }
        text_of(&value, test)
    }

    fn with_named_attribute(&self, key: &str, test: &mut dyn FnMut(Option<AttrValue<'_>>) -> bool) -> bool {
        named_value(self.attributes.and_then(|attributes| by_name(attributes, key)), test)
    }

    fn foreign_predicate(&self, slot: usize) -> bool {
        self.foreign.is_some_and(|foreign| foreign.predicate(slot))
    }

    fn foreign_intent(&self, slot: usize) -> crate::composable::ForeignIntent {
        self.foreign.map(|foreign| foreign.intent(slot)).unwrap_or_default()
    }

    #[inline]
    fn route(&self) -> &str {
        let key =
            *self.route_key.get_or_init(|| (0..rules::ROUTE_KEYS.len()).find(|k| matches!(self.attribute(*k), Some(AttrValue::Str(_)))));
        match key.and_then(|k| self.attribute(k)) {
            Some(AttrValue::Str(route)) => route,
            _ => self.name,
        }
    }
}

impl Converted {
    /// The value as rules read it.
    ///
    /// # Safety
    /// A string's pointer must point into a Python string still alive (the
    /// view holding this value keeps it so).
    #[inline]
    unsafe fn value<'v>(&self) -> AttrValue<'v> {
        match *self {
            // SAFETY: the caller keeps the string alive, and it was valid UTF-8 when converted.
            Converted::Str(ptr, len) => AttrValue::Str(std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len))),
            Converted::Int(i) => AttrValue::Int(i),
            Converted::Float(f) => AttrValue::Float(f),
            Converted::Bool(b) => AttrValue::Bool(b),
            Converted::Other => AttrValue::Other,
        }
    }
}

/// The attribute named `key`; a failing lookup (an odd mapping) counts as absent.
fn by_name<'py>(attributes: &Bound<'py, PyAny>, key: &str) -> Option<Bound<'py, PyAny>> {
    match attributes.cast::<PyDict>() {
        Ok(dict) => dict.get_item(key).ok().flatten(),
        Err(_) => attributes.get_item(key).ok(),
    }
}

/// Call `test` with an attribute looked up by name (None: absent).
fn named_value(value: Option<Bound<'_, PyAny>>, test: &mut dyn FnMut(Option<AttrValue<'_>>) -> bool) -> bool {
    let Some(value) = value else { return test(None) };
    // SAFETY: `value` holds the string alive for this call.
    test(Some(unsafe { convert(&value).value() }))
}

/// Whether `str(value)` satisfies `test`; a value whose `str()` fails matches
/// nothing (a Ctrl-C or an exit raised meanwhile is held for the native call to raise).
fn text_of(value: &Bound<'_, PyAny>, test: &mut dyn FnMut(&str) -> bool) -> bool {
    if let Ok(text) = value.cast::<PyString>() {
        return text_of_str(text).is_some_and(&mut *test);
    }
    if let Ok(b) = value.cast_exact::<PyBool>() {
        return test(if b.is_true() { "True" } else { "False" });
    }
    match value.str() {
        Ok(text) => text.to_str().is_ok_and(test),
        Err(error) => {
            super::py_clock::hold_interrupt(value.py(), error);
            false
        }
    }
}

/// Python value to rule value; anything unexpected is `Other` (matches only `exists`).
fn convert(value: &Bound<'_, PyAny>) -> Converted {
    if let Ok(s) = value.cast::<PyString>() {
        return text_of_str(s).map_or(Converted::Other, |text| Converted::Str(text.as_ptr(), text.len()));
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Converted::Bool(b.is_true());
    }
    if value.is_instance_of::<PyInt>() {
        return match value.extract::<i64>() {
            Ok(i) => Converted::Int(i),
            Err(_) => value.extract::<f64>().map_or(Converted::Other, Converted::Float),
        };
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Converted::Float(f.value());
    }
    Converted::Other
}

/// A str's UTF-8 text (None: not valid UTF-8, such as lone surrogates).
#[inline]
pub fn text_of_str<'s>(text: &'s Bound<'_, PyString>) -> Option<&'s str> {
    compact_ascii(text).or_else(|| text.to_str().ok())
}

/// A compact ASCII string's characters (which are its UTF-8), read in place:
/// most names and attribute values are such strings, and this skips a call each.
#[cfg(not(any(Py_LIMITED_API, PyPy, GraalPy, Py_3_14)))]
#[inline]
fn compact_ascii<'s>(text: &'s Bound<'_, PyString>) -> Option<&'s str> {
    let ptr = text.as_ptr();
    // SAFETY: `ptr` is a live str (subclasses share the header); a compact
    // ASCII string's characters follow its header, one byte each, and live as
    // long as the string.
    unsafe {
        if ffi::PyUnicode_IS_COMPACT_ASCII(ptr) == 0 {
            return None;
        }
        let bytes = std::slice::from_raw_parts(ffi::PyUnicode_DATA(ptr) as *const u8, ffi::PyUnicode_GET_LENGTH(ptr) as usize);
        Some(std::str::from_utf8_unchecked(bytes))
    }
}

/// Where the string layout is not part of the API, every string takes the call.
#[cfg(any(Py_LIMITED_API, PyPy, GraalPy, Py_3_14))]
#[inline]
fn compact_ascii<'s>(_text: &'s Bound<'_, PyString>) -> Option<&'s str> {
    None
}
