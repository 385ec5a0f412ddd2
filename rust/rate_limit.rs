//! A lock-free token bucket: at most `rate` traces per second on average, with
//! bursts of up to `burst`. The whole state is one atomic word (time in
//! milliseconds, tokens in 1/16ths), updated by compare-and-swap, kept in a
//! store so that every process naming the same store shares one limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cells::AtomicF64;
use crate::config::ConfigError;
use crate::store::{words_of, Origin, Plain, Shared, Store};
use crate::words::plain;

mod fleet;
pub use fleet::BucketFleet;

const TOKEN_BITS: u32 = 24;
const TOKEN_SCALE: f64 = 16.0;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;
/// The largest burst a bucket holds (its tokens are 24 bits of sixteenths).
pub const MAX_BURST: f64 = TOKEN_MASK as f64 / TOKEN_SCALE;
/// The fastest rate a bucket counts, in traces per second: a billion a
/// second is more than any process decides, so it takes every trace.
pub const MAX_RATE: f64 = 1e9;

/// The bucket's shared words.
#[derive(Debug, Default)]
#[repr(C)]
struct BucketState {
    /// Monotonic seconds that bucket time counts from.
    origin: AtomicF64,
    state: AtomicU64,
    refused: AtomicU64,
    /// Demand this window (the probabilities of the decisions reaching the
    /// bucket, in fixed point), when the window began, the smoothed demand
    /// rate, and the probability factor that brings it down to the rate.
    demand: AtomicU64,
    window_start: AtomicF64,
    demand_rate: AtomicF64,
    factor: AtomicF64,
}

/// Demand sums are kept in fixed point (probabilities times 2^24).
const FIXED: f64 = (1u64 << 24) as f64;
/// Seconds between re-estimates of the demand rate.
const WINDOW: f64 = 1.0;

// SAFETY: repr(C), 8-byte atomics only, all-zero is valid.
unsafe impl Plain for BucketState {}

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    /// The shared origin, read once (it never changes once made).
    origin: f64,
    s: Shared<BucketState>,
    shared: bool,
    store: Arc<Store>,
    /// In a Redis fleet: tokens leased from the fleet's bucket.
    fleet: Option<BucketFleet>,
}

impl TokenBucket {
    /// A bucket of this process alone, full at `now` (monotonic seconds).
    pub fn new(rate: f64, burst: f64, now: f64) -> Result<TokenBucket, ConfigError> {
        TokenBucket::in_store(&Arc::new(Store::local()), rate, burst, now)
    }

