//! Adaptive boosting from live signals. Ended spans (or manual calls) feed
//! sliding windows of spans, errors and slow spans, overall and per route; a
//! boost policy turns the recent windows into a probability multiplier, which
//! decays by itself as the windows slide past the trouble.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::ConfigError;
use crate::data::{self, Data, Path};
use crate::store::{Origin, Store};
use crate::window::SlidingWindow;
use crate::words::plain;

mod fleet;
pub use fleet::SignalsFleet;

/// The windows for one latency bucket: a configured route, or every other span.
#[derive(Debug)]
pub struct RouteSignals {
    pub route: Option<String>,
    /// Seconds at or above which a span counts as slow (infinity: never).
    pub slow_threshold: f64,
    pub spans: SlidingWindow,
    pub slow: SlidingWindow,
    /// (tick << 32) | f32 bits of this bucket's latency multiplier.
    cache: AtomicU64,
}

/// Everything the processor records.
pub struct Signals {
    clock: Arc<dyn Clock>,
    /// Every span is recorded (drops deferred), so each counts once.
    all_recorded: AtomicBool,
    pub errors: SlidingWindow,
    /// Bucket 0 is "every other route"; then one per configured route.
    pub routes: Vec<RouteSignals>,
    /// Whether the windows are shared by the host's processes (a file store).
    shared: bool,
    store: Arc<Store>,
    /// In a Redis fleet: the link that sums the windows across the fleet.
    fleet: Option<SignalsFleet>,
}

/// Counts in the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub spans: u64,
    pub errors: u64,
    pub slow: u64,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").field("routes", &self.routes.len()).finish()
    }
}

impl Signals {
    /// `route_thresholds`: (route, slow threshold in seconds) pairs; `slow_threshold`
    /// applies to every other span (infinity turns it off).
    pub fn new(
        clock: Arc<dyn Clock>,
        window: f64,
        resolution: f64,
        slow_threshold: f64,
        route_thresholds: &[(String, f64)],
    ) -> Result<Signals, ConfigError> {
        Signals::in_store(&Arc::new(Store::local()), clock, window, resolution, slow_threshold, route_thresholds)
    }

    /// The windows in `store`: every process naming it counts into the same
    /// windows, so an error burst in one worker boosts them all.
    pub fn in_store(
        store: &Arc<Store>,
        clock: Arc<dyn Clock>,
        window: f64,
        resolution: f64,
        slow_threshold: f64,
        route_thresholds: &[(String, f64)],
    ) -> Result<Signals, ConfigError> {
        let positive = |field: &str, value: f64| {
            if value.is_nan() || value <= 0.0 {
                Err(ConfigError::new(field, format!("{} is not a positive number of seconds", plain(value))))
            } else {
                Ok(value)
            }
        };
        let count = SlidingWindow::buckets_for(window, resolution)?;
        let mut thresholds = vec![(None, positive("slow_threshold", slow_threshold)?)];
        for (route, threshold) in route_thresholds {
            let field = format!("route_thresholds[{}]", crate::words::quoted(route));
            if thresholds.iter().any(|(r, _)| r.as_deref() == Some(route.as_str())) {
                return Err(ConfigError::new(&field, "route given twice"));
            }
            thresholds.push((Some(route.clone()), positive(&field, *threshold)?));
        }
        // One piece: the origin, then the error window, then spans and slow
        // spans per latency bucket.
        let windows = 1 + 2 * thresholds.len();
        let routes_text: Vec<String> = thresholds[1..].iter().map(|(r, t)| format!("{:?}={t} s", r.as_deref().unwrap_or(""))).collect();
        let settings = format!(
            "window={window} s, resolution={resolution} s, slow_threshold={slow_threshold} s, route_thresholds=[{}]",
            routes_text.join(", ")
        );
        let placement = store.place("signals", &settings, 1 + windows * count)?;
        let words = &placement.region;
        if placement.origin != Origin::Attached {
            // Windows tick on the monotonic clock (a wall clock stepping back must
            // not make new events look older than the window), from one window
            // back so clocks that step back a little stay in range. After a
            // reboot the old counts are from another clock: start empty.
            words.clear();
            let now = clock.monotonic();
            let origin = if now.is_finite() { now - window } else { 0.0 };
            words.words()[0].store(origin.to_bits(), Ordering::Release);
        }
        let origin = f64::from_bits(words.words()[0].load(Ordering::Acquire));
        let ring = |index: usize| SlidingWindow::over(words.part(1 + index * count, count), resolution, origin);
        let routes = thresholds
            .into_iter()
            .enumerate()
            .map(|(i, (route, threshold))| RouteSignals {
                route,
                slow_threshold: threshold,
                spans: ring(1 + 2 * i),
                slow: ring(2 + 2 * i),
                cache: AtomicU64::new(0),
            })
            .collect();
        let fleet = store.fleet().map(|fleet| SignalsFleet::new(fleet, settings.clone()));
        let signals = Signals {
            fleet,
            clock,
            all_recorded: AtomicBool::new(false),
            errors: ring(0),
            routes,
            shared: placement.region.is_mapped(),
            store: store.clone(),
        };
        placement.ready()?;
        Ok(signals)
    }

