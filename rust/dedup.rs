//! A bounded memory of span keys already exported: a hash set plus a ring
//! that evicts the oldest key once `capacity` keys are held. Identity keys
//! (trace id, span id) are stored whole, so they never collide; content keys
//! are 128-bit xxh3 hashes of a span's canonical bytes.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use xxhash_rust::xxh3::xxh3_128;

use crate::config::ConfigError;

/// A span's identity: trace id and span id, exact.
pub type SpanKey = (u128, u64);

/// The keys delivered, plus the keys of batches being exported now. A key is
/// remembered only once its export succeeded, so a batch whose export failed
/// is not swallowed when it is sent again. The lock is taken by the export
/// thread only, never on the application's span path.
pub struct SeenSet {
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    delivered: HashSet<SpanKey>,
    order: VecDeque<SpanKey>,
    /// Keys inside an export right now: a concurrent copy is a duplicate.
    pending: HashSet<SpanKey>,
}

impl SeenSet {
    pub fn new(capacity: usize) -> Result<SeenSet, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::new("window", "0 spans; expected a positive number of spans to remember"));
        }
        // Grown on demand: a small table stays in cache while the window fills.
        Ok(SeenSet { capacity, inner: Mutex::new(Seen::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Which keys of a batch are new (neither delivered nor being exported),
    /// reserving them until [`SeenSet::finish`]. A key twice in one batch is new once.
    pub fn begin(&self, keys: &[SpanKey]) -> Vec<bool> {
        let mut seen = self.lock();
        keys.iter()
            .map(|key| {
                if seen.delivered.contains(key) {
                    return false;
                }
                seen.pending.insert(*key)
            })
            .collect()
    }

    /// The export of reserved keys is over: remember them if it delivered
    /// (forgetting the oldest beyond the capacity), release them if not.
    pub fn finish(&self, keys: &[SpanKey], delivered: bool) {
        let mut seen = self.lock();
        for key in keys {
            if !seen.pending.remove(key) || !delivered {
                continue;
            }
            if seen.delivered.insert(*key) {
                seen.order.push_back(*key);
                if seen.order.len() > self.capacity {
                    if let Some(oldest) = seen.order.pop_front() {
                        seen.delivered.remove(&oldest);
                    }
                }
            }
        }
    }

    /// Keys remembered as delivered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Content hash: fields are tagged and length-prefixed into one buffer (so
/// boundaries are unambiguous), then hashed in one pass.
pub struct ContentHasher(Vec<u8>);

impl Default for ContentHasher {
    fn default() -> Self {
        // Room for a typical span, so hashing one allocates once.
        ContentHasher(Vec::with_capacity(512))
    }
}

impl ContentHasher {
    pub fn bytes(&mut self, tag: u8, data: &[u8]) {
        self.0.push(tag);
        self.0.extend_from_slice(&(data.len() as u64).to_le_bytes());
        self.0.extend_from_slice(data);
    }

    pub fn int(&mut self, tag: u8, value: i128) {
        self.0.push(tag);
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    /// The key to store: the 128-bit digest, in the identity key's shape.
    pub fn finish(&self) -> SpanKey {
        (xxh3_128(&self.0), u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(seen: &SeenSet, keys: &[SpanKey], delivered: bool) -> Vec<bool> {
        let fresh = seen.begin(keys);
        let reserved: Vec<SpanKey> = keys.iter().zip(&fresh).filter(|(_, f)| **f).map(|(k, _)| *k).collect();
        seen.finish(&reserved, delivered);
        fresh
    }

    #[test]
    fn duplicates_are_caught_within_the_window_and_forgotten_after() {
        let seen = SeenSet::new(3).unwrap();
        assert_eq!(send(&seen, &[(1, 1)], true), [true]);
        assert_eq!(send(&seen, &[(1, 1), (1, 2)], true), [false, true]);
        assert_eq!(send(&seen, &[(2, 1), (3, 3)], true), [true, true]);
        assert_eq!(seen.len(), 3);
        assert_eq!(send(&seen, &[(1, 1)], true), [true], "the oldest key was evicted");
        assert_eq!(send(&seen, &[(3, 3)], true), [false]);
    }

    #[test]
    fn only_delivered_spans_are_remembered() {
        let seen = SeenSet::new(10).unwrap();
        assert_eq!(send(&seen, &[(1, 1), (1, 2)], false), [true, true]);
        assert_eq!(send(&seen, &[(1, 1), (1, 2)], false), [true, true], "a failed export is not remembered");
        assert_eq!(send(&seen, &[(1, 1), (1, 2)], true), [true, true]);
        assert_eq!(send(&seen, &[(1, 1), (1, 2)], true), [false, false]);
    }

    #[test]
    fn a_copy_in_flight_is_a_duplicate() {
        let seen = SeenSet::new(10).unwrap();
        assert_eq!(seen.begin(&[(5, 5), (5, 5)]), [true, false]);
        assert_eq!(seen.begin(&[(5, 5)]), [false], "being exported now");
        seen.finish(&[(5, 5)], false);
        assert_eq!(seen.begin(&[(5, 5)]), [true], "released after a failure");
    }

    #[test]
    fn identity_keys_never_collide() {
        let seen = SeenSet::new(1000).unwrap();
        let keys: Vec<SpanKey> = (0..10u128).flat_map(|t| (0..100u64).map(move |s| (t, s))).collect();
        assert!(send(&seen, &keys, true).into_iter().all(|fresh| fresh));
    }

    #[test]
    fn content_hashes_separate_fields() {
        let key = |parts: &[&[u8]]| {
            let mut h = ContentHasher::default();
            for p in parts {
                h.bytes(1, p);
            }
            h.finish()
        };
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"ab", b"c"]), key(&[b"ab", b"c"]));
    }

    #[test]
    fn zero_capacity_is_rejected() {
        assert!(SeenSet::new(0).is_err());
    }
}
