//! What an ended span tells the adaptive stage's windows, from its record: an
//! error, its duration, its route, and how many spans it stands for (as
//! `ErrorWindowProcessor` reads them from an SDK span).

use super::record::SpanRecord;
use super::value::Value;
use crate::adaptive::{whole_weight, Signals};
use crate::rules::ROUTE_KEYS;
use crate::threshold::adjusted_count;

/// Record one ended span into `signals`.
pub fn feed(signals: &Signals, record: &SpanRecord) {
    let duration = record.end_time.checked_sub(record.start_time).map(|ns| ns as f64 / 1e9);
    let route = ROUTE_KEYS.iter().find_map(|key| match record.attribute(key) {
        Some(Value::Str(text)) => Some(text.as_str()),
        _ => None,
    });
    signals.record_span(record.error, duration, route, weight(signals, record));
}

/// How many spans this one stands for: 1 when drops are recorded too (every
/// span reaches the windows), else the adjusted count of its `th`.
fn weight(signals: &Signals, record: &SpanRecord) -> u64 {
    if record.flags & 1 == 0 {
        signals.set_all_recorded(true);
        return 1;
    }
    if signals.all_recorded() {
        return 1;
    }
    match record.threshold() {
        Some(th) => whole_weight(adjusted_count(th), record.span_id),
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use std::sync::Arc;

    #[test]
    fn errors_durations_and_routes_reach_the_windows() {
        let signals = Signals::new(Arc::new(FixedClock(1000.0)), 60.0, 1.0, 0.5, &[("/pay".to_owned(), 0.1)]).unwrap();
        let mut record = SpanRecord { flags: 1, start_time: 0, end_time: 200_000_000, ..SpanRecord::default() };
        record.attributes.push(("http.route".into(), Value::Str("/pay".into())));
        record.error = true;
        feed(&signals, &record);
        let counts = signals.counts();
        assert_eq!((counts.spans, counts.errors, counts.slow), (1, 1, 1), "slow for /pay's own threshold");
        record.flags = 0;
        feed(&signals, &record);
        assert!(signals.all_recorded());
    }
}
