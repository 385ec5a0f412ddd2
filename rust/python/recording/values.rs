//! Attribute values between Python and a record. Common values (strings,
//! booleans, integers, floats, None, bytes) are taken natively, strings
//! truncated as the SDK truncates them; anything else goes through the SDK's
//! own cleaning (`tracesieve._spans.clean`), so what is kept and what is
//! logged is the SDK's.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString, PyTuple};

use super::api::RecordingApi;
use crate::recording::record::{bounded, Attributes};
use crate::recording::value::Value;

/// What cleaning made of a value: kept, or dropped (older SDKs drop invalid values).
pub enum Cleaned {
    Keep(Value),
    Drop,
}

/// A str as span text (a name, an event name, a status description): each lone
/// surrogate, which no exporter can encode, becomes one U+FFFD instead of
/// raising into the application.
pub fn span_text(text: &Bound<'_, PyString>) -> String {
    if let Ok(utf8) = text.to_str() {
        return utf8.to_owned();
    }
    let units = text.call_method1("encode", ("utf-16-le", "surrogatepass")).ok().and_then(|b| b.cast_into::<PyBytes>().ok());
    match units {
        Some(bytes) => {
            let units: Vec<u16> = bytes.as_bytes().chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        None => text.to_string_lossy().into_owned(),
    }
}

/// `str(value)` as span text for a name given as any object; one whose
/// `__str__` raises is named after its type instead of raising into the application.
pub fn name_text(value: &Bound<'_, PyAny>) -> String {
    match value.str() {
        Ok(text) => span_text(&text),
        Err(_) => format!("<unprintable {}>", value.get_type().name().map(|n| n.to_string()).unwrap_or_default()),
    }
}

/// Clean one attribute value, with strings truncated to `max_length` code points.
pub fn clean(py: Python<'_>, api: &RecordingApi, value: &Bound<'_, PyAny>, max_length: Option<usize>) -> Cleaned {
    if let Some(value) = scalar(py, api, value, max_length) {
        return Cleaned::Keep(value);
    }
    // Anything else: the SDK's own cleaning (its conversions and warnings).
    let cleaned = match api.spans.bind(py).call_method1("clean", (value, max_length)) {
        Ok(cleaned) => cleaned,
        Err(_) => return Cleaned::Drop,
    };
    if cleaned.is(api.drop_value.bind(py)) {
        return Cleaned::Drop;
    }
    Cleaned::Keep(from_clean(py, api, &cleaned, 0))
}

/// Whether `value` is one of the types taken natively.
fn is_scalar(value: &Bound<'_, PyAny>) -> bool {
    value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyBool>()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_none()
        || value.is_exact_instance_of::<PyBytes>()
}

/// A string, boolean, integer, float, None or bytes, natively; None for anything else.
fn scalar(py: Python<'_>, api: &RecordingApi, value: &Bound<'_, PyAny>, max_length: Option<usize>) -> Option<Value> {
    if let Ok(text) = value.cast_exact::<PyString>() {
        return Some(string(py, api, text, max_length));
    }
    if let Ok(flag) = value.cast_exact::<PyBool>() {
        return Some(Value::Bool(flag.is_true()));
    }
    if value.is_exact_instance_of::<PyInt>() {
        return Some(match value.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(value.str().ok()?.to_string()),
        });
    }
    if let Ok(float) = value.cast_exact::<PyFloat>() {
        return Some(Value::Float(float.value()));
    }
    if value.is_none() {
        return Some(Value::None);
    }
    if let Ok(bytes) = value.cast_exact::<PyBytes>() {
        return Some(Value::Bytes(bytes.as_bytes().to_vec()));
    }
    None
}

/// A string value, truncated (with the SDK's warning) beyond `max_length` code points.
fn string(py: Python<'_>, api: &RecordingApi, text: &Bound<'_, PyString>, max_length: Option<usize>) -> Value {
    // SAFETY: a live str; PyUnicode_GetLength cannot fail for one.
    let length = unsafe { ffi::PyUnicode_GetLength(text.as_ptr()) } as usize;
    let owned;
    let text = match max_length {
        Some(max) if length > max => {
            api.warn(
                py,
                &api.attributes_logger,
                "String attribute value exceeds max length of %d, truncating.",
                &[max.into_pyobject(py).map(|m| m.into_any()).unwrap_or_else(|_| py.None().into_bound(py))],
            );
            // SAFETY: 0..max is within the string.
            owned = unsafe { Bound::from_owned_ptr(py, ffi::PyUnicode_Substring(text.as_ptr(), 0, max as isize)) };
            owned.cast::<PyString>().expect("a substring is a str").clone()
        }
        _ => text.clone(),
    };
    match text.to_str() {
        Ok(utf8) => Value::Str(utf8.to_owned()),
        Err(_) => {
            // Lone surrogates: kept as Python holds them.
            let bytes = text.call_method1("encode", ("utf-8", "surrogatepass")).ok().and_then(|b| b.cast_into::<PyBytes>().ok());
            Value::Surrogates(bytes.map(|b| b.as_bytes().to_vec()).unwrap_or_default())
        }
    }
}

