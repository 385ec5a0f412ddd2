//! AWS X-Ray centralized sampling: the rules X-Ray serves (matched in
//! priority order on the service, the request and its attributes), each with
//! a reservoir (traces per second, a quota X-Ray leases to this client for a
//! while) and a fixed rate (a consistent probability here, so `th` is
//! written and estimates stay right). The fetching and reporting is the
//! Python layer's; this module reads what X-Ray sends, decides, and counts
//! what it decided for the next report.

pub mod document;
mod memo;
pub mod pattern;
mod request;
mod resource;
mod target;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};

use crate::clock::Moment;
use crate::config::ConfigError;
use crate::data::Data;
use crate::rate_limit::TokenBucket;
use crate::rules::SpanView;
use crate::threshold::threshold_for_probability;
use document::RuleSpec;
use pattern::Field;
pub use request::{Fields, Request, XRAY_KEYS};
pub use resource::ResourceFacts;
pub use target::{Counts, Target};

/// Seconds the last rules fetched stay in force with no fresh fetch (then the
/// fallback decides), as in the AWS samplers.
pub const RULES_TTL: f64 = 3600.0;
/// The fallback before rules arrive, once they are stale, and for a span no
/// rule matches: one trace a second, then this fraction of the rest.
pub const FALLBACK_TRACES_PER_SECOND: f64 = 1.0;
pub const FALLBACK_RATE: f64 = 0.05;
/// Seconds between reports when X-Ray names no interval.
pub const DEFAULT_TARGET_INTERVAL: f64 = 10.0;
/// Seconds between rules fetches, by default (as the AWS samplers).
pub const DEFAULT_RULES_INTERVAL: f64 = 300.0;
/// The X-Ray daemon's (and the Collector's awsproxy's) local address.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2000";

/// A rule in force: what X-Ray defines, what its last target says, and what it decided.
#[derive(Debug)]
pub struct RuleState {
    pub spec: RuleSpec,
    /// The rule's service fields match this resource (else it is never tried).
    pub for_this_service: bool,
    /// `ResourceARN` is read from the span (a Lambda function whose resource has no id).
    arn_from_span: bool,
    /// Since the last report (root spans only, as X-Ray counts requests).
    pub unreported: Counts,
    /// Taken for reports since the rule came into force (with `unreported`: every decision counted).
    pub reported: Counts,
}

impl RuleState {
    fn new(spec: RuleSpec, resource: &ResourceFacts) -> RuleState {
        let arn = resource.arn();
        let for_this_service = spec.service_name.matches(Field::Text(&resource.service_name))
            && spec.service_type.matches(Field::Text(resource.service_type()))
            && arn.is_none_or(|arn| spec.resource_arn.matches(Field::Text(arn)));
        RuleState {
            arn_from_span: arn.is_none() && !spec.resource_arn.is_any(),
            spec,
            for_this_service,
            unreported: Counts::default(),
            reported: Counts::default(),
        }
    }

    /// Whether the request's fields match; then its attributes decide (when the rule has any).
    #[inline]
    fn matches_request(&self, request: &Request<'_>) -> bool {
        let spec = &self.spec;
        spec.url_path.matches(request.url_path)
            && spec.http_method.matches(request.method)
            && spec.host.matches(request.host)
            && (!self.arn_from_span || spec.resource_arn.matches(request.lambda_arn))
    }

    #[inline]
    fn matches_attributes<S: SpanView + ?Sized>(&self, span: &S) -> bool {
        let spec = &self.spec;
        spec.attributes.iter().all(|(key, pattern)| {
            // A rule attribute the span lacks fails the rule, even `*`.
            span.with_named_attribute(key, &mut |value| value.is_some_and(|value| pattern.matches(request::field(Some(value)))))
        })
    }

    #[inline]
    fn count(&self, sampled: bool, borrowed: bool) {
        self.unreported.add(1, u64::from(sampled), u64::from(sampled && borrowed));
    }

    /// Requests, keeps and borrowed keeps since the rule came into force.
    pub fn totals(&self) -> (u64, u64, u64) {
        let (a, b) = (self.reported.get(), self.unreported.get());
        (a.0 + b.0, a.1 + b.1, a.2 + b.2)
    }
}

