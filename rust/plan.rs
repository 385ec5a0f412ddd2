//! A sampler is a plan: how to treat the parent, then stages that set or narrow
//! the probability or force a decision. One call evaluates the whole plan.

use std::sync::Arc;

use crate::adaptive::Booster;
use crate::budget::pacer::{Admit, Downstream, Pacer};
use crate::clock::Moment;
use crate::ot_entry::OtFields;
use crate::rate_limit::TokenBucket;
use crate::remote::{Found, RemoteStrategy};
use crate::rules::condition::AttrValue;
use crate::rules::{Action, RuleSet, SpanView};
use crate::threshold::{NEVER, RANDOMNESS_MASK};

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
    /// A root span, decided by the plan's stages.
    Root = 0,
    ParentSampled = 1,
    ParentNotSampled = 2,
    /// A child decided afresh because the plan ignores the parent.
    ChildIndependent = 3,
    /// A keep rule overrode a valid parent's decision.
    ForcedKeep = 4,
}

impl Path {
    pub const COUNT: usize = 5;
    pub const ALL: [Path; Path::COUNT] =
        [Path::Root, Path::ParentSampled, Path::ParentNotSampled, Path::ChildIndependent, Path::ForcedKeep];

    pub fn name(self) -> &'static str {
        match self {
            Path::Root => "root",
            Path::ParentSampled => "parent_sampled",
            Path::ParentNotSampled => "parent_not_sampled",
            Path::ChildIndependent => "child_independent",
            Path::ForcedKeep => "forced_keep",
        }
    }
}

/// The outcome of a plan for one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub sampled: bool,
    pub th: ThUpdate,
    pub path: Path,
    /// The rule that decided (index into the rule set; `rules.len()` is the
    /// default rate), when a rule stage made the decision.
    pub rule: Option<usize>,
    /// A keep rule forced this keep.
    pub forced: bool,
    /// The span would have been kept, but the budget was spent.
    pub refused: bool,
    /// Nothing was kept in the budget's current floor slot: if this span is
    /// not kept otherwise, the visibility floor keeps it.
    pub floor_due: bool,
    /// Kept by the visibility floor, not by probability (so its `th` is erased:
    /// it is no probability sample, and estimates must not weigh it).
    pub floor: bool,
    /// A child of a remote parent that the budget paced (downstream pacing).
    pub paced_downstream: bool,
    /// A composite's annotation slots whose attributes a kept span gets.
    pub marks: u64,
}

impl Decision {
    pub fn new(sampled: bool, th: ThUpdate, path: Path) -> Decision {
        Decision {
            sampled,
            th,
            path,
            rule: None,
            forced: false,
            refused: false,
            floor_due: false,
            floor: false,
            paced_downstream: false,
            marks: 0,
        }
    }
}

/// What a plan's stages say about a span before its randomness is drawn.
pub enum Evaluation {
    /// A stage decided outright: a keep or drop rule, the legacy ratio, a composite.
    Decided(Decision),
    /// The parent's decision is followed (the plan respects a valid parent).
    FollowParent,
    /// A probability, as the threshold the randomness must clear.
    Threshold(Pending),
}

/// A probability decision waiting for its draw.
pub struct Pending {
    pub threshold: u64,
    pub rule: Option<usize>,
    pub floor_due: bool,
    /// The remote strategy in force and its rule for this span.
    pub remote: Option<(arc_swap::Guard<Arc<crate::remote::Compiled>>, Found)>,
    /// The X-Ray rules in force, the span's rule, and whether it is a root
    /// (whose fixed-rate decision X-Ray's statistics count).
    pub xray: Option<(arc_swap::Guard<Arc<crate::xray::Table>>, crate::xray::Choice, bool)>,
}

