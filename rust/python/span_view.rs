//! The span being started, as the rules see it: its name, kind, whether it is
//! a root, and the start attributes the rule set reads.

use std::cell::{Cell, OnceCell};
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use smallvec::SmallVec;

use super::foreign::ForeignCalls;
use super::otel_api::OtelApi;
use crate::rules::condition::AttrValue;
use crate::rules::{self, SpanView};

/// How many distinct attribute-key objects a table remembers.
const SEEN_SLOTS: usize = 64;
/// `seen_index` value for a key object that is none of ours.
const NOT_OURS: u8 = u8::MAX;

/// The attribute keys a rule set reads, interned, with their str hashes, plus
/// a memo of key objects already seen in attribute dicts. Instrumentations pass
/// the same key objects (module constants) span after span, so after the first
/// spans a key is recognised by identity alone.
pub struct KeyTable {
    keys: Vec<Py<PyString>>,
    texts: Vec<String>,
    hashes: Vec<isize>,
    seen: [AtomicPtr<ffi::PyObject>; SEEN_SLOTS],
    seen_index: [AtomicU8; SEEN_SLOTS],
    /// Strong references that keep memoised key objects (and so their addresses) alive.
    seen_refs: [OnceLock<Py<PyAny>>; SEEN_SLOTS],
    seen_len: AtomicUsize,
}

impl KeyTable {
    pub fn new(py: Python<'_>, keys: &[String]) -> PyResult<Self> {
        if keys.len() >= usize::from(NOT_OURS) {
            return Err(super::errors::config_message(format!(
                "rules: {} distinct attribute names; at most {} are supported",
                keys.len(),
                NOT_OURS - 1
            )));
        }
        let interned: Vec<Py<PyString>> = keys.iter().map(|k| PyString::intern(py, k).unbind()).collect();
        let hashes = interned.iter().map(|k| k.bind(py).hash()).collect::<PyResult<_>>()?;
        Ok(KeyTable {
            keys: interned,
            texts: keys.to_vec(),
            hashes,
            seen: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            seen_index: std::array::from_fn(|_| AtomicU8::new(NOT_OURS)),
            seen_refs: std::array::from_fn(|_| OnceLock::new()),
            seen_len: AtomicUsize::new(0),
        })
    }

