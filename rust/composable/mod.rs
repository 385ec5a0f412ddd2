//! OpenTelemetry's composable samplers (specification trace/sdk.md,
//! "CompositeSampler"; OTEP 250): a tree of nodes, each giving a sampling
//! intent (a threshold, whether it is reliable for estimates, attributes),
//! and one composite decision at the top. The tree is one stage of a plan, so
//! it is evaluated in the same native call as every other sampler.
//!
//! Nodes: the specification's always-on, always-off, probability, parent
//! threshold, rule-based and annotating; OTEP 250's any-of and rate-limited;
//! a whole tracesieve pipeline (rules, adaptive boost, budget, rate limit,
//! Jaeger remote) as one node; and composables written in Python.

pub mod parse;
pub mod pattern;
pub mod predicate;
#[cfg(test)]
mod tests;
mod words;

use std::sync::Arc;

use smallvec::SmallVec;

use crate::clock::Moment;
use crate::plan::{Decision, Evaluation, Path, Pending, Plan, SpanFacts, ThUpdate};
use crate::rate_limit::TokenBucket;
use crate::remote::Found;
use crate::rules::SpanView;
use crate::threshold::{NEVER, RANDOMNESS_MASK};
use predicate::Predicate;

/// Most annotating and Python composable nodes one tree may have (their
/// attributes are tracked in one 64-bit word per decision).
pub const MAX_MARKS: usize = 64;

/// The intent of a composable written in Python.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForeignIntent {
    /// The threshold (0 to 2^56), or None: no threshold, a drop.
    pub threshold: Option<u64>,
    pub reliable: bool,
}

/// One node of a composable tree.
#[derive(Debug)]
pub enum Node {
    AlwaysOn,
    AlwaysOff,
    /// A fixed probability, as its exact 56-bit threshold (below 2^56).
    Probability {
        threshold: u64,
    },
    /// Roots go to `root`; children take the parent's threshold (reliable), or
    /// 0 (unreliable) for a sampled parent without one, or nothing.
    ParentThreshold(Box<Node>),
    /// The first rule whose predicate holds decides; none: a drop.
    RuleBased(Vec<(Predicate, Node)>),
    /// The delegate's intent, with attributes (mark `mark`) for a kept span.
    Annotating {
        delegate: Box<Node>,
        mark: usize,
    },
    /// The lowest threshold of the delegates: kept if any would keep.
    AnyOf(Vec<Node>),
    /// The delegate, its probability lowered to keep about `rate` traces a
    /// second, its bucket the cap for bursts.
    RateLimited {
        delegate: Box<Node>,
        bucket: Arc<TokenBucket>,
    },
    /// A tracesieve pipeline, deciding as for a root span.
    Pipeline(Arc<Plan>),
    /// A composable written in Python: slot `index`, attributes under `mark`.
    Foreign {
        index: usize,
        mark: usize,
    },
}

/// What a pipeline node has to do after the draw.
enum Settle {
    /// Its stages gave a probability (remote strategy parts included).
    Pending(Pending),
    /// Its stages decided a keep outright (forced by a keep rule or not).
    Kept { forced: bool },
}

/// A node's sampling intent for one span, with what the draw's outcome owes.
pub struct Intent<'a> {
    /// The threshold (up to 2^56), or None: no threshold, a drop.
    pub threshold: Option<u64>,
    /// Whether the threshold may be used for estimates (and so recorded in `th`).
    pub reliable: bool,
    /// Annotations a kept span gets (bits by mark).
    pub marks: u64,
    /// Rate limits whose buckets must allow a keep.
    caps: SmallVec<[&'a TokenBucket; 1]>,
    /// Pipelines that settle the outcome (budget, rate limit, floor, remote).
    pipelines: SmallVec<[(&'a Plan, Settle); 1]>,
}

impl<'a> Intent<'a> {
    fn new(threshold: Option<u64>, reliable: bool) -> Intent<'a> {
        Intent { threshold, reliable, marks: 0, caps: SmallVec::new(), pipelines: SmallVec::new() }
    }

    fn drop() -> Intent<'a> {
        Intent::new(None, false)
    }

    /// The threshold a draw compares with, if it is a valid one.
    fn valid_threshold(&self) -> Option<u64> {
        self.threshold.filter(|t| *t <= NEVER)
    }
}

