//! Which rule a request gets, remembered per table: requests repeat (the same
//! routes, methods and hosts), so after the first of each, finding its rule
//! costs one hash and one atomic load instead of trying every rule. Only
//! choices that read no attribute of the span are remembered (a rule with
//! `Attributes` was reached: the next span may differ there).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::pattern::Field;
use super::request::{Fields, Request};

const SLOTS: usize = 4096;
/// Index bits of a slot; the rest is the request's fingerprint.
const INDEX_BITS: u32 = 16;
const NONE_MATCHED: u64 = (1 << INDEX_BITS) - 1;

/// A direct-mapped table of `fingerprint | rule index` (0: empty). Two
/// requests share a slot's fingerprint with odds of 2^-48: then the later
/// one gets the earlier one's rule. The hash is seeded afresh per table, so
/// no one can craft request paths that collide on purpose.
pub struct Memo {
    slots: Box<[AtomicU64]>,
    seed: u64,
    /// The fields some rule constrains: the key is made of these alone.
    fields: Fields,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

impl Memo {
    pub fn new(fields: Fields) -> Memo {
        Memo { slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(), seed: fastrand::u64(..), fields }
    }
}

impl Memo {
    /// The request's fields (those some rule constrains) in one hash: each
    /// field hashed with the previous hash as its seed (xxh3 mixes in each
    /// input's length, so fields cannot run into one another).
    #[inline]
    pub fn fingerprint(&self, request: &Request<'_>) -> u64 {
        let wanted = self.fields;
        let all = [
            (wanted.url_path, request.url_path),
            (wanted.method, request.method),
            (wanted.host, request.host),
            (wanted.lambda_arn, request.lambda_arn),
        ];
        all.iter().filter(|(want, _)| *want).fold(self.seed, |hash, (_, field)| match *field {
            Field::Absent => xxh3_64_with_seed(b"", hash ^ 1),
            Field::Other => xxh3_64_with_seed(b"", hash ^ 2),
            Field::Text(text) => xxh3_64_with_seed(text.as_bytes(), hash ^ 3),
        })
    }

    pub fn fields(&self) -> Fields {
        self.fields
    }

    /// The remembered choice: Some(Some(rule)), Some(None) for "no rule", None when not remembered.
    #[inline]
    pub fn get(&self, hash: u64) -> Option<Option<usize>> {
        let slot = self.slots[hash as usize % SLOTS].load(Relaxed);
        if slot == 0 || slot >> INDEX_BITS != hash >> INDEX_BITS {
            return None;
        }
        let index = slot & NONE_MATCHED;
        Some((index != NONE_MATCHED).then_some(index as usize))
    }

    #[inline]
    pub fn put(&self, hash: u64, choice: Option<usize>) {
        let index = choice.map_or(NONE_MATCHED, |i| i as u64);
        if index > NONE_MATCHED {
            return;
        }
        let slot = (hash >> INDEX_BITS << INDEX_BITS) | index;
        if slot != 0 {
            self.slots[hash as usize % SLOTS].store(slot, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Fields = Fields { url_path: true, method: true, host: true, lambda_arn: true };

    fn request<'a>(path: &'a str, method: Field<'a>) -> Request<'a> {
        Request { url_path: Field::Text(path), method, host: Field::Absent, lambda_arn: Field::Text("") }
    }

    #[test]
    fn remembers_each_request_apart() {
        let memo = Memo::new(ALL);
        let a = memo.fingerprint(&request("/a", Field::Text("GET")));
        let b = memo.fingerprint(&request("/a", Field::Absent));
        let c = memo.fingerprint(&request("/aG", Field::Text("ET")));
        let d = memo.fingerprint(&request("/a", Field::Other));
        assert_ne!(a, Memo::new(ALL).fingerprint(&request("/a", Field::Text("GET"))), "seeded per table");
        assert!(a != b && a != c && a != d && b != c && b != d && c != d);
        assert_eq!(memo.get(a), None);
        memo.put(a, Some(7));
        memo.put(b, None);
        assert_eq!((memo.get(a), memo.get(b), memo.get(c)), (Some(Some(7)), Some(None), None));
    }

    #[test]
    fn a_field_no_rule_constrains_is_not_part_of_the_key() {
        let memo = Memo::new(Fields { url_path: true, ..Fields::default() });
        let get = memo.fingerprint(&request("/a", Field::Text("GET")));
        assert_eq!(get, memo.fingerprint(&request("/a", Field::Text("POST"))));
        assert_ne!(get, memo.fingerprint(&request("/b", Field::Text("GET"))));
    }
}
