//! A caller-supplied clock (a Python callable returning Unix seconds), for
//! tests and simulations. A clock that fails or returns nonsense falls back to
//! the system time for that reading, and the failure is counted, except for
//! `KeyboardInterrupt` and `SystemExit`: those are held and raised by the
//! native call that read the clock, once it is done (`interrupted`), as are
//! those a composite sampler's Python predicates and composables raise.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;

thread_local! {
    /// A KeyboardInterrupt or SystemExit a clock raised on this thread, to re-raise.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Whether `error` is a KeyboardInterrupt or a SystemExit, which no failure
/// handling may swallow.
pub fn is_interrupt(py: Python<'_>, error: &PyErr) -> bool {
    error.is_instance_of::<PyKeyboardInterrupt>(py) || error.is_instance_of::<PySystemExit>(py)
}

/// Hold `error` for `interrupted` when it is a KeyboardInterrupt or a
/// SystemExit (the user's Ctrl-C, an exit: never swallowed); true if held.
pub fn hold_interrupt(py: Python<'_>, error: PyErr) -> bool {
    if !is_interrupt(py, &error) {
        return false;
    }
    PENDING.with(|pending| {
        pending.borrow_mut().get_or_insert(error);
    });
    true
}

/// `Err` with a KeyboardInterrupt or SystemExit that a clock raised during
/// this native call; native entry points that read a clock end with this.
pub fn interrupted() -> PyResult<()> {
    match PENDING.with(|pending| pending.borrow_mut().take()) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

use crate::clock::{Clock, SystemClock};

/// A clock from Python: called for the wall time; its `monotonic()` method,
/// when it has one, gives monotonic time (a plain callable is both, as a
/// simulated clock that moves one time for everything).
pub struct PyClock {
    callable: Py<PyAny>,
    monotonic: Option<Py<PyAny>>,
    failures: AtomicU64,
}

impl PyClock {
    pub fn new(callable: Py<PyAny>) -> Self {
        let monotonic = Python::attach(|py| callable.bind(py).getattr("monotonic").ok().filter(|m| m.is_callable()).map(Bound::unbind));
        PyClock { callable, monotonic, failures: AtomicU64::new(0) }
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }
}

impl PyClock {
    fn read(&self, callable: &Py<PyAny>, fallback: fn(&SystemClock) -> f64) -> f64 {
        let reading =
            Python::attach(|py| callable.bind(py).call0().and_then(|v| v.extract::<f64>()).map_err(|error| hold_interrupt(py, error)));
        match reading {
            Ok(seconds) if seconds.is_finite() => seconds,
            Err(true) => fallback(&SystemClock),
            _ => {
                self.failures.fetch_add(1, Relaxed);
                fallback(&SystemClock)
            }
        }
    }
}

impl Clock for PyClock {
    fn now(&self) -> f64 {
        self.read(&self.callable, SystemClock::now)
    }

    fn monotonic(&self) -> f64 {
        match &self.monotonic {
            Some(monotonic) => self.read(monotonic, SystemClock::monotonic),
            None => self.read(&self.callable, SystemClock::now),
        }
    }
}

/// The `clock=` argument: a callable, or None for the system clock.
pub fn from_argument(clock: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Arc<PyClock>>> {
    match clock {
        None => Ok(None),
        Some(callable) if callable.is_callable() => Ok(Some(Arc::new(PyClock::new(callable.clone().unbind())))),
        Some(other) => Err(super::errors::config_message(format!(
            "clock: expected a callable returning Unix time in seconds, got {}",
            super::args::shown(other)
        ))),
    }
}
