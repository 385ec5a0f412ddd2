//! `NativeDedup`: filters a batch of spans down to those not exported within
//! the window, hashing and remembering in Rust.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::args;
use super::errors::{config_error, config_message};
use crate::dedup::{ContentHasher, SeenSet, SpanKey};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Identity,
    Content,
}

#[pyclass(frozen, module = "tracesieve._core")]
pub struct NativeDedup {
    mode: Mode,
    seen: SeenSet,
    duplicates: std::sync::atomic::AtomicU64,
}

fn identity(span: &Bound<'_, PyAny>) -> PyResult<SpanKey> {
    let py = span.py();
    let context = span.getattr(intern!(py, "context"))?;
    let fields = context.cast::<PyTuple>()?;
    Ok((fields.get_item(0)?.extract::<u128>()?, fields.get_item(1)?.extract::<u64>()?))
}

fn hash_value(hasher: &mut ContentHasher, value: &Bound<'_, PyAny>, depth: usize) {
    if let Ok(s) = value.cast::<PyString>() {
        hasher.bytes(1, s.to_str().map(str::as_bytes).unwrap_or(b"\xff"));
    } else if let Ok(b) = value.cast::<PyBool>() {
        hasher.int(2, i128::from(b.is_true()));
    } else if value.is_instance_of::<PyInt>() {
        match value.extract::<i64>() {
            Ok(i) => hasher.int(3, i128::from(i)),
            Err(_) => match value.extract::<i128>() {
                Ok(i) => hasher.int(3, i),
                Err(_) => hasher.bytes(6, value.repr().map(|r| r.to_string()).unwrap_or_default().as_bytes()),
            },
        }
    } else if let Ok(f) = value.cast::<PyFloat>() {
        hasher.int(4, i128::from(f.value().to_bits()));
    } else if depth < 8 && (value.is_instance_of::<PyTuple>() || value.is_instance_of::<PyList>()) {
        let items: Vec<Bound<'_, PyAny>> = value.try_iter().map(|it| it.flatten().collect()).unwrap_or_default();
        hasher.int(5, items.len() as i128);
        for item in &items {
            hash_value(hasher, item, depth + 1);
        }
    } else {
        hasher.bytes(6, value.repr().map(|r| r.to_string()).unwrap_or_default().as_bytes());
    }
}

/// A span field: the SDK's own attribute when present (no property call), else the public one.
fn field<'py>(span: &Bound<'py, PyAny>, private: &Bound<'py, PyString>, public: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    match span.getattr(private) {
        Ok(value) => Ok(value),
        Err(_) => span.getattr(public),
    }
}

fn content(span: &Bound<'_, PyAny>) -> PyResult<SpanKey> {
    let py = span.py();
    let mut hasher = ContentHasher::default();
    let name = field(span, intern!(py, "_name"), intern!(py, "name"))?;
    hash_value(&mut hasher, &name, 0);
    let parent = field(span, intern!(py, "_parent"), intern!(py, "parent"))?;
    let parent_id = if parent.is_none() { -1 } else { i128::from(parent.cast::<PyTuple>()?.get_item(1)?.extract::<u64>()?) };
    hasher.int(7, parent_id);
    for (private, public) in [(intern!(py, "_start_time"), intern!(py, "start_time")), (intern!(py, "_end_time"), intern!(py, "end_time"))]
    {
        let value = field(span, private, public)?;
        hasher.int(8, if value.is_none() { -1 } else { i128::from(value.extract::<i64>()?) });
    }
    let attributes = field(span, intern!(py, "_attributes"), intern!(py, "attributes"))?;
    if !attributes.is_none() {
        let dict = match attributes.getattr(intern!(py, "_dict")) {
            Ok(inner) => inner.cast_into::<PyDict>().ok(),
            Err(_) => attributes.cast::<PyDict>().ok().cloned(),
        };
        // Keys are kept as Python strings (borrowed text, no copies) and sorted.
        let mut pairs: smallvec::SmallVec<[(Bound<'_, PyString>, Bound<'_, PyAny>); 16]> = match dict {
            Some(dict) => dict.iter().filter_map(|(k, v)| Some((k.cast_into::<PyString>().ok()?, v))).collect(),
            None => attributes
                .call_method0(intern!(py, "items"))?
                .try_iter()?
                .filter_map(|item| {
                    let (k, v) = item.ok()?.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>().ok()?;
                    Some((k.cast_into::<PyString>().ok()?, v))
                })
                .collect(),
        };
        pairs.sort_by(|a, b| a.0.to_str().unwrap_or("").cmp(b.0.to_str().unwrap_or("")));
        hasher.int(9, pairs.len() as i128);
        for (key, value) in &pairs {
            hasher.bytes(1, key.to_str().map(str::as_bytes).unwrap_or(b"\xff"));
            hash_value(&mut hasher, value, 0);
        }
    }
    Ok(hasher.finish())
}

#[pymethods]
impl NativeDedup {
    #[new]
    #[pyo3(signature = (mode = None, window = None))]
    fn new(mode: Option<&Bound<'_, PyAny>>, window: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mode = args::optional(mode, |v| args::text("mode", v, "\"identity\" or \"content\""))?;
        let mode = match mode.as_deref().unwrap_or("identity") {
            "identity" => Mode::Identity,
            "content" => Mode::Content,
            other => {
                return Err(config_message(format!(
                    "mode: unknown mode {}; expected \"identity\" (trace id + span id) or \"content\" (name, parent, timing, attributes)",
                    crate::words::quoted(other)
                )))
            }
        };
        let window = args::optional(window, |v| args::count("window", v, 1))?.unwrap_or(100_000);
        let window = usize::try_from(window).map_err(|_| config_message(format!("window: {window} spans is too many")))?;
        Ok(NativeDedup { mode, seen: SeenSet::new(window).map_err(config_error)?, duplicates: Default::default() })
    }

    /// The spans of `batch` neither delivered before nor being exported now,
    /// and their keys, reserved until `finish(keys, delivered)`. A span that
    /// cannot be read is passed on unfiltered.
    fn begin<'py>(&self, py: Python<'py>, batch: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyList>, Vec<SpanKey>)> {
        let spans: Vec<Bound<'py, PyAny>> = batch.try_iter()?.collect::<PyResult<_>>()?;
        let keys: Vec<Option<SpanKey>> = spans
            .iter()
            .map(|span| match self.mode {
                Mode::Identity => identity(span).ok(),
                Mode::Content => content(span).ok(),
            })
            .collect();
        let readable: Vec<SpanKey> = keys.iter().flatten().copied().collect();
        let mut fresh_flags = self.seen.begin(&readable).into_iter();
        let fresh = PyList::empty(py);
        let mut reserved = Vec::with_capacity(readable.len());
        let mut duplicates = 0;
        for (span, key) in spans.into_iter().zip(keys) {
            match key {
                None => fresh.append(span)?,
                Some(key) if fresh_flags.next().unwrap_or(true) => {
                    reserved.push(key);
                    fresh.append(span)?;
                }
                Some(_) => duplicates += 1,
            }
        }
        self.duplicates.fetch_add(duplicates, std::sync::atomic::Ordering::Relaxed);
        Ok((fresh, reserved))
    }

    /// The export of `begin`'s spans is over: remember their keys if it
    /// delivered, release them for a retry if not.
    fn finish(&self, keys: Vec<SpanKey>, delivered: bool) {
        self.seen.finish(&keys, delivered);
    }

    #[getter]
    fn duplicates(&self) -> u64 {
        self.duplicates.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[getter]
    fn remembered(&self) -> usize {
        self.seen.len()
    }
}
