//! What X-Ray's targets say for one rule (its reservoir and fixed rate, or
//! the rule's own figures before any target), and the counts a rule reports.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::clock::Moment;
use crate::rate_limit::TokenBucket;
use crate::threshold::threshold_for_probability;

use super::document::{RuleSpec, TargetSpec};

/// What X-Ray's last target for a rule says (or the rule's own figures before any).
#[derive(Debug)]
pub struct Target {
    pub fixed_rate: f64,
    pub threshold: u64,
    /// Traces per second from the reservoir (the quota, or 1 while borrowing).
    pub quota: f64,
    pub reservoir: Option<TokenBucket>,
    /// Unix seconds when the reservoir ends (infinite while borrowing).
    pub reservoir_until: f64,
    /// No target yet: the reservoir is borrowed (one trace a second), and its keeps are counted as borrowed.
    pub borrowing: bool,
}

impl Target {
    pub(super) fn initial(spec: &RuleSpec, precision: u32, now: f64) -> Target {
        let borrowing = spec.reservoir_size > 0;
        Target {
            fixed_rate: spec.fixed_rate,
            threshold: threshold_for_probability(spec.fixed_rate, precision),
            quota: if borrowing { 1.0 } else { 0.0 },
            reservoir: if borrowing { TokenBucket::per_second(1.0, now) } else { None },
            reservoir_until: f64::INFINITY,
            borrowing,
        }
    }

    pub(super) fn from_spec(spec: &TargetSpec, precision: u32, wall: f64, now: f64) -> Target {
        let quota = spec.reservoir_quota.unwrap_or(0.0);
        Target {
            fixed_rate: spec.fixed_rate,
            threshold: threshold_for_probability(spec.fixed_rate, precision),
            quota,
            reservoir: TokenBucket::per_second(quota, now),
            // No TTL: the quota has already ended.
            reservoir_until: spec.reservoir_quota_ttl.unwrap_or(wall),
            borrowing: false,
        }
    }

    /// A trace from the reservoir at this moment, if it has one.
    #[inline]
    pub(super) fn take(&self, now: &Moment) -> bool {
        match &self.reservoir {
            // The wall clock is read only when the bucket has a token to give.
            Some(bucket) => bucket.try_take_if(now.monotonic(), || now.wall() < self.reservoir_until),
            None => false,
        }
    }
}

/// Requests, keeps and borrowed keeps of one rule.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub sampled: AtomicU64,
    pub borrowed: AtomicU64,
}

impl Counts {
    pub(super) fn add(&self, requests: u64, sampled: u64, borrowed: u64) {
        for (counter, n) in [(&self.requests, requests), (&self.sampled, sampled), (&self.borrowed, borrowed)] {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }

    pub(super) fn take(&self) -> (u64, u64, u64) {
        (self.requests.swap(0, Relaxed), self.sampled.swap(0, Relaxed), self.borrowed.swap(0, Relaxed))
    }

    pub fn get(&self) -> (u64, u64, u64) {
        (self.requests.load(Relaxed), self.sampled.load(Relaxed), self.borrowed.load(Relaxed))
    }
}
