//! tracesieve's native core: consistent-probability arithmetic, the `ot`
//! tracestate entry, sampling plans and lock-free counters, plus (with the
//! `python` feature) the thin PyO3 layer that exposes them as `tracesieve._core`.

pub mod adaptive;
pub mod budget;
pub mod cells;
pub mod clock;
pub mod composable;
pub mod config;
pub mod data;
pub mod dedup;
pub mod describe;
pub mod explain;
pub mod ot_entry;
pub mod pipeline;
pub mod plan;
pub mod rate_limit;
pub mod recording;
pub mod remote;
pub mod rules;
pub mod sampler;
pub mod scrub;
pub mod stats;
pub mod store;
pub mod tail_buffer;
pub mod tail_share;
pub mod threshold;
pub mod window;
pub mod words;
pub mod xray;

#[cfg(feature = "python")]
mod python;