    /// Whether the windows are shared with other processes (a file store or a fleet).
    pub fn is_shared(&self) -> bool {
        (self.shared && !self.store.is_detached()) || self.fleet.is_some()
    }

    /// The store the windows were placed in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The windows' time: the monotonic clock.
    pub fn now(&self) -> f64 {
        self.clock.monotonic()
    }

    pub fn all_recorded(&self) -> bool {
        self.all_recorded.load(Ordering::Relaxed)
    }

    pub fn set_all_recorded(&self, all_recorded: bool) {
        self.all_recorded.store(all_recorded, Ordering::Relaxed);
    }

    /// The latency bucket of a route.
    #[inline]
    pub fn bucket(&self, route: Option<&str>) -> &RouteSignals {
        if let Some(route) = route {
            if let Some(found) = self.routes[1..].iter().find(|r| r.route.as_deref() == Some(route)) {
                return found;
            }
        }
        &self.routes[0]
    }

    /// An ended span: counted, and as an error and/or slow span when it is one.
    /// `weight` is how many spans it stands for (its adjusted count, 1 when unsampled
    /// spans are recorded too), so windows estimate all traffic, not just what was kept.
    #[inline]
    pub fn record_span(&self, error: bool, duration: Option<f64>, route: Option<&str>, weight: u64) {
        let now = self.clock.monotonic();
        let bucket = self.bucket(route);
        bucket.spans.record(now, weight);
        if error {
            self.errors.record(now, weight);
        }
        if duration.is_some_and(|d| d >= bucket.slow_threshold) {
            bucket.slow.record(now, weight);
        }
    }

    pub fn record_error(&self, n: u64) {
        self.errors.record(self.clock.monotonic(), n);
    }

    /// A latency measured by hand (without a span), counted as a span of that route.
    pub fn record_latency(&self, seconds: f64, route: Option<&str>) {
        self.record_span(false, Some(seconds), route, 1);
    }

    pub fn counts(&self) -> Counts {
        let now = self.clock.monotonic();
        let spans = self.routes.iter().map(|r| r.spans.total(now)).sum();
        let slow = self.routes.iter().map(|r| r.slow.total(now)).sum();
        Counts { spans, errors: self.errors.total(now), slow }
    }
}