/// One step of a plan. Cloning shares the rule set and the booster, so a
/// composed sampler can reuse another's stages.
#[derive(Clone)]
pub enum Stage {
    /// Consistent probability sampling at a fixed probability (`threshold`
    /// precomputed from it at the plan's precision).
    Probability { probability: f64, threshold: u64 },
    /// The SDK's legacy `TraceIdRatioBased`: keep iff the trace id's low 64
    /// bits are below `round(rate * 2^64)`. Its probability is not expressible
    /// as a consistent threshold, so `th` is erased.
    TraceIdRatio { rate: f64, bound: u128 },
    /// Rules: a keep rule forces a keep (even over a parent); a drop rule drops;
    /// a rate rule (or the default) scales the probability.
    Rules(Arc<RuleSet>),
    /// Multiply the probability by the live error/latency boost.
    Boost(Arc<Booster>),
    /// Pace the probability to a span budget; every kept span reserves budget.
    Budget(Arc<Pacer>),
    /// Keep rules evaluated before anything else (a pipeline's `force_keep`):
    /// a match keeps, even over a parent; no match passes the span on.
    ForceKeep(Arc<RuleSet>),
    /// At most so many independently kept traces per second (children of kept
    /// traces are never cut).
    RateLimit(Arc<TokenBucket>),
    /// A remote (Jaeger) strategy, replaced at run time by its poller.
    Remote(Arc<RemoteStrategy>),
    /// AWS X-Ray's sampling rules and targets, replaced at run time by its poller.
    XRay(Arc<crate::xray::XRay>),
    /// A tree of composable samplers (OpenTelemetry's CompositeSampler), which
    /// decides the span itself, parents included.
    Composite(Arc<crate::composable::Composite>),
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Probability { probability, .. } => write!(f, "Probability({probability})"),
            Stage::TraceIdRatio { rate, .. } => write!(f, "TraceIdRatio({rate})"),
            Stage::Rules(set) => write!(f, "Rules({} rules)", set.rules.len()),
            Stage::Boost(booster) => write!(f, "Boost({:?})", booster.policy),
            Stage::Budget(pacer) => write!(f, "Budget({} spans per {})", pacer.budget(), pacer.calendar().kind.name()),
            Stage::ForceKeep(set) => write!(f, "ForceKeep({} rules)", set.rules.len()),
            Stage::RateLimit(bucket) => write!(f, "RateLimit({}/s)", bucket.rate()),
            Stage::Remote(remote) => write!(f, "Remote({})", remote.service_name),
            Stage::XRay(xray) => write!(f, "XRay({})", xray.resource.service_name),
            Stage::Composite(tree) => write!(f, "Composite({} nodes)", tree.node_count()),
        }
    }
}

impl Stage {
    pub fn probability(probability: f64, precision: u32) -> Stage {
        Stage::Probability { probability, threshold: crate::threshold::threshold_for_probability(probability, precision) }
    }

    pub fn trace_id_ratio(rate: f64) -> Stage {
        // Python's round() on the exact float product: ties go to even.
        let bound = (rate * 18_446_744_073_709_551_616.0).round_ties_even() as u128;
        Stage::TraceIdRatio { rate, bound }
    }
}

/// A complete sampling policy.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Follow a valid parent's sampled flag (like the SDK's `ParentBased`).
    /// Only a keep rule overrides it.
    pub respect_parent: bool,
    /// Significant hex digits of thresholds computed at decision time.
    pub precision: u32,
    pub stages: Vec<Stage>,
    /// Add the deciding rule's name to kept spans' attributes.
    pub record_rule: bool,
    /// Follow what remote parents send (their sampled flag, `th` and `rv`);
    /// false (an edge service): a span with a remote parent is decided as a root.
    pub trust_incoming: bool,
}

/// A span with nothing but a name: for plans that read no attributes.
pub struct BareSpan<'a> {
    pub name: &'a str,
    pub root: bool,
}

impl SpanView for BareSpan<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> Option<usize> {
        None
    }
    fn is_root(&self) -> bool {
        self.root
    }
    fn attribute(&self, _key: usize) -> Option<AttrValue<'_>> {
        None
    }
}

impl Plan {
    pub fn new(respect_parent: bool, stages: Vec<Stage>) -> Plan {
        Plan { respect_parent, precision: crate::threshold::DEFAULT_PRECISION, stages, record_rule: false, trust_incoming: true }
    }

