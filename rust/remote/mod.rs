//! Remote sampling strategies (Jaeger's): a strategy fetched from a server or
//! a file, compiled into the form a decision reads, and swapped in whole
//! while decisions go on (one atomic pointer load per decision). The fetching
//! is the Python layer's; this module only reads, checks and decides.

pub mod strategy;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use rustc_hash::FxHashMap;

use crate::config::ConfigError;
use crate::data::Data;
use crate::rate_limit::TokenBucket;
use crate::threshold::threshold_for_probability;
pub use strategy::{Operation, Strategy};

/// Operations given their own probability, by default (Jaeger's clients use 2,000);
/// operations beyond it get the default.
pub const DEFAULT_MAX_OPERATIONS: usize = 2000;

/// One operation's compiled rule: its probability (and threshold), the lower
/// bound's token bucket, and what it decided.
#[derive(Debug)]
pub struct OperationRule {
    pub name: Option<String>,
    pub probability: f64,
    pub threshold: u64,
    pub lower_bound: Option<TokenBucket>,
    pub decisions: AtomicU64,
    /// Spans kept by the lower bound alone (no probability sample: no `th`).
    pub lower_bound_keeps: AtomicU64,
}

/// A strategy in the form a decision reads.
#[derive(Debug)]
pub enum Compiled {
    Probabilistic(OperationRule),
    RateLimiting { rate: f64, bucket: Option<TokenBucket>, decisions: AtomicU64 },
    PerOperation { default: OperationRule, by_name: FxHashMap<String, usize>, operations: Vec<OperationRule>, capped: usize },
}

/// Which rule of a compiled strategy applies to a span (found once per decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The probabilistic rule, or a per-operation rule (None: the default).
    Rule(Option<usize>),
    RateLimit,
}

/// What the remote stage says about one span.
pub enum Verdict<'a> {
    /// Keep with this probability; a span the probability does not keep is
    /// still kept when the lower bound has a token (and a kept one spends one).
    Probability { probability: f64, threshold: u64, lower_bound: Option<&'a OperationRule> },
    /// Keep while the bucket has tokens (none: keep nothing).
    RateLimit(Option<&'a TokenBucket>),
}

impl OperationRule {
    fn new(name: Option<String>, probability: f64, lower_bound: f64, precision: u32, now: f64) -> OperationRule {
        OperationRule {
            name,
            probability,
            threshold: threshold_for_probability(probability, precision),
            lower_bound: TokenBucket::per_second(lower_bound, now),
            decisions: AtomicU64::new(0),
            lower_bound_keeps: AtomicU64::new(0),
        }
    }
}

impl Compiled {
    pub fn compile(strategy: &Strategy, max_operations: usize, precision: u32, now: f64) -> Compiled {
        match strategy {
            Strategy::Probabilistic(p) => Compiled::Probabilistic(OperationRule::new(None, *p, 0.0, precision, now)),
            Strategy::RateLimiting(rate) => {
                Compiled::RateLimiting { rate: *rate, bucket: TokenBucket::per_second(*rate, now), decisions: AtomicU64::new(0) }
            }
            Strategy::PerOperation { default_probability, lower_bound, operations } => {
                let kept = operations.len().min(max_operations);
                let rules: Vec<OperationRule> = operations[..kept]
                    .iter()
                    .map(|op| OperationRule::new(Some(op.name.clone()), op.probability, *lower_bound, precision, now))
                    .collect();
                let by_name = rules.iter().enumerate().map(|(i, r)| (r.name.clone().unwrap_or_default(), i)).collect();
                Compiled::PerOperation {
                    default: OperationRule::new(None, *default_probability, *lower_bound, precision, now),
                    by_name,
                    operations: rules,
                    capped: operations.len() - kept,
                }
            }
        }
    }

    /// The rule for a span named `name`, its decision counted.
    #[inline]
    pub fn find(&self, name: &str) -> Found {
        let found = match self {
            Compiled::Probabilistic(_) => Found::Rule(None),
            Compiled::RateLimiting { decisions, .. } => {
                decisions.fetch_add(1, Relaxed);
                return Found::RateLimit;
            }
            Compiled::PerOperation { by_name, .. } => Found::Rule(by_name.get(name).copied()),
        };
        if let Found::Rule(index) = found {
            self.rule(index).decisions.fetch_add(1, Relaxed);
        }
        found
    }

    /// A rule found by `find`.
    #[inline]
    pub fn rule(&self, index: Option<usize>) -> &OperationRule {
        match (self, index) {
            (Compiled::PerOperation { operations, .. }, Some(i)) => &operations[i],
            (Compiled::PerOperation { default, .. }, None) => default,
            (Compiled::Probabilistic(rule), _) => rule,
            (Compiled::RateLimiting { .. }, _) => unreachable!("a rate limit has no probability rule"),
        }
    }

    /// The rate limit's bucket (None: a rate of 0, or not a rate limit).
    #[inline]
    pub fn bucket(&self) -> Option<&TokenBucket> {
        match self {
            Compiled::RateLimiting { bucket, .. } => bucket.as_ref(),
            _ => None,
        }
    }

    /// The verdict for a span named `name`.
    #[inline]
    pub fn verdict(&self, name: &str) -> Verdict<'_> {
        let rule = match self {
            Compiled::Probabilistic(rule) => rule,
            Compiled::RateLimiting { bucket, decisions, .. } => {
                decisions.fetch_add(1, Relaxed);
                return Verdict::RateLimit(bucket.as_ref());
            }
            Compiled::PerOperation { default, by_name, operations, .. } => by_name.get(name).map_or(default, |i| &operations[*i]),
        };
        rule.decisions.fetch_add(1, Relaxed);
        Verdict::Probability {
            probability: rule.probability,
            threshold: rule.threshold,
            lower_bound: rule.lower_bound.as_ref().map(|_| rule),
        }
    }
}