/// A value the SDK's cleaning returned: scalars, tuples and dicts of them.
fn from_clean(py: Python<'_>, api: &RecordingApi, value: &Bound<'_, PyAny>, depth: usize) -> Value {
    if depth > 32 {
        return Value::None;
    }
    if let Some(value) = scalar(py, api, value, None) {
        return value;
    }
    if let Ok(items) = value.cast::<PyTuple>() {
        return Value::Seq(items.iter().map(|item| from_clean(py, api, &item, depth + 1)).collect());
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        return Value::Map(
            dict.iter()
                .filter_map(|(key, item)| {
                    Some((key.cast::<PyString>().ok()?.to_str().ok()?.to_owned(), from_clean(py, api, &item, depth + 1)))
                })
                .collect(),
        );
    }
    if let Ok(text) = value.cast::<PyString>() {
        return string(py, api, text, None);
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Value::Bool(flag.is_true());
    }
    if let Ok(i) = value.extract::<i64>() {
        return Value::Int(i);
    }
    if let Ok(f) = value.extract::<f64>() {
        return Value::Float(f);
    }
    Value::None
}

/// A mapping of attributes as the SDK cleans it for a span (its invalid keys
/// dropped and counted), natively when every key is a non-empty str and every
/// value a scalar.
pub fn clean_mapping(py: Python<'_>, api: &RecordingApi, mapping: &Bound<'_, PyAny>, max_length: Option<usize>) -> (Attributes, u32) {
    if mapping.is_none() {
        return (Vec::new(), 0);
    }
    // A dict, or a mapping proxy (what samplers echo): its items, natively.
    let items: Option<Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>> = match mapping.cast::<PyDict>() {
        Ok(dict) => Some(dict.iter().collect()),
        Err(_) => mapping
            .cast::<pyo3::types::PyMapping>()
            .ok()
            .and_then(|m| m.items().ok())
            .map(|list| list.iter().filter_map(|pair| pair.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>().ok()).collect()),
    };
    if let Some(items) = items {
        let simple = items.iter().all(|(key, value)| {
            key.cast_exact::<PyString>().ok().and_then(|k| k.to_str().ok()).is_some_and(|k| !k.is_empty()) && is_scalar(value)
        });
        if simple {
            let out = items
                .iter()
                .filter_map(|(key, value)| {
                    let key = key.cast_exact::<PyString>().ok()?.to_str().ok()?.to_owned();
                    Some((key, scalar(py, api, value, max_length)?))
                })
                .collect();
            return (out, 0);
        }
    }
    let Ok(result) = api.spans.bind(py).call_method1("clean_mapping", (mapping, max_length)) else {
        return (Vec::new(), 0);
    };
    let Ok((cleaned, dropped)) = result.extract::<(Bound<'_, PyDict>, u32)>() else { return (Vec::new(), 0) };
    let attributes = cleaned
        .iter()
        .filter_map(|(key, value)| Some((key.cast::<PyString>().ok()?.to_str().ok()?.to_owned(), from_clean(py, api, &value, 0))))
        .collect();
    (attributes, dropped)
}

/// A mapping of attributes as the SDK's `BoundedAttributes(max, mapping)`
/// keeps it: cleaned, the oldest beyond `max` dropped (each drop logged as the
/// installed SDK logs it), with how many entries were dropped in all.
pub fn bounded_mapping(
    py: Python<'_>,
    api: &RecordingApi,
    mapping: Option<&Bound<'_, PyAny>>,
    max: Option<usize>,
    max_length: Option<usize>,
) -> (Attributes, u32) {
    let Some(mapping) = mapping.filter(|m| !m.is_none() && m.is_truthy().unwrap_or(false)) else { return (Vec::new(), 0) };
    if max == Some(0) {
        return (Vec::new(), mapping.len().unwrap_or(0) as u32);
    }
    let (cleaned, invalid) = clean_mapping(py, api, mapping, max_length);
    let (kept, evicted) = bounded(cleaned, max);
    api.warn_evictions(py, evicted);
    (kept, invalid + evicted)
}

/// A recorded value as Python holds it (tuples for sequences, dicts for mappings).
pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::BigInt(text) => py.get_type::<PyInt>().call1((text,))?,
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Str(text) => PyString::new(py, text).into_any(),
        Value::Surrogates(bytes) => PyBytes::new(py, bytes).call_method1("decode", ("utf-8", "surrogatepass"))?,
        Value::Bytes(bytes) => PyBytes::new(py, bytes).into_any(),
        Value::Seq(items) => PyTuple::new(py, items.iter().map(|item| to_python(py, item)).collect::<PyResult<Vec<_>>>()?)?.into_any(),
        Value::Map(entries) => {
            let dict = PyDict::new(py);
            for (key, item) in entries {
                dict.set_item(key, to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Attributes as a Python dict, in order.
pub fn attributes_to_python<'py>(py: Python<'py>, attributes: &Attributes) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, value) in attributes {
        dict.set_item(key, to_python(py, value)?)?;
    }
    Ok(dict)
}
