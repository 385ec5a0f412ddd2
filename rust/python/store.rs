//! The `store=` argument and what a sampler or processor reports of its store.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::args;
use super::errors::{config_error, config_message};
use crate::budget::settings::BudgetSettings;
use crate::store::Store;

/// `store=`: None for this process's own state, else a store URL (opened
/// without the GIL: an emptied file is made afresh under its lock).
pub fn open(py: Python<'_>, value: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<Store>> {
    match value {
        None => Ok(Arc::new(Store::local())),
        Some(v) if v.is_none() => Ok(Arc::new(Store::local())),
        Some(v) => match v.cast::<PyString>() {
            Ok(url) => {
                let url = args::utf8("store", url)?;
                py.detach(|| Store::open(&url)).map(Arc::new).map_err(config_error)
            }
            Err(_) => Err(config_message(format!(
                "store: expected None or a store URL such as 'file:///run/myapp/sampling.tracesieve', got {}",
                args::shown(v)
            ))),
        },
    }
}

/// The stateful pieces of one sampler or processor: (kind, store, whether shared).
pub type Pieces<'a> = Vec<(&'static str, &'a Arc<Store>, bool)>;

/// `{"url", "shared": [kinds], "local": [kinds], "fallbacks", "problem"}`.
pub fn info<'py>(py: Python<'py>, pieces: &Pieces<'_>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let url = pieces.iter().find_map(|(_, store, _)| store.shown_url());
    out.set_item("url", url)?;
    out.set_item("shared", PyList::new(py, pieces.iter().filter(|p| p.2).map(|p| p.0))?)?;
    out.set_item("local", PyList::new(py, pieces.iter().filter(|p| !p.2).map(|p| p.0))?)?;
    out.set_item("fallbacks", pieces.iter().map(|(_, store, _)| store.fallbacks()).max().unwrap_or(0))?;
    out.set_item("problem", pieces.iter().find_map(|(_, store, _)| store.problem()))?;
    Ok(out)
}

/// A budget's settings as `BudgetSampler` takes them: `budget`, `period`,
/// `timezone`, `cap_forced_keeps`, `downstream`.
pub fn settings_dict<'py>(py: Python<'py>, settings: &BudgetSettings) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("budget", settings.budget)?;
    out.set_item("period", &settings.period)?;
    out.set_item("timezone", &settings.timezone)?;
    out.set_item("cap_forced_keeps", settings.cap_forced)?;
    out.set_item("downstream", &settings.downstream)?;
    Ok(out)
}

/// What changed under the store files of `pieces` since the last check
/// (a file shortened, replaced or removed while in use), each once.
pub fn check(pieces: &Pieces<'_>) -> Vec<String> {
    let mut seen: Vec<*const Store> = Vec::new();
    let mut problems = Vec::new();
    for (_, store, _) in pieces {
        if seen.contains(&Arc::as_ptr(store)) {
            continue;
        }
        seen.push(Arc::as_ptr(store));
        problems.extend(store.check());
    }
    problems
}
