//! Tail keeps spending a budget: what a tail buffer calls when it keeps a
//! trace the head did not, so every span the tail exports counts against the
//! same pacer as the head's keeps, with the tail's priorities.

use std::sync::Arc;

use super::pacer::{Pacer, TailClass, TailPolicy};
use crate::clock::Clock;
use crate::tail_buffer::TailBudget;
use crate::tail_share::Kind;

/// A pacer as a tail buffer's budget.
pub struct TailSpend {
    pacer: Arc<Pacer>,
    policy: TailPolicy,
    clock: Arc<dyn Clock>,
}

impl TailSpend {
    pub fn new(pacer: Arc<Pacer>, policy: TailPolicy, clock: Arc<dyn Clock>) -> TailSpend {
        TailSpend { pacer, policy, clock }
    }

    /// The pacer this spends.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }
}

impl TailBudget for TailSpend {
    fn admit(&self, kind: Kind, spans: u64) -> bool {
        let class = match kind {
            Kind::Error => TailClass::Error,
            Kind::Latency => TailClass::Latency,
            Kind::Rule => TailClass::Rule,
        };
        self.pacer.admit_tail(&self.policy, class, spans, self.clock.monotonic())
    }
}