/// A strategy in force, replaced whole when a new one arrives.
pub struct RemoteStrategy {
    pub service_name: String,
    pub max_operations: usize,
    precision: u32,
    current: ArcSwap<Compiled>,
    /// The document behind `current` (None: the initial rate, nothing fetched yet).
    source: Mutex<Option<Strategy>>,
    pub initial_rate: f64,
    pub updates: AtomicU64,
    pub rejected: AtomicU64,
    /// What the last document applied was read as, where that differs from
    /// what it says (clamped values, Jaeger's defaults).
    notes: Mutex<Vec<String>>,
}

impl std::fmt::Debug for RemoteStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStrategy").field("service_name", &self.service_name).finish()
    }
}

impl RemoteStrategy {
    /// Probabilistic `initial_rate` until a strategy arrives.
    pub fn new(service_name: &str, initial_rate: f64, max_operations: usize, precision: u32) -> Result<RemoteStrategy, ConfigError> {
        let initial_rate = crate::config::probability("initial_rate", initial_rate)?;
        if service_name.is_empty() {
            return Err(ConfigError::new("service_name", "an empty name; expected the service name the strategy server knows"));
        }
        if max_operations == 0 {
            return Err(ConfigError::new("max_operations", "0; expected at least 1 operation"));
        }
        let initial = Compiled::compile(&Strategy::Probabilistic(initial_rate), max_operations, precision, 0.0);
        Ok(RemoteStrategy {
            service_name: service_name.to_owned(),
            max_operations,
            precision,
            current: ArcSwap::from_pointee(initial),
            source: Mutex::new(None),
            initial_rate,
            updates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            notes: Mutex::new(Vec::new()),
        })
    }

    /// The strategy in force (held for one decision).
    #[inline]
    pub fn current(&self) -> Guard<Arc<Compiled>> {
        self.current.load()
    }