/// Where the attributes behind a mark come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// An annotating node's attributes (a mapping).
    Attributes(crate::data::Data),
    /// The intent of the Python composable in this slot.
    Foreign(usize),
}

/// A pipeline node's parts the Python layer wires: the windows its adaptive
/// stage reads (a span processor feeds them), and its resolved document (a
/// jaeger_remote stage's source is polled from Python).
#[derive(Clone)]
pub struct PipelineParts {
    /// Where the node is in the tree (for messages).
    pub path: String,
    pub plan: Arc<Plan>,
    pub signals: Option<Arc<crate::adaptive::Signals>>,
    pub resolved: crate::data::Data,
}

impl std::fmt::Debug for PipelineParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PipelineParts({})", self.path)
    }
}

/// A composable tree: its root, the attribute keys its predicates read, and
/// where each mark's attributes come from.
#[derive(Debug)]
pub struct Composite {
    pub root: Node,
    /// Attribute keys read, by index (`SpanView::attribute`); route keys first.
    pub keys: Vec<String>,
    /// By mark: annotating nodes' attributes and Python composables' intents.
    pub marks: Vec<Mark>,
    /// How many Python composables and predicates the tree refers to.
    pub foreign_composables: usize,
    pub foreign_predicates: usize,
    /// The tree's pipeline nodes, in the order they were written.
    pub pipelines: Vec<PipelineParts>,
}

impl Composite {
    /// The number of nodes and predicates (for descriptions).
    pub fn node_count(&self) -> usize {
        self.root.count()
    }

    /// The root's intent (no draw): what `sampling_intent` reports.
    pub fn intent<'a, S: SpanView + ?Sized>(&'a self, facts: &SpanFacts, span: &S, now: &Moment) -> Intent<'a> {
        self.root.intent(facts, span, now)
    }

    /// The composite decision: the root's intent; a reliable threshold is
    /// compared with the span's randomness (`rv`, else the trace id), an
    /// unreliable one with fresh randomness; a keep carries the threshold in
    /// `th` only when it is reliable; a drop removes `th`. Rate limits and
    /// pipelines then settle the outcome.
    pub fn decide<S: SpanView + ?Sized>(&self, facts: &SpanFacts, span: &S, now: &Moment) -> Decision {
        let intent = self.intent(facts, span, now);
        let path = if facts.parent.is_none() { Path::Root } else { Path::ChildIndependent };
        let (sampled, th) = match intent.valid_threshold() {
            Some(threshold) => {
                let randomness = if intent.reliable { facts.randomness() } else { fastrand::u64(..) & RANDOMNESS_MASK };
                let sampled = threshold <= randomness;
                (sampled, if sampled && intent.reliable { ThUpdate::Set(threshold) } else { ThUpdate::Erase })
            }
            None => (false, ThUpdate::Erase),
        };
        let mut decision = Decision::new(sampled, th, path);
        if decision.sampled && !intent.caps.iter().all(|bucket| bucket.try_take(now.monotonic())) {
            decision.sampled = false;
            decision.refused = true;
        }
        for (plan, settle) in intent.pipelines {
            match settle {
                Settle::Pending(pending) => {
                    decision.floor_due = pending.floor_due;
                    Plan::settle_remote(&pending, &mut decision, now);
                }
                Settle::Kept { forced } => decision.forced = forced,
            }
            plan.settle(&mut decision, now);
        }
        if decision.sampled {
            decision.marks = intent.marks;
        } else {
            decision.th = ThUpdate::Erase;
        }
        decision
    }
}

impl Node {
    fn count(&self) -> usize {
        1 + match self {
            Node::ParentThreshold(root) => root.count(),
            Node::RuleBased(rules) => rules.iter().map(|(p, n)| p.count() + n.count()).sum(),
            Node::Annotating { delegate, .. } | Node::RateLimited { delegate, .. } => delegate.count(),
            Node::AnyOf(nodes) => nodes.iter().map(Node::count).sum(),
            _ => 0,
        }
    }

