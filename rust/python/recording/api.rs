//! The Python objects native spans use, looked up once per interpreter: the
//! SDK's context, status, trace flags and context classes, the loggers whose
//! warnings spans repeat, and `tracesieve._spans` (the SDK-exact slow paths).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};

pub struct RecordingApi {
    /// `opentelemetry.context.Context`.
    pub context_type: Py<PyType>,
    pub baggage_key: Py<PyString>,
    pub status_type: Py<PyType>,
    /// `StatusCode` members by value (UNSET, OK, ERROR).
    pub status_codes: [Py<PyAny>; 3],
    pub trace_flags_type: Py<PyType>,
    /// `tuple.__new__`, to make `SpanContext` tuples without running their checks twice.
    pub tuple_new: Py<PyAny>,
    /// `opentelemetry.context.attach` / `detach`, for a runtime context that is not the stock one.
    pub attach: Py<PyAny>,
    pub detach: Py<PyAny>,
    /// Loggers whose warnings a span repeats as the SDK's `_Span` gives them.
    pub sdk_logger: Py<PyAny>,
    pub attributes_logger: Py<PyAny>,
    /// `tracesieve._spans`.
    pub spans: Py<PyModule>,
    pub drop_value: Py<PyAny>,
    /// `Status(StatusCode.UNSET)`, shared.
    pub unset_status: Py<PyAny>,
    /// What the installed SDK logs when a full attributes dict drops its oldest entry (None: nothing).
    pub eviction_warning: Option<String>,
}

static API: PyOnceLock<RecordingApi> = PyOnceLock::new();

impl RecordingApi {
    pub fn get(py: Python<'_>) -> PyResult<&'static RecordingApi> {
        API.get_or_try_init(py, || RecordingApi::load(py))
    }

    fn load(py: Python<'_>) -> PyResult<RecordingApi> {
        let context = py.import("opentelemetry.context")?;
        let status = py.import("opentelemetry.trace.status")?;
        let status_code = status.getattr("StatusCode")?;
        let logging = py.import("logging")?;
        let spans = py.import("tracesieve._spans")?;
        let status_type = status.getattr("Status")?.cast_into::<PyType>()?;
        let unset = status_code.getattr("UNSET")?;
        Ok(RecordingApi {
            context_type: context.getattr("Context")?.cast_into::<PyType>()?.unbind(),
            baggage_key: py.import("opentelemetry.baggage")?.getattr("_BAGGAGE_KEY")?.cast_into::<PyString>()?.unbind(),
            unset_status: status_type.call1((&unset,))?.unbind(),
            status_type: status_type.unbind(),
            status_codes: [unset.unbind(), status_code.getattr("OK")?.unbind(), status_code.getattr("ERROR")?.unbind()],
            trace_flags_type: py.import("opentelemetry.trace.span")?.getattr("TraceFlags")?.cast_into::<PyType>()?.unbind(),
            tuple_new: py.get_type::<pyo3::types::PyTuple>().getattr("__new__")?.unbind(),
            attach: context.getattr("attach")?.unbind(),
            detach: context.getattr("detach")?.unbind(),
            sdk_logger: logging.call_method1("getLogger", ("opentelemetry.sdk.trace",))?.unbind(),
            attributes_logger: logging.call_method1("getLogger", ("opentelemetry.attributes",))?.unbind(),
            drop_value: spans.getattr("DROP")?.unbind(),
            eviction_warning: spans.call_method0("eviction_warning")?.extract()?,
            spans: spans.unbind(),
        })
    }

    /// The SDK's warning for each attribute a full dict dropped.
    pub fn warn_evictions(&self, py: Python<'_>, times: u32) {
        if let Some(message) = &self.eviction_warning {
            for _ in 0..times {
                self.warn(py, &self.attributes_logger, message, &[]);
            }
        }
    }

    /// A warning as the SDK logs it: `message` with `%s` arguments, on `logger`.
    /// Logging must never break a span: a failing handler is ignored.
    pub fn warn(&self, py: Python<'_>, logger: &Py<PyAny>, message: &str, args: &[Bound<'_, PyAny>]) {
        let mut items: Vec<Bound<'_, PyAny>> = Vec::with_capacity(args.len() + 1);
        items.push(PyString::new(py, message).into_any());
        items.extend(args.iter().cloned());
        if let Ok(call_args) = pyo3::types::PyTuple::new(py, items) {
            if logger.bind(py).call_method1("warning", call_args).is_err() {
                // Whatever a handler raised stays out of the application.
                let _ = PyErr::take(py);
            }
        }
    }
}
