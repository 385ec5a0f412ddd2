//! The Python parts of a composite sampler: composables and predicates
//! written in Python, called with the span's arguments when the tree reaches
//! them. What they raise is counted, never raised: a predicate that fails
//! does not match, a composable that fails gives no threshold (a drop).

use std::cell::{Cell, RefCell};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt};
use smallvec::SmallVec;

use crate::composable::ForeignIntent;
use crate::threshold::NEVER;

/// A composite sampler's Python objects, by slot.
pub struct ForeignParts {
    /// Objects with `sampling_intent(...)`.
    pub composables: Vec<Py<PyAny>>,
    /// Callables `(parent_ctx, name, span_kind, attributes, links, trace_state) -> bool`.
    pub predicates: Vec<Py<PyAny>>,
}

/// Python intent objects by composable slot.
type Intents<'py> = SmallVec<[(usize, Bound<'py, PyAny>); 2]>;

/// One span's arguments, for the Python parts the tree reaches.
pub struct ForeignCalls<'a, 'py> {
    parts: &'a ForeignParts,
    py: Python<'py>,
    pub parent_context: Bound<'py, PyAny>,
    pub name: Bound<'py, PyAny>,
    pub kind: Bound<'py, PyAny>,
    pub attributes: Bound<'py, PyAny>,
    pub links: Bound<'py, PyAny>,
    pub trace_state: Bound<'py, PyAny>,
    /// The intents the Python composables returned, by slot.
    intents: RefCell<Intents<'py>>,
    failures: Cell<u64>,
}

impl<'a, 'py> ForeignCalls<'a, 'py> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        py: Python<'py>,
        parts: &'a ForeignParts,
        parent_context: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        links: Option<&Bound<'py, PyAny>>,
        trace_state: Option<&Bound<'py, PyAny>>,
    ) -> Self {
        let or_none = |v: Option<&Bound<'py, PyAny>>| v.cloned().unwrap_or_else(|| py.None().into_bound(py));
        ForeignCalls {
            parts,
            py,
            parent_context: parent_context.clone(),
            name: name.clone(),
            kind: or_none(kind),
            attributes: or_none(attributes),
            links: or_none(links),
            trace_state: or_none(trace_state),
            intents: RefCell::new(SmallVec::new()),
            failures: Cell::new(0),
        }
    }

    /// Calls to Python parts that raised or answered nonsense.
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }

    /// The intent the Python composable in `slot` returned, if it was called.
    pub fn intent_object(&self, slot: usize) -> Option<Bound<'py, PyAny>> {
        self.intents.borrow().iter().find(|(s, _)| *s == slot).map(|(_, intent)| intent.clone())
    }

    fn failed(&self) {
        self.failures.set(self.failures.get() + 1);
    }

    /// The predicate in `slot`, called with keywords as the SDK's rule-based sampler does.
    pub fn predicate(&self, slot: usize) -> bool {
        let Some(predicate) = self.parts.predicates.get(slot) else { return false };
        let call = || -> PyResult<bool> {
            let kwargs = PyDict::new(self.py);
            kwargs.set_item("parent_ctx", &self.parent_context)?;
            kwargs.set_item("name", &self.name)?;
            kwargs.set_item("span_kind", &self.kind)?;
            kwargs.set_item("attributes", &self.attributes)?;
            kwargs.set_item("links", &self.links)?;
            kwargs.set_item("trace_state", &self.trace_state)?;
            predicate.bind(self.py).call((), Some(&kwargs))?.is_truthy()
        };
        call().unwrap_or_else(|error| {
            if !super::py_clock::hold_interrupt(self.py, error) {
                self.failed();
            }
            false
        })
    }

    /// The intent of the composable in `slot`: a threshold of 0 to 2^56 (else
    /// none), and whether it is reliable.
    pub fn intent(&self, slot: usize) -> ForeignIntent {
        let Some(composable) = self.parts.composables.get(slot) else { return ForeignIntent::default() };
        let call = || -> PyResult<(Bound<'py, PyAny>, ForeignIntent)> {
            let args = (&self.parent_context, &self.name, &self.kind, &self.attributes, &self.links, &self.trace_state);
            let intent = composable.bind(self.py).call_method1("sampling_intent", args)?;
            let threshold = intent.getattr("threshold")?;
            let threshold = if threshold.is_instance_of::<PyInt>() { threshold.extract::<i128>().ok() } else { None };
            let threshold = threshold.filter(|t| (0..=i128::from(NEVER)).contains(t)).map(|t| t as u64);
            let reliable = match intent.getattr("threshold_reliable") {
                Ok(value) => value.is_truthy()?,
                Err(_) => true,
            };
            Ok((intent, ForeignIntent { threshold, reliable: threshold.is_some() && reliable }))
        };
        match call() {
            Ok((object, intent)) => {
                self.intents.borrow_mut().push((slot, object));
                intent
            }
            Err(error) => {
                if !super::py_clock::hold_interrupt(self.py, error) {
                    self.failed();
                }
                ForeignIntent::default()
            }
        }
    }
}