    fn intent<'a, S: SpanView + ?Sized>(&'a self, facts: &SpanFacts, span: &S, now: &Moment) -> Intent<'a> {
        match self {
            Node::AlwaysOn => Intent::new(Some(0), true),
            Node::AlwaysOff => Intent::drop(),
            Node::Probability { threshold } => Intent::new(Some(*threshold), true),
            Node::ParentThreshold(root) => match facts.parent {
                None => root.intent(facts, span, now),
                Some(parent) => match parent.ot.th {
                    Some(threshold) => Intent::new(Some(threshold), true),
                    None if parent.sampled => Intent::new(Some(0), false),
                    None => Intent::drop(),
                },
            },
            Node::RuleBased(rules) => rules
                .iter()
                .find(|(predicate, _)| predicate.matches(facts, span))
                .map_or_else(Intent::drop, |(_, node)| node.intent(facts, span, now)),
            Node::Annotating { delegate, mark } => {
                let mut intent = delegate.intent(facts, span, now);
                intent.marks |= 1 << mark;
                intent
            }
            Node::AnyOf(nodes) => any_of(nodes.iter().map(|node| node.intent(facts, span, now)).collect()),
            Node::RateLimited { delegate, bucket } => {
                let mut intent = delegate.intent(facts, span, now);
                if let Some(threshold) = intent.valid_threshold().filter(|t| *t < NEVER) {
                    let probability = (NEVER - threshold) as f64 / NEVER as f64;
                    let factor = bucket.factor(now.monotonic(), probability);
                    if factor < 1.0 {
                        intent.threshold = Some(exact_threshold(probability * factor).max(threshold));
                    }
                    intent.caps.push(bucket);
                }
                intent
            }
            Node::Pipeline(plan) => pipeline_intent(plan, plan.evaluate(facts, span, now)),
            Node::Foreign { index, mark } => {
                let foreign = span.foreign_intent(*index);
                let mut intent = Intent::new(foreign.threshold, foreign.reliable);
                intent.marks = 1 << mark;
                intent
            }
        }
    }
}

/// The lowest valid threshold wins; it is reliable when every delegate giving
/// it is. Attributes come from every delegate (OTEP 250's any-of); the rate
/// limits and pipelines that settle the outcome are those of the delegates
/// giving the lowest threshold (a cap applies only if each of them has one).
fn any_of(intents: SmallVec<[Intent<'_>; 4]>) -> Intent<'_> {
    let lowest = intents.iter().filter_map(Intent::valid_threshold).min();
    let marks = intents.iter().fold(0, |marks, intent| marks | intent.marks);
    let Some(lowest) = lowest else {
        return Intent { marks, ..Intent::drop() };
    };
    let winners: SmallVec<[Intent<'_>; 4]> = intents.into_iter().filter(|i| i.valid_threshold() == Some(lowest)).collect();
    let reliable = winners.iter().all(|i| i.reliable);
    let capped = winners.iter().all(|i| !i.caps.is_empty());
    let mut result = Intent { marks, ..Intent::new(Some(lowest), reliable) };
    for winner in winners {
        if capped {
            result.caps.extend(winner.caps);
        }
        result.pipelines.extend(winner.pipelines);
    }
    result
}

/// A pipeline's stages, as an intent.
fn pipeline_intent(plan: &Plan, evaluation: Evaluation) -> Intent<'_> {
    match evaluation {
        Evaluation::Decided(decision) if decision.sampled => {
            let mut intent = Intent::new(Some(0), decision.th == ThUpdate::Set(0));
            intent.pipelines.push((plan, Settle::Kept { forced: decision.forced }));
            intent
        }
        Evaluation::Decided(_) | Evaluation::FollowParent => Intent::drop(),
        Evaluation::Threshold(pending) => {
            // A rate-limiting remote strategy keeps by its bucket: no probability.
            let mut intent = match pending.remote {
                Some((_, Found::RateLimit)) => Intent::new(Some(0), false),
                _ => Intent::new(Some(pending.threshold), true),
            };
            intent.pipelines.push((plan, Settle::Pending(pending)));
            intent
        }
    }
}

/// The exact 56-bit threshold for `probability`, as the OpenTelemetry SDKs
/// compute it for composable samplers: 2^56 - round(p * 2^56).
pub fn exact_threshold(probability: f64) -> u64 {
    let kept = (probability.clamp(0.0, 1.0) * NEVER as f64).round_ties_even() as u64;
    NEVER - kept.min(NEVER)
}
