//! A sampler is a plan: how to treat the parent, then stages that set or narrow
//! the probability or force a decision. One call evaluates the whole plan.

use crate::ot_entry::OtFields;
use crate::threshold::{RANDOMNESS_MASK, NEVER};

/// What is known about the span being started.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanFacts {
    /// The trace id's low 64 bits (what the SDK's `TraceIdRatioBased` reads).
    pub trace_id_low64: u64,
    /// The parent span context, when it is valid.
    pub parent: Option<ParentFacts>,
}

/// The parts of a valid parent span context a decision uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParentFacts {
    pub sampled: bool,
    pub remote: bool,
    /// `th` / `rv` from the parent's `ot` tracestate entry.
    pub ot: OtFields,
}

impl SpanFacts {
    /// The consistent-sampling randomness: `rv` when the parent carries one,
    /// else the low 56 bits of the trace id.
    #[inline]
    pub fn randomness(&self) -> u64 {
        match self.parent.and_then(|p| p.ot.rv) {
            Some(rv) => rv,
            None => self.trace_id_low64 & RANDOMNESS_MASK,
        }
    }
}

/// How the outgoing `ot` entry's `th` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThUpdate {
    /// Carry the parent's tracestate as it is.
    Unchanged,
    /// Write this threshold.
    Set(u64),
    /// Remove `th`: the probability is unknown or inconsistent.
    Erase,
}

/// Which branch decided; counted per sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Path {
    Root = 0,
    ParentSampled = 1,
    ParentNotSampled = 2,
    /// A child decided afresh because the plan ignores the parent.
    ChildIndependent = 3,
}

impl Path {
    pub const COUNT: usize = 4;
    pub const ALL: [Path; Path::COUNT] =
        [Path::Root, Path::ParentSampled, Path::ParentNotSampled, Path::ChildIndependent];

    pub fn name(self) -> &'static str {
        match self {
            Path::Root => "root",
            Path::ParentSampled => "parent_sampled",
            Path::ParentNotSampled => "parent_not_sampled",
            Path::ChildIndependent => "child_independent",
        }
    }
}

/// The outcome of a plan for one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub sampled: bool,
    pub th: ThUpdate,
    pub path: Path,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Consistent probability sampling at a fixed probability (`threshold`
    /// precomputed from it at the plan's precision).
    Probability { probability: f64, threshold: u64 },
    /// The SDK's legacy `TraceIdRatioBased`: keep iff the trace id's low 64
    /// bits are below `round(rate * 2^64)`. Its probability is not expressible
    /// as a consistent threshold, so `th` is erased.
    TraceIdRatio { rate: f64, bound: u128 },
}

impl Stage {
    pub fn probability(probability: f64, precision: u32) -> Stage {
        Stage::Probability {
            probability,
            threshold: crate::threshold::threshold_for_probability(probability, precision),
        }
    }

    pub fn trace_id_ratio(rate: f64) -> Stage {
        // Python's round() on the exact float product: ties go to even.
        let bound = (rate * 18_446_744_073_709_551_616.0).round_ties_even() as u128;
        Stage::TraceIdRatio { rate, bound }
    }
}

/// Where a decision stands while the stages run.
#[derive(Debug, Clone, Copy)]
enum Running {
    /// Keep iff randomness >= threshold.
    Threshold(u64),
    /// Decided outright, with how `th` changes.
    Forced(bool, ThUpdate),
}

/// A complete sampling policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Follow a valid parent's sampled flag (like the SDK's `ParentBased`).
    pub respect_parent: bool,
    pub stages: Vec<Stage>,
}

impl Plan {
    pub fn decide(&self, facts: &SpanFacts) -> Decision {
        if let Some(parent) = facts.parent {
            if self.respect_parent {
                return follow_parent(facts, parent);
            }
        }
        let path = if facts.parent.is_some() { Path::ChildIndependent } else { Path::Root };
        let mut running = Running::Threshold(0);
        for stage in &self.stages {
            running = match (stage, running) {
                (_, forced @ Running::Forced(..)) => forced,
                (Stage::Probability { threshold, .. }, Running::Threshold(current)) => {
                    Running::Threshold(current.max(*threshold))
                }
                (Stage::TraceIdRatio { bound, .. }, Running::Threshold(_)) => {
                    Running::Forced(u128::from(facts.trace_id_low64) < *bound, ThUpdate::Erase)
                }
            };
        }
        let (sampled, th) = match running {
            Running::Threshold(threshold) => {
                let sampled = threshold < NEVER && facts.randomness() >= threshold;
                (sampled, if sampled { ThUpdate::Set(threshold) } else { ThUpdate::Unchanged })
            }
            Running::Forced(sampled, th) => (sampled, if sampled { th } else { ThUpdate::Unchanged }),
        };
        Decision { sampled, th, path }
    }
}

