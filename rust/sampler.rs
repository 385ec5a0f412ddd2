//! A sampler core: a plan plus its counters, safe to share between threads.

use crate::plan::{Decision, Plan, SpanFacts};
use crate::stats::{Counters, Snapshot};

#[derive(Debug)]
pub struct SamplerCore {
    plan: Plan,
    counters: Counters,
}

impl SamplerCore {
    pub fn new(plan: Plan) -> Self {
        SamplerCore { plan, counters: Counters::default() }
    }

    /// Decide for one span and count the outcome.
    #[inline]
    pub fn decide(&self, facts: &SpanFacts) -> Decision {
        let decision = self.plan.decide(facts);
        self.counters.record(decision.path, decision.sampled);
        decision
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn snapshot(&self) -> Snapshot {
        self.counters.snapshot()
    }
}
