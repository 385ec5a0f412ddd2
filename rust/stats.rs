//! Lock-free decision counters. Each decision touches one or two relaxed atomics;
//! readers get exact totals once the writers are done (no lost updates).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::plan::Path;

/// Counts per decision path; `sampled` counts kept spans over all paths.
#[derive(Debug, Default)]
pub struct Counters {
    by_path: [AtomicU64; Path::COUNT],
    sampled: AtomicU64,
    input_errors: AtomicU64,
    /// Remote parents whose sampling was ignored (`trust_incoming=False`).
    incoming_ignored: AtomicU64,
    /// Drops returned as RECORD_ONLY for a tail stage (`defer`).
    deferred: AtomicU64,
    /// Per rule (the last slot is the default rate): decisions made, spans kept.
    rule_decisions: Vec<AtomicU64>,
    rule_sampled: Vec<AtomicU64>,
}

/// A consistent copy of [`Counters`] for reporting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub decisions: u64,
    pub sampled: u64,
    pub dropped: u64,
    pub by_path: [u64; Path::COUNT],
    pub input_errors: u64,
    pub incoming_ignored: u64,
    pub deferred: u64,
    /// (decisions, sampled) per rule, default last.
    pub by_rule: Vec<(u64, u64)>,
}

impl Counters {
    /// Counters for a plan with `rule_slots` rule outcomes (0 without rules).
    pub fn new(rule_slots: usize) -> Self {
        Counters {
            rule_decisions: (0..rule_slots).map(|_| AtomicU64::new(0)).collect(),
            rule_sampled: (0..rule_slots).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        }
    }

    #[inline]
    pub fn record(&self, path: Path, sampled: bool, rule: Option<usize>) {
        self.by_path[path as usize].fetch_add(1, Relaxed);
        if sampled {
            self.sampled.fetch_add(1, Relaxed);
        }
        if let Some(slot) = rule.and_then(|r| self.rule_decisions.get(r).map(|c| (r, c))) {
            slot.1.fetch_add(1, Relaxed);
            if sampled {
                self.rule_sampled[slot.0].fetch_add(1, Relaxed);
            }
        }
    }

    /// A drop returned as RECORD_ONLY, for a tail stage to decide on.
    #[inline]
    pub fn record_deferred(&self) {
        self.deferred.fetch_add(1, Relaxed);
    }

    /// A span whose input could not be read and was decided by the documented fallback.
    #[inline]
    pub fn record_input_error(&self) {
        self.input_errors.fetch_add(1, Relaxed);
    }

    /// A remote parent's flag, `th` and `rv` ignored: decided as a root.
    #[inline]
    pub fn record_incoming_ignored(&self) {
        self.incoming_ignored.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        // Read `sampled` first: a racing decision may then be counted in
        // `decisions` but not yet in `sampled`, never the reverse, so
        // `dropped` cannot underflow.
        let sampled = self.sampled.load(Relaxed);
        let by_path: [u64; Path::COUNT] = std::array::from_fn(|i| self.by_path[i].load(Relaxed));
        let decisions: u64 = by_path.iter().sum();
        let by_rule = self
            .rule_decisions
            .iter()
            .zip(&self.rule_sampled)
            .map(|(d, s)| {
                let sampled = s.load(Relaxed);
                (d.load(Relaxed).max(sampled), sampled)
            })
            .collect();
        Snapshot {
            decisions,
            sampled,
            dropped: decisions.saturating_sub(sampled),
            by_path,
            input_errors: self.input_errors.load(Relaxed),
            incoming_ignored: self.incoming_ignored.load(Relaxed),
            deferred: self.deferred.load(Relaxed),
            by_rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_are_exact_across_threads() {
        let counters = Arc::new(Counters::new(2));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let counters = Arc::clone(&counters);
                std::thread::spawn(move || {
                    for i in 0..100_000u64 {
                        let path = if i % 2 == 0 { Path::Root } else { Path::ParentSampled };
                        counters.record(path, (i + t) % 3 == 0, Some((i % 2) as usize));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let snap = counters.snapshot();
        assert_eq!(snap.decisions, 800_000);
        assert_eq!(snap.by_path[Path::Root as usize], 400_000);
        assert_eq!(snap.sampled + snap.dropped, snap.decisions);
        let expected_sampled: u64 = (0..8u64).map(|t| (0..100_000u64).filter(|i| (i + t) % 3 == 0).count() as u64).sum();
        assert_eq!(snap.sampled, expected_sampled);
        assert_eq!(snap.by_rule.iter().map(|r| r.0).sum::<u64>(), 800_000);
        assert_eq!(snap.by_rule.iter().map(|r| r.1).sum::<u64>(), expected_sampled);
    }
}