/// The request fields these rules constrain (a field every rule leaves at `*` decides nothing).
fn fields_constrained<'r>(rules: impl Iterator<Item = &'r RuleState>) -> Fields {
    rules.fold(Fields::default(), |fields, rule| Fields {
        url_path: fields.url_path || !rule.spec.url_path.is_any(),
        method: fields.method || !rule.spec.http_method.is_any(),
        host: fields.host || !rule.spec.host.is_any(),
        lambda_arn: fields.lambda_arn || rule.arn_from_span,
    })
}

/// The rules in force and their targets, replaced whole when either changes
/// (so a decision reads both with one atomic load).
#[derive(Debug)]
pub struct Table {
    pub rules: Vec<Arc<RuleState>>,
    /// By rule: what X-Ray's last target says (shared with the next table while unchanged).
    pub targets: Vec<Arc<Target>>,
    /// Indexes of the rules for this service, in the order they are tried.
    candidates: Vec<usize>,
    /// Choices already made for requests like this one.
    memo: memo::Memo,
    /// Monotonic seconds of the last good fetch (None: no rules yet).
    fetched_at: Option<f64>,
}

/// The span's rule (None: the fallback decides).
pub type Choice = Option<usize>;

/// What the X-Ray stage says before the draw.
pub enum Verdict {
    /// Kept from the reservoir (no probability sample: no `th`).
    Reservoir,
    /// The fixed rate decides.
    Rate { probability: f64, threshold: u64 },
}

/// One sampler's X-Ray state: the rules and targets in force, the fallback and the counts.
pub struct XRay {
    pub resource: ResourceFacts,
    precision: u32,
    table: ArcSwap<Table>,
    fallback: TokenBucket,
    fallback_threshold: u64,
    pub fallback_decisions: AtomicU64,
    pub rule_updates: AtomicU64,
    pub target_updates: AtomicU64,
    pub rejected: AtomicU64,
    /// Unix seconds of the rules in force (compared with X-Ray's `LastRuleModification`).
    rules_fetched_wall: Mutex<Option<f64>>,
    notes: Mutex<Vec<String>>,
    /// Held while a new table is made from the one in force.
    writing: Mutex<()>,
}

impl std::fmt::Debug for XRay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XRay").field("service_name", &self.resource.service_name).finish()
    }
}

/// The outcome of applying a `SamplingTargets` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetsApplied {
    /// Targets that named a rule in force.
    pub applied: usize,
    /// X-Ray's rules changed since ours were fetched: fetch them again.
    pub refresh_rules: bool,
    /// Seconds until the next report (the smallest `Interval`, else the default).
    pub interval: f64,
    pub unprocessed: Vec<String>,
}

/// One rule's counts for a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    pub rule_name: String,
    pub requests: u64,
    pub sampled: u64,
    pub borrowed: u64,
}

impl XRay {
    pub fn new(resource: ResourceFacts, precision: u32, now: f64) -> XRay {
        XRay {
            resource,
            precision,
            table: ArcSwap::from_pointee(Table {
                rules: Vec::new(),
                targets: Vec::new(),
                candidates: Vec::new(),
                memo: memo::Memo::new(Fields::default()),
                fetched_at: None,
            }),
            fallback: TokenBucket::per_second(FALLBACK_TRACES_PER_SECOND, now).expect("a positive rate"),
            fallback_threshold: threshold_for_probability(FALLBACK_RATE, precision),
            fallback_decisions: AtomicU64::new(0),
            rule_updates: AtomicU64::new(0),
            target_updates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            rules_fetched_wall: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
        }
    }

    #[inline]
    pub fn table(&self) -> Guard<Arc<Table>> {
        self.table.load()
    }

