//! Native span recording's binding layer: spans (`span.rs`), tracers and the
//! current-span context manager (`tracer.rs`), the recorder a provider steps
//! (`recorder.rs`), values between Python and records (`values.rs`), and the
//! Python objects they use (`api.rs`).

pub mod api;
pub mod recorder;
pub mod span;
pub mod tracer;
pub mod values;