    /// The bucket in `store`: made full when this process is the first to
    /// name it, else the one other processes are already taking from.
    pub fn in_store(store: &Arc<Store>, rate: f64, burst: f64, now: f64) -> Result<TokenBucket, ConfigError> {
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            return Err(ConfigError::new(
                "rate_limit.traces_per_second",
                format!("{} is out of range; expected a positive rate of at most {MAX_RATE:e} traces per second", plain(rate)),
            ));
        }
        if !(burst.is_finite() && (1.0..=MAX_BURST).contains(&burst)) {
            return Err(ConfigError::new(
                "rate_limit.burst",
                format!("{} is out of range; expected a number of traces from 1 to {MAX_BURST}", plain(burst)),
            ));
        }
        let settings = format!("traces_per_second={rate}, burst={burst}");
        let placement = store.place("rate_limit", &settings, words_of::<BucketState>())?;
        let fleet = store.fleet().map(|fleet| BucketFleet::new(fleet, settings));
        let s: Shared<BucketState> = placement.region.view();
        if placement.origin != Origin::Attached {
            // New, or made before a reboot (its times mean nothing now): full.
            s.origin.set(if now.is_finite() { now } else { 0.0 });
            s.state.store((burst * TOKEN_SCALE) as u64, Ordering::Release);
        }
        let shared = placement.region.is_mapped();
        placement.ready()?;
        Ok(TokenBucket { rate, burst, origin: s.origin.get(), s, shared, store: store.clone(), fleet })
    }

    /// A bucket of this process for a rate another system set (a remote
    /// strategy): a second's traces of burst (at least one), any rate taken
    /// as it is up to `MAX_RATE` and as `MAX_RATE` beyond (every trace kept,
    /// never none); None for a rate of 0 or less.
    pub fn per_second(rate: f64, now: f64) -> Option<TokenBucket> {
        if rate.is_nan() || rate <= 0.0 {
            return None;
        }
        let rate = rate.min(MAX_RATE);
        TokenBucket::new(rate, rate.clamp(1.0, MAX_BURST), now).ok()
    }

    /// Whether the bucket is shared with other processes (a file store or a fleet).
    pub fn is_shared(&self) -> bool {
        (self.shared && !self.store.is_detached()) || self.fleet.is_some()
    }

    /// The store its state was placed in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> f64 {
        self.burst
    }

    pub fn refused(&self) -> u64 {
        self.s.refused.load(Ordering::Relaxed)
    }

    /// The probability factor for a decision with probability `inner` at
    /// `now` (monotonic seconds): the rate over the demand the bucket sees,
    /// at most 1, so keeps come at the rate as a consistent probability that
    /// their `th` records, and the bucket itself is the cap for bursts. A
    /// fleet's bucket leases its tokens instead (factor 1).
    #[inline]
    pub fn factor(&self, now: f64, inner: f64) -> f64 {
        if self.fleet.is_some() {
            return 1.0;
        }
        let s = &self.s;
        s.demand.fetch_add((inner.clamp(0.0, 1.0) * FIXED) as u64, Ordering::Relaxed);
        let start = s.window_start.get();
        if start == 0.0 {
            // The first decision opens the first window.
            let _ = s.window_start.compare_exchange(0.0, now.max(f64::MIN_POSITIVE));
            return 1.0;
        }
        // The first estimate after a tenth of a window: a cold start learns its demand at once.
        let window = if s.demand_rate.get() > 0.0 { WINDOW } else { WINDOW / 10.0 };
        if now - start >= window && s.window_start.compare_exchange(start, now).is_ok() {
            let demand = s.demand.swap(0, Ordering::AcqRel) as f64 / FIXED;
            let rate = demand / (now - start).clamp(window, 60.0);
            let previous = s.demand_rate.get();
            let smoothed = if previous > 0.0 { previous + 0.5 * (rate - previous) } else { rate };
            s.demand_rate.set(smoothed);
            s.factor.set(if smoothed <= self.rate { 1.0 } else { self.rate / smoothed });
        }
        let factor = s.factor.get();
        if factor > 0.0 && factor <= 1.0 {
            factor
        } else {
            1.0 // not estimated yet (or state started afresh): the bucket caps
        }
    }

    /// Take one token at `now`; false (and counted) when the bucket is empty.
    pub fn try_take(&self, now: f64) -> bool {
        self.take(now, || true, true)
    }

    /// Take one token at `now` if there is one and `allowed()` says so (asked
    /// at most once, and for a local bucket only when it has a token to give).
    /// Refusals are not counted: for a bucket whose owner keeps its own counts.
    #[inline]
    pub fn try_take_if(&self, now: f64, allowed: impl FnOnce() -> bool) -> bool {
        self.take(now, allowed, false)
    }

    #[inline(always)]
    fn take(&self, now: f64, allowed: impl FnOnce() -> bool, count_refusals: bool) -> bool {
        let refuse = || {
            if count_refusals {
                self.s.refused.fetch_add(1, Ordering::Relaxed);
            }
            false
        };
        if let Some(fleet) = &self.fleet {
            fleet.wanted.fetch_add(1, Ordering::Relaxed);
            if allowed() && fleet.lease.take(now) {
                return true;
            }
            return refuse();
        }
        let mut allowed = Some(allowed);
        let millis = ((now - self.origin) * 1000.0).clamp(0.0, ((1u64 << (64 - TOKEN_BITS)) - 1) as f64) as u64;
        let mut current = self.s.state.load(Ordering::Acquire);
        loop {
            let (then, tokens) = (current >> TOKEN_BITS, current & TOKEN_MASK);
            if millis <= then && tokens < TOKEN_SCALE as u64 {
                // Empty, and no millisecond has passed since its stamp: the
                // common refusal under load, answered without the refill's arithmetic.
                return refuse();
            }
            // Units earned between the stamps, counted on the absolute grid
            // (floor(t * rate) - floor(then * rate)): exact over any number of
            // calls, as no call's rounding is carried into the next. A clock
            // that steps back adds nothing (and keeps the later stamp).
            let stamp = then.max(millis);
            let per_ms = self.rate * TOKEN_SCALE / 1000.0;
            let gained = ((stamp as f64 * per_ms).floor() - (then as f64 * per_ms).floor()).max(0.0);
            let full = self.burst * TOKEN_SCALE;
            let refilled = if tokens as f64 + gained >= full { full as u64 } else { tokens + gained as u64 };
            let (next, taken) = if refilled >= TOKEN_SCALE as u64 {
                ((stamp << TOKEN_BITS) | (refilled - TOKEN_SCALE as u64), true)
            } else {
                ((stamp << TOKEN_BITS) | refilled, false)
            };
            if taken && !allowed.take().is_none_or(|allowed| allowed()) {
                return false;
            }
            if next == current {
                // Empty, and nothing to record (the same millisecond): no write to contend on.
                return refuse();
            }
            match self.s.state.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return taken || refuse(),
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_conditional_take_asks_only_when_a_token_is_there_and_counts_no_refusal() {
        let bucket = TokenBucket::per_second(1.0, 0.0).unwrap();
        let mut asked = 0;
        assert!(!bucket.try_take_if(0.0, || {
            asked += 1;
            false
        }));
        assert_eq!(asked, 1, "a token was there");
        assert!(bucket.try_take_if(0.0, || true), "a refused condition leaves the token");
        assert!(!bucket.try_take_if(0.5, || unreachable!("no token to give")));
        assert!(bucket.try_take_if(1.0, || true));
        assert_eq!(bucket.refused(), 0);
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let bucket = TokenBucket::new(10.0, 5.0, 1000.0).unwrap();
        let taken = (0..20).filter(|_| bucket.try_take(1000.0)).count();
        assert_eq!(taken, 5);
        let taken = (0..20).filter(|_| bucket.try_take(1001.0)).count();
        assert_eq!(taken, 5, "one second refills 10, capped at the burst of 5");
        let over_ten_seconds: usize = (0..1000).filter(|i| bucket.try_take(1001.0 + *i as f64 / 100.0)).count();
        // Whole milliseconds of bookkeeping leave the refill within a few percent.
        assert!((98..=106).contains(&over_ten_seconds), "{over_ten_seconds}");
        assert_eq!(bucket.refused(), 15 + 15 + (1000 - over_ten_seconds as u64));
    }

    #[test]
    fn threads_never_take_more_than_the_bucket_holds() {
        let bucket = Arc::new(TokenBucket::new(1.0, 1000.0, 0.0).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let bucket = Arc::clone(&bucket);
                std::thread::spawn(move || (0..10_000).filter(|_| bucket.try_take(0.0)).count())
            })
            .collect();
        let taken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(taken, 1000);
    }

    #[test]
    fn calls_within_a_millisecond_earn_nothing_extra() {
        // 200/s is 3.2 units a millisecond: rounding must not mint tokens per call.
        let bucket = TokenBucket::new(200.0, 1.0, 0.0).unwrap();
        let mut taken = 0;
        for ms in 0..2_000u32 {
            for _ in 0..50 {
                taken += bucket.try_take(f64::from(ms) / 1000.0 + 0.0004) as u32;
            }
        }
        assert!((398..=401).contains(&taken), "{taken} tokens in 2 s at 200/s");
    }

    #[test]
    fn clock_steps_back_are_harmless() {
        let bucket = TokenBucket::new(1.0, 1.0, 100.0).unwrap();
        assert!(bucket.try_take(105.0));
        assert!(!bucket.try_take(50.0));
        assert!(!bucket.try_take(105.5));
        assert!(bucket.try_take(106.0));
    }

    #[test]
    fn any_rate_a_server_sends_keeps_and_none_inverts() {
        for rate in [1_048_575.0, 1_048_576.0, 2e6, 1e12, 1e308, f64::INFINITY] {
            let bucket = TokenBucket::per_second(rate, 0.0).unwrap();
            assert_eq!((0..1000).filter(|i| bucket.try_take(*i as f64 * 1e-6)).count(), 1000, "{rate}/s");
        }
        let slow = TokenBucket::per_second(0.5, 0.0).unwrap();
        assert_eq!((0..10).filter(|_| slow.try_take(0.0)).count(), 1, "at least one trace of burst");
        assert!(TokenBucket::per_second(0.0, 0.0).is_none() && TokenBucket::per_second(f64::NAN, 0.0).is_none());
    }

    #[test]
    fn above_its_rate_the_bucket_becomes_a_probability_and_keeps_the_rate() {
        // 1,000 decisions a second against 100/s: after the first window the factor
        // is 0.1, so keeps come as a consistent sample and the bucket rarely refuses.
        let bucket = TokenBucket::new(100.0, 100.0, 0.0).unwrap();
        let mut kept = 0u32;
        let mut refused_after_draw = 0u32;
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..10_000u32 {
            let now = f64::from(i) / 1000.0;
            let p = bucket.factor(now, 1.0);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if ((rng >> 11) as f64 / (1u64 << 53) as f64) < p {
                if bucket.try_take(now) {
                    kept += 1;
                } else {
                    refused_after_draw += 1;
                }
            }
        }
        assert!((0.1 - bucket.factor(10.0, 0.0)).abs() < 0.02, "{}", bucket.factor(10.0, 0.0));
        assert!((950..=1150).contains(&kept), "{kept} kept in 10 s at 100/s");
        assert!(refused_after_draw < 50, "{refused_after_draw} refused after their draw");
    }

    #[test]
    fn bad_settings() {
        assert!(TokenBucket::new(0.0, 1.0, 0.0).is_err());
        assert!(TokenBucket::new(1.0, 0.5, 0.0).unwrap_err().to_string().starts_with("rate_limit.burst: 0.5 is out of range"));
    }
}
