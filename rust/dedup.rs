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

/// The keys seen; the lock is taken by the export thread only, never on the
/// application's span path.
pub struct SeenSet {
    capacity: usize,
    inner: Mutex<(HashSet<SpanKey>, VecDeque<SpanKey>)>,
}

impl SeenSet {
    pub fn new(capacity: usize) -> Result<SeenSet, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::new("window", "0 spans; expected a positive number of spans to remember"));
        }
        // Grown on demand: a small table stays in cache while the window fills.
        Ok(SeenSet { capacity, inner: Mutex::new((HashSet::new(), VecDeque::new())) })
    }

    /// True when `key` is new (and now remembered); false for a duplicate.
    pub fn insert(&self, key: SpanKey) -> bool {
        self.insert_all(&[key])[0]
    }

    /// `insert` for a batch under one lock: whether each key was new.
    pub fn insert_all(&self, keys: &[SpanKey]) -> Vec<bool> {
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (set, order) = &mut *guard;
        keys.iter()
            .map(|key| {
                if !set.insert(*key) {
                    return false;
                }
                order.push_back(*key);
                if order.len() > self.capacity {
                    if let Some(oldest) = order.pop_front() {
                        set.remove(&oldest);
                    }
                }
                true
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.1.len()).unwrap_or(0)
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

    #[test]
    fn duplicates_are_caught_within_the_window_and_forgotten_after() {
        let seen = SeenSet::new(3).unwrap();
        assert!(seen.insert((1, 1)));
        assert!(!seen.insert((1, 1)));
        assert!(seen.insert((1, 2)));
        assert!(seen.insert((2, 1)));
        assert!(seen.insert((3, 3)));
        assert_eq!(seen.len(), 3);
        assert!(seen.insert((1, 1)), "the oldest key was evicted");
        assert!(!seen.insert((3, 3)));
    }

    #[test]
    fn identity_keys_never_collide() {
        let seen = SeenSet::new(1000).unwrap();
        for trace in 0..10u128 {
            for span in 0..100u64 {
                assert!(seen.insert((trace, span)));
            }
        }
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
