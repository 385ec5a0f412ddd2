//! With the `python` feature, tell the binding layer about the target
//! interpreter (free-threaded or not) through pyo3's cfgs.

fn main() {
    #[cfg(feature = "python")]
    pyo3_build_config::use_pyo3_cfgs();
}