    /// The stages by the names configuration documents give them, in order.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|stage| match stage {
                Stage::Probability { .. } => "probability",
                Stage::TraceIdRatio { .. } => "trace_id_ratio",
                Stage::Rules(_) => "rules",
                Stage::Boost(_) => "adaptive",
                Stage::Budget(_) => "budget",
                Stage::ForceKeep(_) => "force_keep",
                Stage::RateLimit(_) => "rate_limit",
                Stage::Remote(_) => "jaeger_remote",
                Stage::XRay(_) => "xray_remote",
                Stage::Composite(_) => "composite",
            })
            .map(str::to_owned)
            .collect()
    }

    /// The plan's rule sets in stage order (force-keep and rules stages).
    pub fn rule_sets(&self) -> Vec<&RuleSet> {
        self.stages
            .iter()
            .filter_map(|stage| match stage {
                Stage::Rules(set) | Stage::ForceKeep(set) => Some(&**set),
                _ => None,
            })
            .collect()
    }

    /// Counter slots for rule outcomes: every rule of every set, plus one default.
    pub fn rule_slots(&self) -> usize {
        let sets = self.rule_sets();
        if sets.is_empty() {
            0
        } else {
            sets.iter().map(|s| s.rules.len()).sum::<usize>() + 1
        }
    }

    /// The name behind a rule slot (`default` for the rules stage's default rate).
    pub fn rule_name(&self, mut slot: usize) -> &str {
        for set in self.rule_sets() {
            if slot < set.rules.len() {
                return &set.rules[slot].name;
            }
            slot -= set.rules.len();
        }
        "default"
    }

    pub fn rate_limit(&self) -> Option<&TokenBucket> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::RateLimit(bucket) => Some(&**bucket),
            _ => None,
        })
    }

    /// The rule set, if the plan has a rule stage.
    pub fn rules(&self) -> Option<&RuleSet> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::Rules(set) => Some(&**set),
            _ => None,
        })
    }

    pub fn booster(&self) -> Option<&Booster> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::Boost(booster) => Some(&**booster),
            _ => None,
        })
    }

    /// The remote strategy, if the plan has a remote stage.
    pub fn remote(&self) -> Option<&Arc<RemoteStrategy>> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::Remote(remote) => Some(remote),
            _ => None,
        })
    }

    /// The X-Ray state, if the plan has an X-Ray stage.
    pub fn xray(&self) -> Option<&Arc<crate::xray::XRay>> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::XRay(xray) => Some(xray),
            _ => None,
        })
    }

    /// The composite tree, if the plan is a composite sampler.
    pub fn composite(&self) -> Option<&crate::composable::Composite> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::Composite(tree) => Some(&**tree),
            _ => None,
        })
    }

    pub fn pacer(&self) -> Option<&Pacer> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::Budget(pacer) => Some(&**pacer),
            _ => None,
        })
    }

    /// Attribute keys the plan reads at span start (indexes of `SpanView::attribute`).
    pub fn attribute_keys(&self) -> Vec<String> {
        if let Some(tree) = self.composite() {
            return tree.keys.clone();
        }
        // Rule sets of one plan share one key table; the last holds all of it.
        let mut keys = match self.last_rule_set() {
            Some(set) => set.keys.clone(),
            None if self.xray().is_some() || self.booster().is_some_and(|b| b.signals.routes.len() > 1) => {
                crate::rules::ROUTE_KEYS.iter().map(|k| k.to_string()).collect()
            }
            None => Vec::new(),
        };
        // X-Ray's request fields follow (its URL path keys are ROUTE_KEYS', which every table begins with).
        if self.xray().is_some() {
            keys.extend(crate::xray::XRAY_KEYS.iter().map(|k| k.to_string()));
        }
        keys
    }

    /// Where X-Ray's keys start in the plan's key table (see `attribute_keys`).
    #[inline]
    pub fn xray_keys_at(&self) -> usize {
        self.last_rule_set().map_or(crate::rules::ROUTE_KEYS.len(), |set| set.keys.len())
    }

    /// The last rule set in stage order (it holds every key of the plan's rule sets).
    fn last_rule_set(&self) -> Option<&RuleSet> {
        self.stages.iter().rev().find_map(|stage| match stage {
            Stage::Rules(set) | Stage::ForceKeep(set) => Some(&**set),
            _ => None,
        })
    }

    /// Every probability a rate decision of this plan can take, or None when
    /// they are too many to list. (Keep rules add probability 1.)
    pub fn possible_probabilities(&self, limit: usize) -> Option<Vec<f64>> {
        let mut set = vec![1.0f64];
        for stage in &self.stages {
            let factors: Vec<f64> = match stage {
                Stage::Probability { probability, .. } => vec![*probability],
                Stage::TraceIdRatio { .. } => return Some(Vec::new()),
                Stage::Rules(rules) => rules.possible_probabilities(limit)?,
                Stage::ForceKeep(_) | Stage::RateLimit(_) => vec![1.0],
                Stage::Boost(booster) => booster.policy.possible_multipliers(),
                // Pacing is continuous: list the unpaced values (pace 1); paced
                // ones fall back to the most-recent cache.
                Stage::Budget(_) => vec![1.0],
                // Changes at run time; a composite writes exact thresholds of its own.
                Stage::Remote(_) | Stage::XRay(_) | Stage::Composite(_) => return None,
            };
            if set.len().saturating_mul(factors.len()) > limit {
                return None;
            }
            set = set.iter().flat_map(|x| factors.iter().map(move |f| x * f)).collect();
        }
        set.push(1.0);
        let mut set: Vec<f64> = set.into_iter().map(|p| p.clamp(0.0, 1.0)).collect();
        set.sort_by(f64::total_cmp);
        set.dedup();
        Some(set)
    }

    /// Decide for one span. The clocks are read only if a time-dependent stage needs them.
    pub fn decide<S: SpanView + ?Sized>(&self, facts: &SpanFacts, span: &S, now: &Moment) -> Decision {
        let mut decision = self.decide_stages(facts, span, now);
        self.settle(&mut decision, now);
        decision
    }

    /// After the draw: the rate limit's cap, then the budget (which refuses a
    /// keep it cannot afford, and keeps what its visibility floor is due).
    pub fn settle(&self, decision: &mut Decision, now: &Moment) {
        if decision.sampled && !decision.forced && (!matches!(decision.path, Path::ParentSampled) || decision.paced_downstream) {
            if let Some(bucket) = self.rate_limit() {
                if !bucket.try_take(now.monotonic()) {
                    decision.sampled = false;
                    decision.th = ThUpdate::Unchanged;
                    decision.refused = true;
                }
            }
        }
        let Some(pacer) = self.pacer() else { return };
        // The floor keeps a span when nothing else was kept in its slot, whatever
        // its draw: given what came before, that keep is certain, so its `th` is
        // 0 and it stands for itself. (Weighing a keep the draw made at such a
        // moment by one over its draw's probability would count it twice over.)
        // Estimates that weigh every keep by one over the probability it had
        // when decided stay unbiased, as that probability depends only on what
        // came before the draw.
        if decision.floor_due && !decision.forced && pacer.admit(Admit::Floor, now.monotonic()) {
            decision.sampled = true;
            decision.th = ThUpdate::Set(0);
            decision.refused = false;
            decision.floor = true;
            return;
        }
        if decision.sampled {
            let kind = if decision.forced {
                Admit::Forced
            } else if matches!(decision.path, Path::ParentSampled) && !decision.paced_downstream {
                Admit::Child
            } else {
                Admit::Entry
            };
            if !pacer.admit(kind, now.monotonic()) {
                decision.sampled = false;
                decision.th = ThUpdate::Unchanged;
                decision.refused = true;
            }
        }
    }

    fn decide_stages<S: SpanView + ?Sized>(&self, facts: &SpanFacts, span: &S, now: &Moment) -> Decision {
        let path = match facts.parent {
            None => Path::Root,
            Some(_) => Path::ChildIndependent,
        };
        match self.evaluate(facts, span, now) {
            Evaluation::Decided(decision) => decision,
            Evaluation::FollowParent => {
                let parent = facts.parent.expect("only a valid parent is followed");
                let followed = follow_parent(facts, parent);
                match self.pacer() {
                    Some(pacer) if followed.sampled && parent.remote && pacer.downstream() == Downstream::Pace => {
                        self.pace_downstream(facts, parent, followed, pacer, now)
                    }
                    _ => followed,
                }
            }
            Evaluation::Threshold(pending) => {
                let sampled = pending.threshold < NEVER && facts.randomness() >= pending.threshold;
                let th = if sampled { ThUpdate::Set(pending.threshold) } else { ThUpdate::Unchanged };
                let mut decision = Decision { rule: pending.rule, floor_due: pending.floor_due, ..Decision::new(sampled, th, path) };
                Plan::settle_remote(&pending, &mut decision, now);
                decision
            }
        }
    }

    /// The remote strategy's part after the draw: a rate-limiting strategy
    /// keeps only what its bucket allows, and a lower bound keeps what the
    /// probability did not, while it has credit. Keeps that are no
    /// probability sample carry no threshold.
    pub fn settle_remote(pending: &Pending, decision: &mut Decision, now: &Moment) {
        if let Some((table, choice, root)) = &pending.xray {
            crate::xray::XRay::count(table, *choice, *root, decision.sampled);
        }
        let Some((compiled, found)) = &pending.remote else { return };
        match found {
            Found::RateLimit => {
                decision.sampled = decision.sampled && compiled.bucket().is_some_and(|bucket| bucket.try_take(now.monotonic()));
                decision.th = if decision.sampled { ThUpdate::Erase } else { ThUpdate::Unchanged };
            }
            Found::Rule(index) => {
                let rule = compiled.rule(*index);
                if let Some(lower_bound) = &rule.lower_bound {
                    // A probability keep spends the lower bound's credit too (as
                    // Jaeger's guaranteed-throughput sampler does), so the bound
                    // adds keeps only where probability alone falls short.
                    if decision.sampled {
                        lower_bound.try_take(now.monotonic());
                    } else if lower_bound.try_take(now.monotonic()) {
                        decision.sampled = true;
                        decision.th = ThUpdate::Erase;
                        rule.lower_bound_keeps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// What the stages say, before the draw. With `respect_parent` and a valid
    /// parent, only keep rules (and a composite) look at the span.
    pub fn evaluate<S: SpanView + ?Sized>(&self, facts: &SpanFacts, span: &S, now: &Moment) -> Evaluation {
        let parent_decides = self.respect_parent && facts.parent.is_some();
        let path = match facts.parent {
            None => Path::Root,
            Some(_) => Path::ChildIndependent,
        };
        let mut probability = 1.0f64;
        // Exact threshold while only one fixed-probability stage has spoken.
        let mut exact_threshold: Option<u64> = Some(0);
        let mut rule = None;
        let mut floor_due = false;
        // The remote strategy in force for this decision, and its rule for this span.
        let mut remote = None;
        let mut xray = None;
        // Rule slots run on across rule sets, in stage order.
        let mut slot_offset = 0;
        for stage in &self.stages {
            match stage {
                Stage::Probability { probability: p, threshold } => {
                    exact_threshold = if probability == 1.0 { Some(*threshold) } else { None };
                    probability *= p;
                }
                Stage::TraceIdRatio { bound, .. } => {
                    if parent_decides {
                        return Evaluation::FollowParent;
                    }
                    let sampled = u128::from(facts.trace_id_low64) < *bound;
                    let th = if sampled { ThUpdate::Erase } else { ThUpdate::Unchanged };
                    return Evaluation::Decided(Decision { rule, ..Decision::new(sampled, th, path) });
                }
                Stage::Composite(tree) => return Evaluation::Decided(tree.decide(facts, span, now)),
                Stage::ForceKeep(set) => {
                    let (index, _) = set.first_match(span);
                    if index < set.rules.len() {
                        let path = if parent_decides { Path::ForcedKeep } else { path };
                        return Evaluation::Decided(Decision {
                            rule: Some(slot_offset + index),
                            forced: true,
                            ..Decision::new(true, ThUpdate::Set(0), path)
                        });
                    }
                    slot_offset += set.rules.len();
                }
                Stage::RateLimit(bucket) => {
                    // Above its rate, the limit is a probability (recorded in `th`).
                    let factor = bucket.factor(now.monotonic(), probability);
                    if factor != 1.0 {
                        probability *= factor;
                        exact_threshold = None;
                    }
                }
                Stage::Remote(strategy) => {
                    if parent_decides {
                        return Evaluation::FollowParent;
                    }
                    let compiled = strategy.current();
                    let found = compiled.find(span.name());
                    if let Found::Rule(index) = found {
                        let rule = compiled.rule(index);
                        exact_threshold = if probability == 1.0 { Some(rule.threshold) } else { None };
                        probability *= rule.probability;
                    }
                    remote = Some((compiled, found));
                }
                Stage::XRay(state) => {
                    if parent_decides {
                        return Evaluation::FollowParent;
                    }
                    let table = state.table();
                    let choice = state.choose(&table, span, now, self.xray_keys_at());
                    let root = facts.parent.is_none();
                    match state.verdict(&table, choice, root, now) {
                        // A reservoir keep is no probability sample: it carries no `th`.
                        crate::xray::Verdict::Reservoir => {
                            return Evaluation::Decided(Decision { rule, ..Decision::new(true, ThUpdate::Erase, path) });
                        }
                        crate::xray::Verdict::Rate { probability: p, threshold } => {
                            exact_threshold = if probability == 1.0 { Some(threshold) } else { None };
                            probability *= p;
                        }
                    }
                    xray = Some((table, choice, root));
                }
                Stage::Rules(set) => {
                    let (index, action) = set.first_match(span);
                    let index = slot_offset + index;
                    slot_offset += set.rules.len();
                    match action {
                        Action::Keep => {
                            let path = if parent_decides { Path::ForcedKeep } else { path };
                            return Evaluation::Decided(Decision {
                                rule: Some(index),
                                forced: true,
                                ..Decision::new(true, ThUpdate::Set(0), path)
                            });
                        }
                        _ if parent_decides => return Evaluation::FollowParent,
                        Action::Drop => {
                            return Evaluation::Decided(Decision { rule: Some(index), ..Decision::new(false, ThUpdate::Unchanged, path) });
                        }
                        Action::Rate(rate) => {
                            rule = Some(index);
                            probability *= set.scale(rate, span, &mut || now.wall());
                            exact_threshold = None;
                        }
                    }
                }
                Stage::Boost(booster) => {
                    if parent_decides {
                        return Evaluation::FollowParent;
                    }
                    let route = if booster.signals.routes.len() > 1 { Some(span.route()) } else { None };
                    let multiplier = booster.multiplier(route, now.monotonic());
                    if multiplier != 1.0 {
                        probability = (probability * multiplier).min(1.0);
                        exact_threshold = None;
                    }
                }
                Stage::Budget(pacer) => {
                    if parent_decides {
                        return Evaluation::FollowParent;
                    }
                    let pace = pacer.pace(now, probability);
                    // A span its rules sample at 0 is not wanted, even for the floor.
                    floor_due = probability > 0.0 && pacer.floor_due(now.monotonic());
                    if pace != 1.0 {
                        probability *= pace;
                        exact_threshold = None;
                    }
                }
            }
        }
        if parent_decides {
            return Evaluation::FollowParent;
        }
        let threshold =
            exact_threshold.unwrap_or_else(|| crate::threshold::threshold_for_probability(probability.clamp(0.0, 1.0), self.precision));
        Evaluation::Threshold(Pending { threshold, rule, floor_due, remote, xray })
    }

    /// A span whose sampled parent is in another service, under a budget that
    /// paces downstream: kept iff its randomness clears both the parent's
    /// threshold and the budget's, and its `th` says which was higher. So a
    /// service under budget keeps a consistent subset of its callers' traces
    /// (every span it keeps has its ancestors kept) and, with the floor, never
    /// goes blind.
    fn pace_downstream(&self, facts: &SpanFacts, parent: ParentFacts, followed: Decision, pacer: &Pacer, now: &Moment) -> Decision {
        let pace = pacer.pace(now, 1.0);
        let mut decision = Decision { paced_downstream: true, floor_due: pacer.floor_due(now.monotonic()), ..followed };
        let budget_threshold = crate::threshold::threshold_for_probability(pace.clamp(0.0, 1.0), self.precision);
        // The parent's threshold counts only when the randomness is consistent with it.
        let parent_threshold = if followed.th == ThUpdate::Erase { 0 } else { parent.ot.th.unwrap_or(0) };
        if budget_threshold <= parent_threshold {
            return decision;
        }
        decision.sampled = budget_threshold < NEVER && facts.randomness() >= budget_threshold;
        decision.th = if decision.sampled { ThUpdate::Set(budget_threshold) } else { ThUpdate::Unchanged };
        decision
    }
}

/// Parent-based decision: take the parent's flag; a kept child carries the
/// parent's `th` unless it contradicts the randomness (then it is erased, as the
/// spec asks of a parent-based sampler).
fn follow_parent(facts: &SpanFacts, parent: ParentFacts) -> Decision {
    if !parent.sampled {
        return Decision::new(false, ThUpdate::Unchanged, Path::ParentNotSampled);
    }
    let th = match parent.ot.th {
        Some(threshold) if facts.randomness() < threshold => ThUpdate::Erase,
        _ => ThUpdate::Unchanged,
    };
    Decision::new(true, th, Path::ParentSampled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::{decode_th, DEFAULT_PRECISION};

    fn probability_plan(p: f64, respect_parent: bool) -> Plan {
        Plan::new(respect_parent, vec![Stage::probability(p, DEFAULT_PRECISION)])
    }

    trait DecideBare {
        fn decide_bare(&self, facts: &SpanFacts) -> Decision;
    }

    impl DecideBare for Plan {
        fn decide_bare(&self, facts: &SpanFacts) -> Decision {
            let span = BareSpan { name: "span", root: facts.parent.is_none() };
            self.decide(facts, &span, &Moment::new(&crate::clock::FixedClock(0.0)))
        }
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
        assert!(plan.decide_bare(&root(t)).sampled);
        assert!(!plan.decide_bare(&root(t - 1)).sampled);
        // Only the low 56 bits count.
        assert!(!plan.decide_bare(&root((0xff << 56) | (t - 1))).sampled);
        assert_eq!(plan.decide_bare(&root(t)).th, ThUpdate::Set(t));
        assert_eq!(plan.decide_bare(&root(t - 1)).th, ThUpdate::Unchanged);
    }

    #[test]
    fn rates_zero_and_one() {
        for r in [0u64, 1, RANDOMNESS_MASK, u64::MAX] {
            assert!(!probability_plan(0.0, true).decide_bare(&root(r)).sampled);
            let kept = probability_plan(1.0, true).decide_bare(&root(r));
            assert!(kept.sampled);
            assert_eq!(kept.th, ThUpdate::Set(0));
        }
    }

    #[test]
    fn rv_overrides_trace_id_randomness() {
        let plan = probability_plan(0.5, false);
        let ot = OtFields { th: None, rv: Some(RANDOMNESS_MASK) };
        assert!(plan.decide_bare(&child(0, true, ot)).sampled);
        let ot = OtFields { th: None, rv: Some(0) };
        assert!(!plan.decide_bare(&child(u64::MAX, true, ot)).sampled);
    }

    #[test]
    fn parent_based_follows_flag_and_checks_th() {
        let plan = probability_plan(0.0, true);
        let th8 = decode_th("8");
        let kept = plan.decide_bare(&child(RANDOMNESS_MASK, true, OtFields { th: th8, rv: None }));
        assert_eq!((kept.sampled, kept.th, kept.path), (true, ThUpdate::Unchanged, Path::ParentSampled));
        // Randomness below the parent's threshold: the th is inconsistent.
        let inconsistent = plan.decide_bare(&child(0, true, OtFields { th: th8, rv: None }));
        assert_eq!((inconsistent.sampled, inconsistent.th), (true, ThUpdate::Erase));
        let dropped = probability_plan(1.0, true).decide_bare(&child(RANDOMNESS_MASK, false, OtFields::default()));
        assert_eq!((dropped.sampled, dropped.path), (false, Path::ParentNotSampled));
    }

    #[test]
    fn ignoring_the_parent_decides_afresh() {
        let plan = probability_plan(1.0, false);
        let decision = plan.decide_bare(&child(0, false, OtFields::default()));
        assert_eq!((decision.sampled, decision.th, decision.path), (true, ThUpdate::Set(0), Path::ChildIndependent));
    }

    #[test]
    fn trace_id_ratio_matches_sdk_bound() {
        let plan = Plan::new(true, vec![Stage::trace_id_ratio(0.5)]);
        assert!(plan.decide_bare(&root((1 << 63) - 1)).sampled);
        assert!(!plan.decide_bare(&root(1 << 63)).sampled);
        assert_eq!(plan.decide_bare(&root(0)).th, ThUpdate::Erase);
        let all = Plan::new(true, vec![Stage::trace_id_ratio(1.0)]);
        assert!(all.decide_bare(&root(u64::MAX)).sampled);
        let none = Plan::new(true, vec![Stage::trace_id_ratio(0.0)]);
        assert!(!none.decide_bare(&root(0)).sampled);
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
                let kept = probability_plan(i as f64 / 50.0, true).decide_bare(&root(x)).sampled;
                assert!(!kept_before || kept, "monotonicity broken for {x:#x} at {i}");
                kept_before = kept;
            }
        }
    }

    fn rule_plan(respect_parent: bool) -> Plan {
        use crate::data::Data;
        let map = |entries: Vec<(&str, Data)>| Data::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let rules = Data::List(vec![
            map(vec![("name", Data::Str("keep-x".into())), ("span_name", Data::Str("x".into())), ("action", Data::Str("keep".into()))]),
            map(vec![("name", Data::Str("drop-y".into())), ("span_name", Data::Str("y".into())), ("action", Data::Str("drop".into()))]),
            map(vec![("name", Data::Str("quarter".into())), ("span_name", Data::Str("z".into())), ("rate", Data::Float(0.25))]),
        ]);
        let set = crate::rules::parse(&rules, 0.5, &Data::List(vec![])).unwrap();
        Plan::new(respect_parent, vec![Stage::Rules(Arc::new(set))])
    }

    fn decide_named(plan: &Plan, facts: &SpanFacts, name: &str) -> Decision {
        plan.decide(facts, &BareSpan { name, root: facts.parent.is_none() }, &Moment::new(&crate::clock::FixedClock(0.0)))
    }

    #[test]
    fn keep_rules_override_the_parent_and_others_yield_to_it() {
        let plan = rule_plan(true);
        let unsampled = child(RANDOMNESS_MASK, false, OtFields::default());
        let kept = decide_named(&plan, &unsampled, "x");
        assert_eq!((kept.sampled, kept.th, kept.path, kept.rule), (true, ThUpdate::Set(0), Path::ForcedKeep, Some(0)));
        let sampled = child(0, true, OtFields::default());
        let followed = decide_named(&plan, &sampled, "y");
        assert_eq!((followed.sampled, followed.path, followed.rule), (true, Path::ParentSampled, None));
        assert_eq!(decide_named(&plan, &unsampled, "z").path, Path::ParentNotSampled);
    }

    #[test]
    fn rule_rates_go_into_the_decision_and_th() {
        let plan = rule_plan(true);
        let t = decode_th("c").unwrap();
        let kept = decide_named(&plan, &root(t), "z");
        assert_eq!((kept.sampled, kept.th, kept.rule), (true, ThUpdate::Set(t), Some(2)));
        assert!(!decide_named(&plan, &root(t - 1), "z").sampled);
        let default = decide_named(&plan, &root(1 << 55), "other");
        assert_eq!((default.sampled, default.th, default.rule), (true, ThUpdate::Set(1 << 55), Some(3)));
        let dropped = decide_named(&plan, &root(RANDOMNESS_MASK), "y");
        assert_eq!((dropped.sampled, dropped.rule), (false, Some(1)));
        // Ignoring the parent, rules decide children too.
        let independent = decide_named(&rule_plan(false), &child(RANDOMNESS_MASK, false, OtFields::default()), "z");
        assert_eq!((independent.sampled, independent.path), (true, Path::ChildIndependent));
    }

    #[test]
    fn the_floor_keeps_what_probability_did_not_with_th_zero() {
        use crate::budget::period::{Calendar, PeriodKind};
        let clock = crate::clock::FixedClock(1_767_225_600.0 + 10.0 * 3600.0); // 1 Jan 2026, 10:00 UTC
        let calendar = Calendar::new(PeriodKind::Month, "UTC").unwrap();
        let pacer = Pacer::new(calendar, 10_000, true, Downstream::Pace, &Moment::new(&clock)).unwrap();
        pacer.first_start(&Moment::new(&clock));
        let plan = Plan::new(true, vec![Stage::probability(0.5, DEFAULT_PRECISION), Stage::Budget(Arc::new(pacer))]);
        let half = decode_th("8").unwrap();
        let decide = |r: u64| plan.decide(&root(r), &BareSpan { name: "span", root: true }, &Moment::new(&clock));
        let floor = decide(half - 1);
        assert!(floor.sampled && floor.floor, "nothing kept this hour yet: the floor keeps it");
        assert_eq!(floor.th, ThUpdate::Set(0), "certain, given that nothing else was kept in its slot: th 0, it stands for itself");
        let dropped = decide(half - 1);
        assert!(!dropped.sampled && !dropped.floor_due, "the hour is covered");
        let kept = decide(RANDOMNESS_MASK);
        assert!(kept.sampled && !kept.floor);
        assert!(matches!(kept.th, ThUpdate::Set(t) if t >= half), "a probability keep carries its threshold (the pace's too)");
    }
}
