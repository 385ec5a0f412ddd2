//! Plain Python data (dicts, lists, strings, numbers, booleans, None) into the
//! neutral [`Data`] tree the Rust configuration parsers read.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::errors::config_message;
use crate::data::{Data, Path};

/// Deeper nesting than any sane configuration; also stops reference cycles.
const MAX_DEPTH: usize = 32;
/// More values than any sane configuration: shared references (a list placed
/// in itself many times over) cannot expand into an enormous tree.
const MAX_VALUES: usize = 1_000_000;

/// A [`Data`] tree as plain Python data (dicts, lists, strings, numbers, None).
pub fn from_data<'py>(py: Python<'py>, data: &Data) -> PyResult<Bound<'py, PyAny>> {
    Ok(match data {
        Data::Null => py.None().into_bound(py),
        Data::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Data::Int(i) => i.into_pyobject(py)?.into_any(),
        Data::Float(f) => f.into_pyobject(py)?.into_any(),
        Data::Str(s) => PyString::new(py, s).into_any(),
        Data::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(from_data(py, item)?)?;
            }
            list.into_any()
        }
        Data::Map(entries) => {
            let dict = PyDict::new(py);
            for (key, value) in entries {
                dict.set_item(key, from_data(py, value)?)?;
            }
            dict.into_any()
        }
    })
}

pub fn to_data(value: &Bound<'_, PyAny>, path: &Path) -> PyResult<Data> {
    let mut budget = MAX_VALUES;
    convert(value, path, 0, &mut budget)
}

fn convert(value: &Bound<'_, PyAny>, path: &Path, depth: usize, budget: &mut usize) -> PyResult<Data> {
    if depth > MAX_DEPTH {
        return Err(config_message(format!("{}: nested more than {MAX_DEPTH} levels deep", path.as_str())));
    }
    if *budget == 0 {
        return Err(config_message(format!(
            "{}: more than {} values in all; expected at most that many",
            path.as_str(),
            crate::words::thousands(MAX_VALUES as u64)
        )));
    }
    *budget -= 1;
    if value.is_none() {
        return Ok(Data::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Data::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        return match value.extract::<i64>() {
            Ok(i) => Ok(Data::Int(i)),
            Err(_) => value.extract::<f64>().map(Data::Float).map_err(|_| out_of_range(value, path)),
        };
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Data::Float(value.extract::<f64>()?));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Data::Str(text(s, path)?));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(dict.len());
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(config_message(format!("{}: keys must be strings, got {}", path.as_str(), super::args::shown(&key))));
            };
            let key = text(key, path)?;
            let item = convert(&item, &path.member(&key), depth + 1, budget)?;
            entries.push((key, item));
        }
        return Ok(Data::Map(entries));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in value.try_iter()?.enumerate() {
            items.push(convert(&item?, &path.index(i), depth + 1, budget)?);
        }
        return Ok(Data::List(items));
    }
    // Other real numbers (Fraction, Decimal, numpy scalars) by their float value.
    if value.hasattr("__float__")? && !value.hasattr("__len__")? {
        return value.extract::<f64>().map(Data::Float).map_err(|_| out_of_range(value, path));
    }
    Err(config_message(format!(
        "{}: {} values are not plain data; expected a dict, list, string, number, boolean or None",
        path.as_str(),
        value.get_type().name()?
    )))
}

fn text(s: &Bound<'_, PyString>, path: &Path) -> PyResult<String> {
    super::args::utf8(path.as_str(), s)
}

/// A number no float can hold (an integer of hundreds of digits).
fn out_of_range(value: &Bound<'_, PyAny>, path: &Path) -> PyErr {
    // Python refuses to print integers of more than 4,300 digits.
    let shown = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "a number too long to print".into());
    let length = shown.chars().count();
    let shown = if length > 40 { format!("{}... ({length} characters)", shown.chars().take(40).collect::<String>()) } else { shown };
    config_message(format!("{}: {shown} is out of range; expected a number within ±1.7e308", path.as_str()))
}