    /// Put the document `document` in force at monotonic time `now`. A bad
    /// document is refused whole (counted); the same strategy again changes
    /// nothing (its token buckets keep their state). Returns whether it changed.
    pub fn update(&self, document: &Data, now: f64) -> Result<bool, ConfigError> {
        let strategy::Parsed { strategy, notes } = strategy::parse_for(document, &self.service_name).inspect_err(|_| {
            self.rejected.fetch_add(1, Relaxed);
        })?;
        let mut source = self.source.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if source.as_ref() == Some(&strategy) {
            return Ok(false);
        }
        *self.notes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = notes;
        self.current.store(Arc::new(Compiled::compile(&strategy, self.max_operations, self.precision, now)));
        *source = Some(strategy);
        self.updates.fetch_add(1, Relaxed);
        Ok(true)
    }

    /// How the document in force was read where it differs from what it says.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// The document in force (None: still the initial rate).
    pub fn strategy(&self) -> Option<Strategy> {
        self.source.lock().map(|s| s.clone()).unwrap_or(None)
    }

    pub fn describe(&self) -> String {
        match self.strategy() {
            Some(strategy) => strategy.describe(),
            None => format!("initial probabilistic {} (no strategy fetched yet)", crate::words::py_float(self.initial_rate)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strategy::tests::json;
    use super::*;

    #[test]
    fn per_operation_lookup_default_and_cap() {
        let remote = RemoteStrategy::new("svc", 0.001, 2, 5).unwrap();
        let doc = json(
            r#"{"operationSampling": {"defaultSamplingProbability": 0.1, "defaultLowerBoundTracesPerSecond": 1,
                "perOperationStrategies": [
                  {"operation": "a", "probabilisticSampling": {"samplingRate": 0.5}},
                  {"operation": "b", "probabilisticSampling": {"samplingRate": 0.25}},
                  {"operation": "c", "probabilisticSampling": {"samplingRate": 1.0}}]}}"#,
        );
        assert!(remote.update(&doc, 0.0).unwrap());
        assert!(!remote.update(&doc, 1.0).unwrap(), "the same document changes nothing");
        let current = remote.current();
        let probability = |name: &str| match current.verdict(name) {
            Verdict::Probability { probability, lower_bound, .. } => (probability, lower_bound.is_some()),
            Verdict::RateLimit(_) => panic!("not a rate limit"),
        };
        assert_eq!(probability("a"), (0.5, true));
        assert_eq!(probability("b"), (0.25, true));
        assert_eq!(probability("c"), (0.1, true), "beyond max_operations: the default");
        assert_eq!(probability("zzz"), (0.1, true));
        let Compiled::PerOperation { capped, .. } = &**current else { panic!() };
        assert_eq!(*capped, 1);
    }

    #[test]
    fn a_bad_document_leaves_the_strategy_in_force() {
        let remote = RemoteStrategy::new("svc", 0.25, 10, 5).unwrap();
        assert!(remote.update(&json(r#"{"probabilisticSampling": {"samplingRate": "x"}}"#), 0.0).is_err());
        assert_eq!(remote.rejected.load(Relaxed), 1);
        assert!(remote.describe().starts_with("initial probabilistic 0.25"));
        remote.update(&json(r#"{"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 2}}"#), 0.0).unwrap();
        let current = remote.current();
        let Verdict::RateLimit(Some(bucket)) = current.verdict("x") else { panic!("a rate limit") };
        assert_eq!((0..10).filter(|_| bucket.try_take(0.0)).count(), 2);
    }

    #[test]
    fn bad_settings() {
        assert!(RemoteStrategy::new("", 0.1, 10, 5).is_err());
        assert!(RemoteStrategy::new("svc", 1.5, 10, 5).unwrap_err().to_string().starts_with("initial_rate: 1.5"));
        assert!(RemoteStrategy::new("svc", 0.1, 0, 5).is_err());
    }
}