    /// The rule for this span, None when the fallback decides (no rules yet,
    /// rules an hour stale, or none matching).
    #[inline]
    /// `keys_at`: where X-Ray's keys start in the span's key table.
    pub fn choose<S: SpanView + ?Sized>(&self, table: &Table, span: &S, now: &Moment, keys_at: usize) -> Choice {
        let fetched_at = table.fetched_at?;
        if now.monotonic() - fetched_at > RULES_TTL {
            return None;
        }
        let request = Request::read(span, keys_at, table.memo.fields());
        let hash = table.memo.fingerprint(&request);
        if let Some(choice) = table.memo.get(hash) {
            return choice;
        }
        let mut read_attributes = false;
        let choice = table.candidates.iter().copied().find(|i| {
            let rule = &table.rules[*i];
            if !rule.matches_request(&request) {
                return false;
            }
            if rule.spec.attributes.is_empty() {
                return true;
            }
            read_attributes = true;
            rule.matches_attributes(span)
        });
        if !read_attributes {
            table.memo.put(hash, choice);
        }
        choice
    }

    /// The reservoir, then the fixed rate, for a span whose rule is `choice`.
    /// A reservoir keep is counted here; a rate decision by `count` after the draw.
    #[inline]
    pub fn verdict(&self, table: &Table, choice: Choice, root: bool, now: &Moment) -> Verdict {
        match choice {
            Some(index) => {
                let rule = &table.rules[index];
                let target = &table.targets[index];
                if target.take(now) {
                    if root {
                        rule.count(true, target.borrowing);
                    }
                    return Verdict::Reservoir;
                }
                Verdict::Rate { probability: target.fixed_rate, threshold: target.threshold }
            }
            None => {
                self.fallback_decisions.fetch_add(1, Relaxed);
                if self.fallback.try_take(now.monotonic()) {
                    return Verdict::Reservoir;
                }
                Verdict::Rate { probability: FALLBACK_RATE, threshold: self.fallback_threshold }
            }
        }
    }

    /// Count a fixed-rate decision of a root span.
    #[inline]
    pub fn count(table: &Table, choice: Choice, root: bool, sampled: bool) {
        if let (Some(index), true) = (choice, root) {
            table.rules[index].count(sampled, false);
        }
    }

    /// Put the rules of a `GetSamplingRules` answer (all its pages) in force.
    /// A rule that did not change keeps its target and counts; a bad answer is
    /// refused whole (counted). Returns whether the rules changed.
    pub fn update_rules(&self, pages: &[Data], wall: f64, now: f64) -> Result<bool, ConfigError> {
        let read = document::parse_rules(pages).inspect_err(|_| {
            self.rejected.fetch_add(1, Relaxed);
        })?;
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        *self.notes.lock().unwrap_or_else(|p| p.into_inner()) = read.skipped;
        *self.rules_fetched_wall.lock().unwrap_or_else(|p| p.into_inner()) = Some(wall);
        let old = self.table.load_full();
        let same = old.rules.len() == read.rules.len() && old.rules.iter().zip(&read.rules).all(|(a, b)| a.spec == *b);
        let (rules, targets): (Vec<Arc<RuleState>>, Vec<Arc<Target>>) = read
            .rules
            .into_iter()
            .map(|spec| match old.rules.iter().position(|r| r.spec == spec) {
                Some(i) => (old.rules[i].clone(), old.targets[i].clone()),
                None => {
                    let target = Arc::new(Target::initial(&spec, self.precision, now));
                    (Arc::new(RuleState::new(spec, &self.resource)), target)
                }
            })
            .unzip();
        let candidates: Vec<usize> = rules.iter().enumerate().filter(|(_, r)| r.for_this_service).map(|(i, _)| i).collect();
        let memo = memo::Memo::new(fields_constrained(candidates.iter().map(|i| &*rules[*i])));
        self.table.store(Arc::new(Table { rules, targets, candidates, memo, fetched_at: Some(now) }));
        if !same {
            self.rule_updates.fetch_add(1, Relaxed);
        }
        Ok(!same)
    }