    /// Which of our keys `key` is, remembering the answer for this object.
    ///
    /// # Safety
    /// `key` must be a live object.
    unsafe fn lookup(&self, py: Python<'_>, key: *mut ffi::PyObject) -> Option<usize> {
        let filled = self.seen_len.load(Ordering::Acquire).min(SEEN_SLOTS);
        for slot in 0..filled {
            if self.seen[slot].load(Ordering::Acquire) == key {
                let index = self.seen_index[slot].load(Ordering::Relaxed);
                return (index != NOT_OURS).then_some(usize::from(index));
            }
        }
        let found = self.position_raw(key);
        let slot = self.seen_len.fetch_add(1, Ordering::AcqRel);
        if slot < SEEN_SLOTS {
            let _ = self.seen_refs[slot].set(Bound::from_borrowed_ptr(py, key).unbind());
            self.seen_index[slot].store(found.map_or(NOT_OURS, |i| i as u8), Ordering::Relaxed);
            self.seen[slot].store(key, Ordering::Release);
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Which of our keys `key` is: by identity, else (for exact `str` keys) by
    /// hash and then text. Runs no Python code.
    ///
    /// # Safety
    /// `key` must be a live object.
    unsafe fn position_raw(&self, key: *mut ffi::PyObject) -> Option<usize> {
        if let Some(i) = self.keys.iter().position(|k| k.as_ptr() == key) {
            return Some(i);
        }
        if ffi::PyUnicode_CheckExact(key) == 0 {
            return None;
        }
        let hash = ffi::PyObject_Hash(key);
        if !self.hashes.contains(&hash) {
            return None;
        }
        let mut len: ffi::Py_ssize_t = 0;
        let data = ffi::PyUnicode_AsUTF8AndSize(key, &mut len);
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let text = std::slice::from_raw_parts(data as *const u8, len as usize);
        (0..self.keys.len()).find(|i| self.hashes[*i] == hash && self.texts[*i].as_bytes() == text)
    }
}

/// Attribute values converted once, on first use (a value no rule asks for is
/// never converted). String contents are raw slices into Python strings that
/// `PySpanView::held` keeps alive (Python strings, and their cached UTF-8, are
/// immutable while referenced).
#[derive(Clone, Copy)]
enum Converted {
    Absent,
    /// Held, not converted yet.
    Pending,
    Str(*const u8, usize),
    Int(i64),
    Float(f64),
    Bool(bool),
    Other,
}

pub struct PySpanView<'a, 'py> {
    name: &'a str,
    kind: Option<usize>,
    root: bool,
    converted: SmallVec<[Cell<Converted>; 12]>,
    /// The attribute values by key, which also keep `converted`'s strings alive.
    held: SmallVec<[Option<Bound<'py, PyAny>>; 12]>,
    /// Which key holds the route (None: the span name), found on first use.
    route_key: OnceCell<Option<usize>>,
    /// Python composables and predicates of a composite sampler, with the call's arguments.
    foreign: Option<&'a ForeignCalls<'a, 'py>>,
    /// The attributes themselves, for keys named at run time.
    attributes: Option<&'a Bound<'py, PyAny>>,
    keys: &'a KeyTable,
}

impl<'a, 'py> PySpanView<'a, 'py> {
    /// The view of a span, its attributes not read yet (call
    /// [`PySpanView::read_attributes`] next). Inlined, so the view is built
    /// where the caller keeps it: a view returned after reading was copied whole.
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
            converted: SmallVec::from_elem(Cell::new(Converted::Absent), keys.keys.len()),
            held: SmallVec::from_elem(None, keys.keys.len()),
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

    fn store(&mut self, index: usize, value: Bound<'py, PyAny>) {
        self.converted[index].set(Converted::Pending);
        self.held[index] = Some(value);
    }

    /// Read the key table's attributes of the span. A small dict is scanned
    /// once (cheaper than one lookup per key, most of which miss); a large one is probed.
    pub fn read_attributes(&mut self) {
        let (Some(attributes), keys) = (self.attributes, self.keys) else { return };
        let py = attributes.py();
        let Ok(dict) = attributes.cast::<PyDict>() else {
            // Non-dict mappings (rare): ask for each key; failures count as absent.
            for (i, key) in keys.keys.iter().enumerate() {
                if let Ok(value) = attributes.get_item(key.bind(py)) {
                    self.store(i, value);
                }
            }
            return;
        };
        if dict.len() <= 2 * keys.keys.len() {
            let mut position: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut value: *mut ffi::PyObject = std::ptr::null_mut();
            // SAFETY: iterating a live dict with borrowed references; no Python
            // code runs inside the loop (str hashing and UTF-8 access only), and
            // each value we keep is incref'd at once.
            while unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut position, &mut key, &mut value) } != 0 {
                if let Some(i) = unsafe { keys.lookup(py, key) } {
                    self.store(i, unsafe { Bound::from_borrowed_ptr(py, value) });
                }
            }
        } else {
            for (i, key) in keys.keys.iter().enumerate() {
                // SAFETY: borrowed lookup in a live dict; the result is incref'd at once.
                let item = unsafe { ffi::PyDict_GetItemWithError(dict.as_ptr(), key.as_ptr()) };
                if item.is_null() {
                    unsafe { ffi::PyErr_Clear() };
                } else {
                    self.store(i, unsafe { Bound::from_borrowed_ptr(py, item) });
                }
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
        let cell = self.converted.get(key)?;
        let mut converted = cell.get();
        if let Converted::Pending = converted {
            converted = self.held[key].as_ref().map_or(Converted::Absent, convert);
            cell.set(converted);
        }
        // SAFETY: a string's slice points into a value `self.held` keeps alive.
        unsafe { converted.value() }
    }

    fn any_attribute_text(&self, key: usize, test: &mut dyn FnMut(&str) -> bool) -> bool {
        let Some(Some(value)) = self.held.get(key) else { return false };
        if let Some(AttrValue::Str(text)) = self.attribute(key) {
            return test(text);
        }
        // A sequence is matched item by item (not a str: that was handled above).
        if value.is_instance_of::<PyTuple>() || value.is_instance_of::<PyList>() {
            if let Ok(items) = value.try_iter() {
                return items.flatten().any(|item| text_of(&item, test));
            }
            return false;
        }
        text_of(value, test)
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
    unsafe fn value<'v>(&self) -> Option<AttrValue<'v>> {
        Some(match *self {
            Converted::Absent | Converted::Pending => return None,
            // SAFETY: the caller keeps the string alive, and it was valid UTF-8 when converted.
            Converted::Str(ptr, len) => AttrValue::Str(std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len))),
            Converted::Int(i) => AttrValue::Int(i),
            Converted::Float(f) => AttrValue::Float(f),
            Converted::Bool(b) => AttrValue::Bool(b),
            Converted::Other => AttrValue::Other,
        })
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
    match unsafe { convert(&value).value() } {
        None => test(Some(AttrValue::Other)),
        found => test(found),
    }
}

/// Whether `str(value)` satisfies `test`; a value whose `str()` fails matches nothing.
fn text_of(value: &Bound<'_, PyAny>, test: &mut dyn FnMut(&str) -> bool) -> bool {
    if let Ok(text) = value.cast::<PyString>() {
        return text_of_str(text).is_some_and(&mut *test);
    }
    if let Ok(b) = value.cast_exact::<PyBool>() {
        return test(if b.is_true() { "True" } else { "False" });
    }
    match value.str() {
        Ok(text) => text.to_str().is_ok_and(test),
        Err(_) => false,
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
