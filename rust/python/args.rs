//! Reading constructor arguments: every check of a Python-supplied setting,
//! with messages that name the field, the value and what would be valid.
//! Range rules shared with configuration files live in `crate::config`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

use super::errors::{config_error, config_message};
use crate::config;

/// `type value` as a message shows it, e.g. `str '0.1'`: the repr clipped as
/// `words::clipped` does, an integer too long for Python to print described, and a
/// value whose repr fails named by its type (a message must never raise).
pub fn shown(value: &Bound<'_, PyAny>) -> String {
    let kind = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".to_owned());
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        let bits = value.call_method0("bit_length").and_then(|b| b.extract::<u64>()).unwrap_or(0);
        if bits > 128 {
            return format!("an integer of about {} digits", (bits as f64 * std::f64::consts::LOG10_2) as u64 + 1);
        }
    }
    let Ok(repr) = value.repr().map(|r| r.to_string()) else { return format!("<unprintable {kind}>") };
    format!("{kind} {}", crate::words::clipped(repr))
}

/// True or False, nothing else.
pub fn flag(field: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    match value.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(config_message(format!("{field}: expected True or False, got {}", shown(value)))),
    }
}

/// A real number (int, float, Fraction, Decimal...), not a bool or a string.
pub fn number(field: &str, value: &Bound<'_, PyAny>, expected: &str) -> PyResult<f64> {
    let real = !value.is_instance_of::<PyBool>()
        && !value.is_instance_of::<PyString>()
        && (value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() || value.hasattr("__float__")?);
    if !real {
        return Err(config_message(format!("{field}: expected {expected}, got {}", shown(value))));
    }
    value.extract::<f64>().map_err(|_| config_message(format!("{field}: expected {expected}, got {}", shown(value))))
}

/// A probability in [0, 1].
pub fn probability(field: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    config::probability(field, number(field, value, "a number in [0, 1]")?).map_err(config_error)
}

/// A finite number of seconds, > 0 (or >= 0 when `zero_allowed`).
pub fn seconds(field: &str, value: &Bound<'_, PyAny>, zero_allowed: bool) -> PyResult<f64> {
    let seconds = number(field, value, "a number of seconds")?;
    config::seconds(field, seconds, zero_allowed).map_err(config_error)
}

/// A finite positive number (a budget, a price, a rate).
pub fn positive(field: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let number = number(field, value, "a positive number")?;
    config::positive(field, number).map_err(config_error)
}

/// A whole number >= `minimum` (an int, not a bool or a float).
pub fn count(field: &str, value: &Bound<'_, PyAny>, minimum: u64) -> PyResult<u64> {
    let whole = value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>();
    let expected = format!("a whole number >= {minimum}");
    if !whole {
        return Err(config_message(format!("{field}: expected {expected}, got {}", shown(value))));
    }
    match value.extract::<i128>() {
        Ok(n) if n >= i128::from(minimum) && n <= i128::from(u64::MAX) => Ok(n as u64),
        Ok(n) if n < 0 && minimum == 0 => Err(config_message(format!("{field}: {n} is negative; expected a count >= 0"))),
        Ok(n) if n < 1 && minimum == 1 => Err(config_message(format!("{field}: {n} is not a positive whole number"))),
        Ok(n) => Err(config_message(format!("{field}: {n} is out of range; expected {expected}"))),
        Err(_) => Err(config_message(format!("{field}: {} is out of range; expected {expected}", shown(value)))),
    }
}

/// A string.
pub fn text(field: &str, value: &Bound<'_, PyAny>, expected: &str) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(s) => utf8(field, s),
        Err(_) => Err(config_message(format!("{field}: expected {expected}, got {}", shown(value)))),
    }
}

/// A Python string as UTF-8, any unpaired surrogate in it written as Python
/// writes it (`\udcff`): for what is shown or read as text, never raising.
pub fn shown_text(value: &Bound<'_, PyString>) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => value
            .call_method1("encode", ("utf-8", "backslashreplace"))
            .and_then(|bytes| bytes.extract::<Vec<u8>>())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|_| value.to_string_lossy().into_owned()),
    }
}

/// A Python string as UTF-8. One that has none holds an unpaired surrogate:
/// a `\ud800` escape in a file, or bytes that are not UTF-8 in a file name or
/// the environment, which Python decodes so. The value is not shown: it may be
/// a URL with a password in it.
pub fn utf8(field: &str, value: &Bound<'_, PyString>) -> PyResult<String> {
    match value.to_str() {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(config_message(format!(
            "{field}: not valid text (an unpaired UTF-16 surrogate: a lone \\ud800 escape, or bytes that are not UTF-8 in a \
             file name or the environment); expected Unicode text"
        ))),
    }
}

/// An optional argument: None stays None.
pub fn optional<'py, T>(value: Option<&Bound<'py, PyAny>>, read: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<T>) -> PyResult<Option<T>> {
    match value {
        Some(v) if !v.is_none() => read(v).map(Some),
        _ => Ok(None),
    }
}