/// How errors turn into a multiplier.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorPolicy {
    /// (count, multiplier) steps, thresholds strictly increasing: more than
    /// `count` errors in the window gives `multiplier` (the seed: 5 -> x2, 10 -> x3).
    Steps(Vec<(u64, f64)>),
    /// Error fraction over the window against a target: multiplier =
    /// clamp(fraction / target, 1, max), once at least `min_spans` were seen.
    Rate { target: f64, min_spans: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct BoostPolicy {
    pub errors: ErrorPolicy,
    /// Multiplier for a latency bucket whose slow fraction reaches `slow_ratio`.
    pub latency_boost: f64,
    pub slow_ratio: f64,
    /// Spans a latency bucket needs in the window before its ratio counts.
    pub min_spans: u64,
    /// Cap on the combined multiplier.
    pub max_boost: f64,
}

impl BoostPolicy {
    pub fn seed() -> BoostPolicy {
        BoostPolicy {
            errors: ErrorPolicy::Steps(vec![(5, 2.0), (10, 3.0)]),
            latency_boost: 2.0,
            slow_ratio: 0.1,
            min_spans: 20,
            max_boost: 10.0,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.errors {
            ErrorPolicy::Steps(steps) => {
                for (i, (count, multiplier)) in steps.iter().enumerate() {
                    let field = format!("error_steps[{i}]");
                    if !(multiplier.is_finite() && *multiplier >= 1.0) {
                        return Err(ConfigError::new(
                            &field,
                            format!("multiplier {} is below 1; expected a boost >= 1", plain(*multiplier)),
                        ));
                    }
                    if let Some((previous_count, previous_multiplier)) = i.checked_sub(1).map(|j| steps[j]) {
                        if *count <= previous_count || *multiplier < previous_multiplier {
                            return Err(ConfigError::new(
                                &field,
                                format!(
                                    "({count}, {multiplier}) after ({previous_count}, {previous_multiplier}) is not monotone; expected error counts increasing and multipliers not decreasing"
                                ),
                            ));
                        }
                    }
                }
            }
            ErrorPolicy::Rate { target, .. } => {
                if !(target.is_finite() && *target > 0.0 && *target <= 1.0) {
                    return Err(ConfigError::new(
                        "error_rate_target",
                        format!("{} is out of range; expected a fraction in (0, 1]", plain(*target)),
                    ));
                }
            }
        }
        if !(self.latency_boost.is_finite() && self.latency_boost >= 1.0) {
            return Err(ConfigError::new("latency_boost", format!("{} is below 1; expected a boost >= 1", plain(self.latency_boost))));
        }
        if !(self.slow_ratio > 0.0 && self.slow_ratio <= 1.0) {
            return Err(ConfigError::new(
                "slow_ratio",
                format!("{} is out of range; expected a fraction in (0, 1]", plain(self.slow_ratio)),
            ));
        }
        if !(self.max_boost.is_finite() && self.max_boost >= 1.0) {
            return Err(ConfigError::new("max_boost", format!("{} is below 1; expected a cap >= 1", plain(self.max_boost))));
        }
        Ok(())
    }

    /// The error multiplier for window counts.
    pub fn error_multiplier(&self, errors: u64, spans: u64) -> f64 {
        let raw = match &self.errors {
            ErrorPolicy::Steps(steps) => steps.iter().rev().find(|(count, _)| errors > *count).map_or(1.0, |(_, m)| *m),
            ErrorPolicy::Rate { target, min_spans } => {
                if spans < (*min_spans).max(1) {
                    1.0
                } else {
                    quantise((errors as f64 / spans as f64) / target)
                }
            }
        };
        raw.clamp(1.0, self.max_boost)
    }

    /// Every multiplier the policy can produce (for precomputing thresholds).
    pub fn possible_multipliers(&self) -> Vec<f64> {
        let error_values: Vec<f64> = match &self.errors {
            ErrorPolicy::Steps(steps) => std::iter::once(1.0).chain(steps.iter().map(|(_, m)| *m)).collect(),
            ErrorPolicy::Rate { .. } => {
                let top = (self.max_boost * QUANTUM).ceil() as usize;
                (QUANTUM as usize..=top).map(|q| q as f64 / QUANTUM).collect()
            }
        };
        // Mirror `Booster::multiplier`: both factors pass through the f32 cache.
        let via_cache = |x: f64| f64::from(x as f32);
        let mut all: Vec<f64> = error_values
            .iter()
            .flat_map(|e| [1.0, self.latency_boost].map(|l| (via_cache(e.clamp(1.0, self.max_boost)) * via_cache(l)).min(self.max_boost)))
            .collect();
        all.sort_by(f64::total_cmp);
        all.dedup();
        all
    }
}

/// A kept span's adjusted count as a whole number of spans, unbiased: the
/// fraction rounds up with probability equal to itself, drawn from `bits`
/// (random bits independent of the sampling decision, such as the span id).
pub fn whole_weight(adjusted_count: f64, bits: u64) -> u64 {
    if !(adjusted_count.is_finite() && adjusted_count >= 1.0) {
        return 1;
    }
    let whole = adjusted_count.floor();
    let fraction = adjusted_count - whole;
    let draw = (bits >> 11) as f64 / (1u64 << 53) as f64;
    whole as u64 + u64::from(draw < fraction)
}

/// `error_steps` as users write them: a list of `[count, multiplier]` pairs,
/// counts whole numbers >= 0 (order and monotony are checked by
/// [`BoostPolicy::validate`]).
pub fn steps_from_data(path: &Path, value: &Data) -> Result<Vec<(u64, f64)>, ConfigError> {
    let mut steps = Vec::new();
    for (i, step) in data::list(path, value)?.iter().enumerate() {
        let step_path = path.index(i);
        match step {
            Data::List(pair) if pair.len() == 2 => {
                let count = match &pair[0] {
                    Data::Int(c) if *c >= 0 => *c as u64,
                    Data::Int(c) => return Err(step_path.error(format!("{c} is negative; expected a count >= 0"))),
                    other => return Err(step_path.error(format!("{} is not an error count; expected a whole number >= 0", other.show()))),
                };
                let multiplier = data::number(&step_path, &pair[1])
                    .map_err(|_| step_path.error(format!("{} is not a multiplier; expected a number >= 1", pair[1].show())))?;
                steps.push((count, multiplier));
            }
            other => return Err(step_path.error(format!("expected a (count, multiplier) pair, got {}", other.show()))),
        }
    }
    Ok(steps)
}

/// Rate-mode multipliers move in steps of 1/QUANTUM, so kept spans share few thresholds.
const QUANTUM: f64 = 8.0;

fn quantise(multiplier: f64) -> f64 {
    (multiplier * QUANTUM).floor() / QUANTUM
}

/// Signals plus policy: the multiplier for a span, cached per window tick.
pub struct Booster {
    pub signals: Arc<Signals>,
    pub policy: BoostPolicy,
    /// (tick << 32) | f32 bits of the error multiplier.
    error_cache: AtomicU64,
}

fn cached(cache: &AtomicU64, tick: u64) -> Option<f64> {
    let word = cache.load(Ordering::Acquire);
    (word >> 32 == tick & 0xffff_ffff).then(|| f64::from(f32::from_bits(word as u32)))
}

fn store(cache: &AtomicU64, tick: u64, value: f64) {
    cache.store(((tick & 0xffff_ffff) << 32) | u64::from((value as f32).to_bits()), Ordering::Release);
}

impl Booster {
    pub fn new(signals: Arc<Signals>, policy: BoostPolicy) -> Result<Booster, ConfigError> {
        policy.validate()?;
        Ok(Booster { signals, policy, error_cache: AtomicU64::new(0) })
    }

    /// The multiplier for a span on `route` at `now`: error boost times the
    /// route's latency boost, capped. Windows are summed at most once per tick.
    #[inline]
    pub fn multiplier(&self, route: Option<&str>, now: f64) -> f64 {
        let errors = &self.signals.errors;
        let tick = errors.tick(now);
        let error_multiplier = match cached(&self.error_cache, tick) {
            Some(value) => value,
            None => {
                let spans: u64 = self.signals.routes.iter().map(|r| r.spans.total(now)).sum();
                let value = self.policy.error_multiplier(errors.total(now), spans);
                store(&self.error_cache, tick, value);
                value
            }
        };
        let bucket = self.signals.bucket(route);
        let latency_multiplier = match cached(&bucket.cache, tick) {
            Some(value) => value,
            None => {
                let spans = bucket.spans.total(now);
                let slow = bucket.slow.total(now);
                let value = if spans >= self.policy.min_spans.max(1) && slow as f64 >= self.policy.slow_ratio * spans as f64 {
                    self.policy.latency_boost
                } else {
                    1.0
                };
                store(&bucket.cache, tick, value);
                value
            }
        };
        (error_multiplier * latency_multiplier).min(self.policy.max_boost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use std::sync::atomic::AtomicU64 as Cell;

    const T0: f64 = 1_767_225_600.0;

    /// A clock tests can move.
    struct TestClock(Cell);
    impl TestClock {
        fn at(t: f64) -> Arc<TestClock> {
            Arc::new(TestClock(Cell::new(t.to_bits())))
        }
        fn set(&self, t: f64) {
            self.0.store(t.to_bits(), Ordering::SeqCst);
        }
    }
    impl Clock for TestClock {
        fn now(&self) -> f64 {
            f64::from_bits(self.0.load(Ordering::SeqCst))
        }
        fn monotonic(&self) -> f64 {
            self.now()
        }
    }

    fn booster(clock: Arc<TestClock>, policy: BoostPolicy) -> Booster {
        let signals = Signals::new(clock, 300.0, 1.0, 2.0, &[("/api/search".into(), 0.5)]).unwrap();
        Booster::new(Arc::new(signals), policy).unwrap()
    }

    #[test]
    fn seed_steps_raise_within_a_second_and_recover_after_the_window() {
        let clock = TestClock::at(T0);
        let b = booster(clock.clone(), BoostPolicy::seed());
        assert_eq!(b.multiplier(None, T0), 1.0);
        b.signals.record_error(6);
        clock.set(T0 + 1.0);
        assert_eq!(b.multiplier(None, T0 + 1.0), 2.0);
        b.signals.record_error(5);
        clock.set(T0 + 2.0);
        assert_eq!(b.multiplier(None, T0 + 2.0), 3.0);
        // Errors stop; after five minutes the boost is gone.
        clock.set(T0 + 300.0);
        assert_eq!(b.multiplier(None, T0 + 300.0), 1.0);
    }

    #[test]
    fn rate_mode_is_the_same_at_any_traffic() {
        for per_second in [10u64, 10_000] {
            let clock = TestClock::at(T0);
            let policy = BoostPolicy { errors: ErrorPolicy::Rate { target: 0.01, min_spans: 20 }, ..BoostPolicy::seed() };
            let b = booster(clock.clone(), policy);
            let mut sent = 0u64;
            for second in 0..60 {
                clock.set(T0 + second as f64);
                for _ in 0..per_second {
                    b.signals.record_span(sent.is_multiple_of(20), Some(0.01), None, 1); // 5% errors
                    sent += 1;
                }
            }
            assert_eq!(b.multiplier(None, T0 + 60.0), 5.0, "at {per_second}/s");
        }
    }

    #[test]
    fn slow_routes_get_the_latency_boost() {
        let clock = TestClock::at(T0);
        let b = booster(clock.clone(), BoostPolicy::seed());
        for i in 0..100 {
            b.signals.record_span(false, Some(if i % 4 == 0 { 0.6 } else { 0.1 }), Some("/api/search"), 1);
            b.signals.record_span(false, Some(1.0), Some("/api/other"), 1);
        }
        clock.set(T0 + 1.0);
        assert_eq!(b.multiplier(Some("/api/search"), T0 + 1.0), 2.0);
        assert_eq!(b.multiplier(Some("/api/other"), T0 + 1.0), 1.0, "1 s is under the default 2 s threshold");
        let counts = b.signals.counts();
        assert_eq!(counts, Counts { spans: 200, errors: 0, slow: 25 });
    }

    #[test]
    fn sampled_spans_stand_for_their_adjusted_count() {
        let clock = TestClock::at(T0);
        let b = booster(clock.clone(), BoostPolicy::seed());
        b.signals.record_span(true, Some(0.1), None, 10); // one kept error at 10%
        clock.set(T0 + 1.0);
        assert_eq!(b.signals.counts(), Counts { spans: 10, errors: 10, slow: 0 });
        assert_eq!(b.multiplier(None, T0 + 1.0), 2.0);
    }

    #[test]
    fn whole_weights_are_unbiased() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for adjusted in [1.0, 1.0 / 0.7, 1.0 / 0.6, 10.0, 3.3] {
            let n = 200_000;
            let mut total = 0u64;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                total += whole_weight(adjusted, x);
            }
            let mean = total as f64 / n as f64;
            assert!((mean - adjusted).abs() / adjusted < 0.005, "{adjusted}: {mean}");
        }
        assert_eq!(whole_weight(f64::NAN, 1), 1);
    }

    #[test]
    fn policies_are_validated() {
        let bad = |policy: BoostPolicy| policy.validate().unwrap_err().to_string();
        let steps = |s: Vec<(u64, f64)>| BoostPolicy { errors: ErrorPolicy::Steps(s), ..BoostPolicy::seed() };
        assert!(bad(steps(vec![(10, 2.0), (5, 3.0)])).starts_with("error_steps[1]: (5, 3) after (10, 2) is not monotone"));
        assert!(bad(steps(vec![(5, 3.0), (10, 2.0)])).contains("not monotone"));
        assert!(bad(steps(vec![(5, 0.5)])).starts_with("error_steps[0]: multiplier 0.5 is below 1"));
        assert!(bad(BoostPolicy { errors: ErrorPolicy::Rate { target: 0.0, min_spans: 1 }, ..BoostPolicy::seed() })
            .starts_with("error_rate_target"));
        assert!(bad(BoostPolicy { latency_boost: 0.5, ..BoostPolicy::seed() }).starts_with("latency_boost"));
        assert!(Signals::new(TestClock::at(T0), 0.5, 1.0, 1.0, &[]).is_err());
        assert!(Signals::new(TestClock::at(T0), 300.0, 1.0, -1.0, &[]).unwrap_err().to_string().starts_with("slow_threshold: -1"));
    }

    #[test]
    fn possible_multipliers_cover_what_multiplier_returns() {
        let policy = BoostPolicy { errors: ErrorPolicy::Rate { target: 0.03, min_spans: 1 }, ..BoostPolicy::seed() };
        let possible = policy.possible_multipliers();
        for errors in 0..100u64 {
            let e = policy.error_multiplier(errors, 100);
            for l in [1.0, policy.latency_boost] {
                assert!(possible.contains(&(e * l).min(policy.max_boost)), "{errors}");
            }
        }
    }
}