    /// Apply a `SamplingTargets` answer.
    pub fn apply_targets(&self, data: &Data, wall: f64, now: f64) -> Result<TargetsApplied, ConfigError> {
        let read = document::parse_targets(data).inspect_err(|_| {
            self.rejected.fetch_add(1, Relaxed);
        })?;
        // One writer at a time (the poller; a hand-applied answer in tests), so no update is lost.
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let table = self.table.load_full();
        let mut targets = table.targets.clone();
        let mut applied = 0;
        let mut interval: Option<f64> = None;
        for spec in &read.targets {
            if let Some(index) = table.rules.iter().position(|r| r.spec.name == spec.rule_name) {
                targets[index] = Arc::new(Target::from_spec(spec, self.precision, wall, now));
                applied += 1;
                if let Some(i) = spec.interval {
                    interval = Some(interval.map_or(i, |current: f64| current.min(i)));
                }
            }
        }
        let next = Table {
            rules: table.rules.clone(),
            targets,
            candidates: table.candidates.clone(),
            memo: memo::Memo::new(table.memo.fields()),
            fetched_at: table.fetched_at,
        };
        self.table.store(Arc::new(next));
        self.target_updates.fetch_add(1, Relaxed);
        let fetched = *self.rules_fetched_wall.lock().unwrap_or_else(|p| p.into_inner());
        Ok(TargetsApplied {
            applied,
            refresh_rules: fetched.is_some_and(|at| read.last_rule_modification > at),
            interval: interval.unwrap_or(DEFAULT_TARGET_INTERVAL),
            unprocessed: read.unprocessed,
        })
    }

    /// Each rule's counts since the last report (rules with requests only), reset.
    pub fn take_statistics(&self) -> Vec<Statistics> {
        let table = self.table.load();
        table
            .rules
            .iter()
            .filter_map(|rule| {
                let (requests, sampled, borrowed) = rule.unreported.take();
                rule.reported.add(requests, sampled, borrowed);
                (requests > 0 || sampled > 0).then(|| Statistics { rule_name: rule.spec.name.clone(), requests, sampled, borrowed })
            })
            .collect()
    }

    /// Give back counts a report could not deliver, so the next report carries them.
    pub fn restore_statistics(&self, statistics: &[Statistics]) {
        let table = self.table.load();
        for entry in statistics {
            if let Some(rule) = table.rules.iter().find(|r| r.spec.name == entry.rule_name) {
                rule.unreported.add(entry.requests, entry.sampled, entry.borrowed);
                for (counter, n) in [
                    (&rule.reported.requests, entry.requests),
                    (&rule.reported.sampled, entry.sampled),
                    (&rule.reported.borrowed, entry.borrowed),
                ] {
                    counter.fetch_sub(n.min(counter.load(Relaxed)), Relaxed);
                }
            }
        }
    }

    /// Rules skipped in the last answer, and why.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Plain words for what is in force (`now`: monotonic seconds, to tell stale rules).
    pub fn describe(&self, now: Option<f64>) -> String {
        let table = self.table.load();
        match (table.fetched_at, now) {
            (None, _) => format!("the fallback ({FALLBACK_TRACES_PER_SECOND} trace/s, then {FALLBACK_RATE}): no rules fetched yet"),
            (Some(at), Some(now)) if now - at > RULES_TTL => format!("the fallback: the rules are {:.0} s old", now - at),
            (Some(_), _) => {
                let rules = table.rules.len();
                format!("{rules} {}, {} for this service", if rules == 1 { "rule" } else { "rules" }, table.candidates.len())
            }
        }
    }

    /// What decides a span whose rule is `choice`, in words, and the fixed
    /// rate it gets once the reservoir is spent (nothing is taken or counted).
    pub fn explain(&self, table: &Table, choice: Choice, now: &Moment) -> (String, f64) {
        let Some(index) = choice else {
            return (
                format!(
                    "no X-Ray rule applies ({}): {FALLBACK_TRACES_PER_SECOND} trace/s (no th), then probability {FALLBACK_RATE}",
                    self.describe(Some(now.monotonic()))
                ),
                FALLBACK_RATE,
            );
        };
        let rule = &table.rules[index];
        let target = &table.targets[index];
        let reservoir = if target.reservoir.is_none() || now.wall() >= target.reservoir_until {
            "no reservoir in force".to_owned()
        } else if target.borrowing {
            "a borrowed reservoir of 1 trace/s (no th; no target from X-Ray yet)".to_owned()
        } else {
            format!("a reservoir of {} traces/s (no th)", crate::words::plain(target.quota))
        };
        (
            format!(
                "X-Ray rule {:?} (priority {}): {reservoir}, then fixed rate {}",
                rule.spec.name, rule.spec.priority, target.fixed_rate
            ),
            target.fixed_rate,
        )
    }
}

#[cfg(test)]
mod tests;
