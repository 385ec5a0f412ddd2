//! A sampler core: a plan, its clock and its counters, safe to share between threads.

use std::sync::Arc;

use crate::clock::{Clock, Moment, SystemClock};
use crate::plan::{Decision, Plan, SpanFacts};
use crate::rules::SpanView;
use crate::stats::{Counters, Snapshot};

pub struct SamplerCore {
    plan: Plan,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

impl SamplerCore {
    pub fn new(plan: Plan) -> Self {
        SamplerCore::with_clock(plan, Arc::new(SystemClock))
    }

    pub fn with_clock(plan: Plan, clock: Arc<dyn Clock>) -> Self {
        let rules = plan.rule_slots();
        SamplerCore { plan, clock, counters: Counters::new(rules) }
    }

    /// Decide for one span and count the outcome.
    #[inline]
    pub fn decide<S: SpanView + ?Sized>(&self, facts: &SpanFacts, span: &S) -> Decision {
        let decision = self.plan.decide(facts, span, &Moment::new(&*self.clock));
        self.counters.record(decision.path, decision.sampled, decision.rule);
        decision
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The clock, shared (for what runs on the sampler's time elsewhere).
    pub fn clock_arc(&self) -> Arc<dyn Clock> {
        self.clock.clone()
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
