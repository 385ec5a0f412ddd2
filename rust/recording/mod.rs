//! Native span recording: spans recorded as compact byte records, tail
//! decisions made on them natively, the records of dropped traces retained in
//! a byte-bounded ring for keeps that come after the fact. Only kept traces
//! ever become SDK span objects (in the binding layer). See the architecture
//! page, "Native span recording".

pub mod engine;
pub mod feed;
pub mod record;
pub mod ring;
pub mod value;
pub mod view;
pub mod wire;
