//! The one error type for configuration mistakes, `tracesieve.ConfigError`.
//!
//! It subclasses both `ValueError` and `TypeError` (as numpy's `AxisError`
//! does): a bad value and a value of the wrong type are both configuration
//! mistakes, and code that caught either before keeps working.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::config::ConfigError;

static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const DOC: &str = "A configuration that cannot be used. The message names the field (and the \
file, when there is one), the value, and what would be valid. A subclass of ValueError and TypeError.";

/// The `ConfigError` class, made once per interpreter.
pub fn config_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let class = CONFIG_ERROR.get_or_try_init(py, || {
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "tracesieve")?;
        namespace.set_item("__doc__", DOC)?;
        let bases = PyTuple::new(py, [py.get_type::<PyValueError>(), py.get_type::<PyTypeError>()])?;
        let class = py.get_type::<PyType>().call1(("ConfigError", bases, namespace))?;
        Ok::<_, PyErr>(class.cast_into::<PyType>()?.unbind())
    })?;
    Ok(class.bind(py))
}

/// A `ConfigError` with this message.
pub fn config_message(message: impl Into<String>) -> PyErr {
    // A message may quote a URL the user gave, password and all: the type's
    // __init__ (tracesieve._scrub) scrubs it, for these and the Python-raised ones alike.
    let message = message.into();
    Python::attach(|py| match config_error_type(py) {
        Ok(class) => PyErr::from_type(class.clone(), message),
        Err(error) => error,
    })
}

/// A core [`ConfigError`] as the Python `ConfigError`.
pub fn config_error(error: ConfigError) -> PyErr {
    config_message(error.to_string())
}
