//! The OpenTelemetry Python objects the hot path touches, looked up once per
//! interpreter and kept as strong references, plus interned attribute names.

use std::sync::atomic::AtomicU64;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

pub struct OtelApi {
    pub decision_drop: Py<PyAny>,
    pub decision_record_and_sample: Py<PyAny>,
    pub decision_record_only: Py<PyAny>,
    pub sampling_result_type: Py<PyType>,
    pub trace_state_type: Py<PyType>,
    pub span_context_type: Py<PyType>,
    pub span_abc: Py<PyType>,
    /// Span types known to keep their context in `_context`.
    pub sdk_span_type: Py<PyType>,
    pub non_recording_span_type: Py<PyType>,
    /// The context key under which the current span is stored.
    pub span_key: Py<PyString>,
    /// `opentelemetry.context.__dict__`, to see whether the runtime context was swapped.
    pub context_globals: Py<PyDict>,
    /// The version tag `context_globals` had when the stock runtime context
    /// was last seen installed (0: not yet), so an unchanged module is not searched again.
    pub stock_context_at: AtomicU64,
    pub get_current: Py<PyAny>,
    /// The runtime context seen at start-up and, when it is the stock
    /// contextvars one, its ContextVar (read natively while it stays installed).
    pub runtime_context: Py<PyAny>,
    pub context_var: Option<Py<PyAny>>,
    pub empty_attributes: Py<PyAny>,
    /// `SpanKind` members in `.value` order (INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER).
    pub span_kinds: [Py<PyAny>; 5],
    pub mapping_abc: Py<PyAny>,
    pub empty_tuple: Py<PyTuple>,
    /// `SamplingResult(DROP, None, None)`: every dropped root span shares it.
    pub drop_root: Py<PyAny>,
    /// `SamplingResult(RECORD_AND_SAMPLE, None, None)`: the last-resort keep.
    pub keep_bare: Py<PyAny>,
    pub names: Names,
}

/// Interned attribute names.
pub struct Names {
    pub decision: Py<PyString>,
    pub attributes: Py<PyString>,
    pub trace_state: Py<PyString>,
    pub dict: Py<PyString>,
    pub context: Py<PyString>,
    pub runtime_context: Py<PyString>,
    pub get_span_context: Py<PyString>,
    pub ot: Py<PyString>,
}

static API: PyOnceLock<OtelApi> = PyOnceLock::new();

impl OtelApi {
    pub fn get(py: Python<'_>) -> PyResult<&'static OtelApi> {
        API.get_or_try_init(py, || OtelApi::load(py))
    }

    fn load(py: Python<'_>) -> PyResult<OtelApi> {
        let sampling = py.import("opentelemetry.sdk.trace.sampling")?;
        let decision = sampling.getattr("Decision")?;
        let span_module = py.import("opentelemetry.trace.span")?;
        let propagation = py.import("opentelemetry.trace.propagation")?;
        let sdk_trace = py.import("opentelemetry.sdk.trace")?;
        let context_module = py.import("opentelemetry.context")?;
        let contextvars_module = py.import("opentelemetry.context.contextvars_context")?;

        let runtime_context = context_module.getattr("_RUNTIME_CONTEXT")?;
        let contextvars_type = contextvars_module.getattr("ContextVarsRuntimeContext")?;
        let context_var = if runtime_context.get_type().is(&contextvars_type) {
            Some(runtime_context.getattr("_current_context")?.unbind())
        } else {
            None
        };

        let types = py.import("types")?;
        let empty_attributes = types.getattr("MappingProxyType")?.call1((PyDict::new(py),))?;
        let sampling_result_type = sampling.getattr("SamplingResult")?.cast_into::<PyType>()?;
        let decision_drop = decision.getattr("DROP")?;
        let drop_root = sampling_result_type.call1((&decision_drop, py.None(), py.None()))?;
        let keep_bare = sampling_result_type.call1((decision.getattr("RECORD_AND_SAMPLE")?, py.None(), py.None()))?;

        let names = Names {
            decision: intern!(py, "decision").clone().unbind(),
            attributes: intern!(py, "attributes").clone().unbind(),
            trace_state: intern!(py, "trace_state").clone().unbind(),
            dict: intern!(py, "_dict").clone().unbind(),
            context: intern!(py, "_context").clone().unbind(),
            runtime_context: intern!(py, "_RUNTIME_CONTEXT").clone().unbind(),
            get_span_context: intern!(py, "get_span_context").clone().unbind(),
            ot: intern!(py, "ot").clone().unbind(),
        };

        Ok(OtelApi {
            decision_drop: decision_drop.unbind(),
            decision_record_and_sample: decision.getattr("RECORD_AND_SAMPLE")?.unbind(),
            decision_record_only: decision.getattr("RECORD_ONLY")?.unbind(),
            sampling_result_type: sampling_result_type.unbind(),
            trace_state_type: span_module.getattr("TraceState")?.cast_into::<PyType>()?.unbind(),
            span_context_type: span_module.getattr("SpanContext")?.cast_into::<PyType>()?.unbind(),
            span_abc: span_module.getattr("Span")?.cast_into::<PyType>()?.unbind(),
            sdk_span_type: sdk_trace.getattr("_Span")?.cast_into::<PyType>()?.unbind(),
            non_recording_span_type: span_module.getattr("NonRecordingSpan")?.cast_into::<PyType>()?.unbind(),
            span_key: propagation.getattr("_SPAN_KEY")?.cast_into::<PyString>()?.unbind(),
            get_current: context_module.getattr("get_current")?.unbind(),
            context_globals: context_module.dict().unbind(),
            stock_context_at: AtomicU64::new(0),
            runtime_context: runtime_context.unbind(),
            context_var,
            empty_attributes: empty_attributes.unbind(),
            span_kinds: {
                let kind = py.import("opentelemetry.trace")?.getattr("SpanKind")?;
                let member = |name: &str| kind.getattr(name).map(Bound::unbind);
                [member("INTERNAL")?, member("SERVER")?, member("CLIENT")?, member("PRODUCER")?, member("CONSUMER")?]
            },
            mapping_abc: py.import("collections.abc")?.getattr("Mapping")?.unbind(),
            empty_tuple: PyTuple::empty(py).unbind(),
            drop_root: drop_root.unbind(),
            keep_bare: keep_bare.unbind(),
            names,
        })
    }
}
