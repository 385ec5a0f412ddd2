//! The PyO3 layer: `tracesieve._core`. Converts arguments and results only;
//! the logic lives in the plain-Rust modules.

mod args;
mod context;
mod convert;
mod dedup;
mod errors;
mod fleet;
mod foreign;
mod otel_api;
mod py_clock;
mod recording;
mod sampler;
mod sampling_result;
pub(crate) mod signals;
mod span_input;
mod span_view;
mod store;
mod tail;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    use pyo3::prelude::*;
    use pyo3::types::PyString;

    use super::errors::{config_error, config_error_type, config_message};
    use crate::{config, ot_entry, threshold};

    #[pymodule_init]
    fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
        super::context::install_native_ids_reader(super::recording::span::native_ids_of);
        module.add("ConfigError", config_error_type(module.py())?)
    }

    #[pymodule_export]
    use super::sampler::NativeSampler;

    #[pymodule_export]
    use super::signals::NativeSignals;

    #[pymodule_export]
    use super::dedup::NativeDedup;

    #[pymodule_export]
    use super::recording::recorder::NativeRecorder;

    #[pymodule_export]
    use super::recording::span::NativeSpan;

    #[pymodule_export]
    use super::recording::span::NativeNonRecordingSpan;

    #[pymodule_export]
    use super::recording::tracer::NativeTracer;

    #[pymodule_export]
    use super::recording::tracer::CurrentSpan;

    #[pymodule_export]
    use super::fleet::fleet_scripts;

    #[pymodule_export]
    use super::fleet::redis_target;

    #[pymodule_export]
    use super::tail::NativeTailBuffer;

    #[pymodule_export]
    const DEFAULT_PRECISION: u32 = threshold::DEFAULT_PRECISION;

    /// Files a host record may take beyond its first (`<name>+2.tracesieve` on).
    #[pymodule_export]
    const RECORD_OVERFLOW_FILES: usize = crate::store::OVERFLOW_FILES;

    /// The first bytes of every store file: a file without them is no store, and is not copied whole to be read.
    #[pymodule_export]
    const STORE_MAGIC: &[u8] = &crate::store::file::MAGIC;

    /// Days a host record no process has open stays before a budget's start removes it.
    #[pymodule_export]
    const RECORD_IDLE_DAYS: u64 = crate::store::idle::IDLE.as_secs() / 86_400;

    /// Remove the host records in `directory` that no process has open and
    /// nobody wrote for `RECORD_IDLE_DAYS`, all of a record's files together;
    /// returns the paths removed.
    #[pyfunction]
    fn remove_idle_records(py: Python<'_>, directory: std::path::PathBuf) -> Vec<String> {
        py.detach(|| crate::store::idle::remove_idle(&directory, crate::store::idle::IDLE))
            .into_iter()
            .map(|path| path.display().to_string())
            .collect()
    }

    /// The host records in `directory`, by name, each with its files (the
    /// first, then its overflow files in the order the store tries them).
    #[pyfunction]
    fn host_records(py: Python<'_>, directory: std::path::PathBuf) -> Vec<(String, Vec<String>)> {
        let records = py.detach(|| crate::store::idle::records_in(&directory));
        records.into_iter().map(|(name, files)| (name, files.iter().map(|path| path.display().to_string()).collect())).collect()
    }

    /// Whether some process has the record file at `path` open, seen without
    /// taking a lock; None where that cannot be seen.
    #[pyfunction]
    fn record_in_use(path: std::path::PathBuf) -> Option<bool> {
        crate::store::idle::in_use(&path)
    }

    /// A batch of announcements keeping `trace_ids` after the fact, for a
    /// fleet's tail-sharing stream (`tracesieve capture`).
    #[pyfunction]
    fn capture_announcement(py: Python<'_>, trace_ids: Vec<u128>) -> Bound<'_, pyo3::types::PyBytes> {
        pyo3::types::PyBytes::new(py, &crate::tail_share::capture_batch(&trace_ids))
    }

    /// The stages a pipeline document may name, in the order the seed gives them.
    #[pyfunction]
    fn pipeline_stages() -> Vec<&'static str> {
        crate::pipeline::STAGES.to_vec()
    }

    /// What the store at `url` holds: why it cannot be used (None when it
    /// can), and its budgets (a host record's every file), as `BudgetSampler`
    /// settings: `budget`, `period`, `timezone`, `cap_forced_keeps`,
    /// `downstream`. For `check`, on a copy of a record: opening a record may
    /// write to it.
    #[pyfunction]
    fn read_record<'py>(py: Python<'py>, url: &str) -> PyResult<(Option<String>, Vec<Bound<'py, pyo3::types::PyDict>>)> {
        let store = crate::store::Store::open(url).map_err(config_error)?;
        let budgets = crate::budget::settings::budgets_in(&store)
            .iter()
            .map(|settings| super::store::settings_dict(py, settings))
            .collect::<PyResult<_>>()?;
        Ok((store.problem(), budgets))
    }

    /// The 56-bit rejection threshold for `probability` (2**56 for probability 0).
    #[pyfunction]
    #[pyo3(signature = (probability, precision = threshold::DEFAULT_PRECISION as i64))]
    fn threshold_for_probability(probability: f64, precision: i64) -> PyResult<u64> {
        let probability = config::probability("probability", probability).map_err(config_error)?;
        let precision = config::precision("precision", precision).map_err(config_error)?;
        Ok(threshold::threshold_for_probability(probability, precision))
    }

    /// The `th` text for a threshold below 2**56.
    #[pyfunction]
    fn encode_th(threshold: u64) -> PyResult<String> {
        if threshold >= threshold::NEVER {
            return Err(config_message(format!("threshold: {threshold} is out of range; expected an integer in [0, 2**56)")));
        }
        Ok(threshold::encode_th(threshold))
    }

    /// The threshold a `th` text stands for, or None when malformed.
    #[pyfunction]
    fn decode_th(text: &Bound<'_, PyString>) -> Option<u64> {
        threshold::decode_th(&super::args::shown_text(text))
    }

    /// How many spans one kept span stands for under `threshold` (0.0 for 2**56).
    #[pyfunction]
    fn adjusted_count(threshold: u64) -> f64 {
        threshold::adjusted_count(threshold)
    }

    /// The sampling probability `threshold` stands for.
    #[pyfunction]
    fn probability_for_threshold(threshold: u64) -> f64 {
        threshold::probability_for_threshold(threshold)
    }

    /// `text` with every password it seems to hold (a URL's userinfo, a
    /// `password=` option) shown as `***`: for what logs and errors quote.
    /// An unpaired surrogate (a file name's bytes that are not UTF-8) is shown
    /// as Python writes it, `\udcff`: a message must never raise.
    #[pyfunction]
    fn scrub(text: &Bound<'_, PyString>) -> String {
        crate::scrub::scrub(&super::args::shown_text(text)).into_owned()
    }

    /// (th, rv) read from an `ot` tracestate value; each None when absent or malformed.
    #[pyfunction]
    fn read_ot(value: &Bound<'_, PyString>) -> (Option<u64>, Option<u64>) {
        let fields = ot_entry::read(&super::args::shown_text(value));
        (fields.th, fields.rv)
    }

    /// `(th, rv, others)` of an `ot` value by the specification's rules: an
    /// invalid `th` or `rv` is None; `others` are the remaining sub-keys, in
    /// order. A malformed value gives `(None, None, None)`.
    #[pyfunction]
    fn parse_ot(value: &Bound<'_, PyString>) -> (Option<u64>, Option<u64>, Option<Vec<String>>) {
        // Not valid Unicode: its escape's backslash makes it malformed.
        let value = &*super::args::shown_text(value);
        match ot_entry::others(value) {
            Some(others) => {
                let fields = ot_entry::read(value);
                (fields.th, fields.rv, Some(others.into_iter().map(str::to_owned).collect()))
            }
            None => (None, None, None),
        }
    }

    /// The `ot` value with `th` set (or removed when None); None when nothing remains.
    #[pyfunction]
    #[pyo3(signature = (previous, threshold))]
    fn rewrite_ot(previous: Option<&Bound<'_, PyString>>, threshold: Option<u64>) -> PyResult<Option<String>> {
        if threshold.is_some_and(|t| t >= threshold::NEVER) {
            return Err(config_message("threshold: expected an integer in [0, 2**56) or None"));
        }
        Ok(ot_entry::rewrite(previous.map(super::args::shown_text).as_deref(), threshold))
    }
}