/// Parent-based decision: take the parent's flag; a kept child carries the
/// parent's `th` unless it contradicts the randomness (then it is erased, as the
/// spec asks of a parent-based sampler).
fn follow_parent(facts: &SpanFacts, parent: ParentFacts) -> Decision {
    if !parent.sampled {
        return Decision { sampled: false, th: ThUpdate::Unchanged, path: Path::ParentNotSampled };
    }
    let th = match parent.ot.th {
        Some(threshold) if facts.randomness() < threshold => ThUpdate::Erase,
        _ => ThUpdate::Unchanged,
    };
    Decision { sampled: true, th, path: Path::ParentSampled }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::{decode_th, DEFAULT_PRECISION};

    fn probability_plan(p: f64, respect_parent: bool) -> Plan {
        Plan { respect_parent, stages: vec![Stage::probability(p, DEFAULT_PRECISION)] }
    }

    fn root(trace_id_low64: u64) -> SpanFacts {
        SpanFacts { trace_id_low64, parent: None }
    }

    fn child(trace_id_low64: u64, sampled: bool, ot: OtFields) -> SpanFacts {
        SpanFacts { trace_id_low64, parent: Some(ParentFacts { sampled, remote: true, ot }) }
    }

    #[test]
    fn root_keeps_iff_randomness_at_or_above_threshold() {
        let plan = probability_plan(0.25, true);
        let t = decode_th("c").unwrap();
        assert_eq!(plan.decide(&root(t)).sampled, true);
        assert_eq!(plan.decide(&root(t - 1)).sampled, false);
        // Only the low 56 bits count.
        assert_eq!(plan.decide(&root((0xff << 56) | (t - 1))).sampled, false);
        assert_eq!(plan.decide(&root(t)).th, ThUpdate::Set(t));
        assert_eq!(plan.decide(&root(t - 1)).th, ThUpdate::Unchanged);
    }

    #[test]
    fn rates_zero_and_one() {
        for r in [0u64, 1, RANDOMNESS_MASK, u64::MAX] {
            assert!(!probability_plan(0.0, true).decide(&root(r)).sampled);
            let kept = probability_plan(1.0, true).decide(&root(r));
            assert!(kept.sampled);
            assert_eq!(kept.th, ThUpdate::Set(0));
        }
    }

    #[test]
    fn rv_overrides_trace_id_randomness() {
        let plan = probability_plan(0.5, false);
        let ot = OtFields { th: None, rv: Some(RANDOMNESS_MASK) };
        assert!(plan.decide(&child(0, true, ot)).sampled);
        let ot = OtFields { th: None, rv: Some(0) };
        assert!(!plan.decide(&child(u64::MAX, true, ot)).sampled);
    }

    #[test]
    fn parent_based_follows_flag_and_checks_th() {
        let plan = probability_plan(0.0, true);
        let th8 = decode_th("8");
        let kept = plan.decide(&child(RANDOMNESS_MASK, true, OtFields { th: th8, rv: None }));
        assert_eq!((kept.sampled, kept.th, kept.path), (true, ThUpdate::Unchanged, Path::ParentSampled));
        // Randomness below the parent's threshold: the th is inconsistent.
        let inconsistent = plan.decide(&child(0, true, OtFields { th: th8, rv: None }));
        assert_eq!((inconsistent.sampled, inconsistent.th), (true, ThUpdate::Erase));
        let dropped = probability_plan(1.0, true).decide(&child(RANDOMNESS_MASK, false, OtFields::default()));
        assert_eq!((dropped.sampled, dropped.path), (false, Path::ParentNotSampled));
    }

    #[test]
    fn ignoring_the_parent_decides_afresh() {
        let plan = probability_plan(1.0, false);
        let decision = plan.decide(&child(0, false, OtFields::default()));
        assert_eq!((decision.sampled, decision.th, decision.path), (true, ThUpdate::Set(0), Path::ChildIndependent));
    }

    #[test]
    fn trace_id_ratio_matches_sdk_bound() {
        let plan = Plan { respect_parent: true, stages: vec![Stage::trace_id_ratio(0.5)] };
        assert!(plan.decide(&root((1 << 63) - 1)).sampled);
        assert!(!plan.decide(&root(1 << 63)).sampled);
        assert_eq!(plan.decide(&root(0)).th, ThUpdate::Erase);
        let all = Plan { respect_parent: true, stages: vec![Stage::trace_id_ratio(1.0)] };
        assert!(all.decide(&root(u64::MAX)).sampled);
        let none = Plan { respect_parent: true, stages: vec![Stage::trace_id_ratio(0.0)] };
        assert!(!none.decide(&root(0)).sampled);
    }

    #[test]
    fn consistent_decisions_are_monotone_in_rate() {
        // A trace kept at p is kept at every higher p.
        let mut x = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut kept_before = false;
            for i in 0..=50 {
                let kept = probability_plan(i as f64 / 50.0, true).decide(&root(x)).sampled;
                assert!(!kept_before || kept, "monotonicity broken for {x:#x} at {i}");
                kept_before = kept;
            }
        }
    }
}
