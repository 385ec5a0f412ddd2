//! The pacing state machine, all atomics. Each decision reads the current
//! pacing multiplier; the first decision after an interval ends re-estimates
//! full demand from that interval and sets the next multiplier to
//! allowance / demand, where allowance = remaining budget / remaining time.

use std::sync::atomic::{AtomicU64, Ordering::*};

use super::period::{Bounds, Calendar};
use crate::config::ConfigError;

/// Demand sums are kept in fixed point (probabilities times 2^24).
const FIXED: f64 = (1u64 << 24) as f64;
/// Expected decisions an interval wants before it re-estimates early.
const ENOUGH_DEMAND: f64 = 64.0;
/// Smoothing of the demand and spans-per-trace estimates (weight of the newest interval).
const SMOOTHING: f64 = 0.5;

/// An f64 in an atomic.
#[derive(Debug, Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn new(value: f64) -> Self {
        AtomicF64(AtomicU64::new(value.to_bits()))
    }
    #[inline]
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Acquire))
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Release);
    }
}

#[derive(Debug)]
pub struct Pacer {
    calendar: Calendar,
    budget: u64,
    /// Whether forced keeps (keep rules) are refused once the budget is spent.
    cap_forced: bool,
    period_start: AtomicF64,
    period_end: AtomicF64,
    used: AtomicU64,
    /// Spans refused because the budget was spent.
    refused: AtomicU64,
    /// Re-estimation: at most once per `min_interval`, and at least once per `max_interval`.
    min_interval: f64,
    max_interval: f64,
    interval_start: AtomicF64,
    /// A recompute is in progress (only one thread does it).
    recomputing: AtomicU64,
    demand: AtomicU64,
    kept_roots: AtomicU64,
    used_at_interval_start: AtomicU64,
    pace: AtomicF64,
    demand_rate: AtomicF64,
    spans_per_trace: AtomicF64,
    spend_rate: AtomicF64,
    /// When an independent decision last kept a span; after `visibility_gap`
    /// without one, the next decision is made at a pace of 1, so no stretch of
    /// the period goes unseen while budget remains.
    last_kept: AtomicF64,
    visibility_gap: f64,
    /// Keep-rule spans this interval: spending the pacer does not control,
    /// so it is taken off the allowance.
    forced: AtomicU64,
    forced_rate: AtomicF64,
    /// Budget held back from new traces for the children of kept ones.
    reserve: u64,
}

/// A consistent view for `budget_status()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    pub budget: u64,
    pub used: u64,
    pub refused: u64,
    pub pace: f64,
    pub period: Bounds,
    /// Spans per second recently kept.
    pub spend_rate: f64,
    /// Estimated spans per second at a pace of 1.
    pub demand_rate: f64,
    pub projected: f64,
}

impl Pacer {
    pub fn new(calendar: Calendar, budget: u64, cap_forced: bool, now: f64) -> Result<Pacer, ConfigError> {
        if budget == 0 {
            return Err(ConfigError::new("budget", "0 spans; expected a budget of at least one span"));
        }
        let period = calendar.bounds(now).ok_or_else(|| ConfigError::new("clock", format!("{now} is not a usable Unix time")))?;
        let length = period.length();
        Ok(Pacer {
            calendar,
            budget,
            cap_forced,
            period_start: AtomicF64::new(period.start),
            period_end: AtomicF64::new(period.end),
            used: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            min_interval: (length / 10_000.0).clamp(0.5, 60.0),
            max_interval: (length / 200.0).max(1.0),
            interval_start: AtomicF64::new(now),
            recomputing: AtomicU64::new(0),
            demand: AtomicU64::new(0),
            kept_roots: AtomicU64::new(0),
            used_at_interval_start: AtomicU64::new(0),
            pace: AtomicF64::new(1.0),
            demand_rate: AtomicF64::new(0.0),
            spans_per_trace: AtomicF64::new(1.0),
            spend_rate: AtomicF64::new(0.0),
            last_kept: AtomicF64::new(now),
            visibility_gap: (length / 48.0).min(1800.0),
            forced: AtomicU64::new(0),
            forced_rate: AtomicF64::new(0.0),
            reserve: (budget / 200).min(budget.saturating_sub(1)),
        })
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Whether keep-rule spans are refused once the budget is spent.
    pub fn caps_forced_keeps(&self) -> bool {
        self.cap_forced
    }

    /// The pacing multiplier in force, read without counting demand.
    pub fn current_pace(&self) -> f64 {
        self.pace.get()
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    pub fn period(&self) -> Bounds {
        Bounds { start: self.period_start.get(), end: self.period_end.get() }
    }

    /// The pacing multiplier for an independent decision at `now`, which the
    /// caller multiplies into the probability `inner` it had so far.
    #[inline]
    pub fn pace(&self, now: f64, inner: f64) -> f64 {
        self.maybe_update(now);
        self.demand.fetch_add((inner.clamp(0.0, 1.0) * FIXED) as u64, Relaxed);
        self.pace.get()
    }

    /// True when nothing was kept for the visibility gap while budget remains:
    /// the next decision is then made at probability 1, so no stretch of the
    /// period goes unseen, whatever the inner rates (a reservoir of one).
    #[inline]
    pub fn visibility_due(&self, now: f64) -> bool {
        now - self.last_kept.get() >= self.visibility_gap && self.used.load(Relaxed) < self.budget
    }

    /// Reserve budget for a span about to be kept. `independent`: decided by
    /// the sampler (not following a parent). `forced`: a keep rule's decision.
    /// Returns false when the span must be dropped because the budget is spent.
    #[inline]
    pub fn admit(&self, independent: bool, forced: bool, now: Option<f64>) -> bool {
        let visibility = now.is_some_and(|t| t - self.last_kept.get() >= self.visibility_gap);
        // New traces stop a little short of the budget, so the children of
        // traces already kept (and keep rules) still fit: traces stay whole.
        let before = self.used.fetch_add(1, AcqRel);
        let over = if forced {
            self.cap_forced && before >= self.budget
        } else if independent && !visibility {
            before >= self.budget - self.reserve
        } else {
            before >= self.budget
        };
        if over {
            self.used.fetch_sub(1, AcqRel);
            self.refused.fetch_add(1, Relaxed);
            return false;
        }
        if forced {
            self.forced.fetch_add(1, Relaxed);
        }
        if independent {
            self.kept_roots.fetch_add(1, Relaxed);
            if let Some(now) = now.filter(|t| *t > self.last_kept.get()) {
                self.last_kept.set(now);
            }
        }
        true
    }

    /// Roll into a new period, or re-estimate, when due. One thread does the work.
    fn maybe_update(&self, now: f64) {
        if !now.is_finite() {
            return;
        }
        let rollover = now >= self.period_end.get();
        let elapsed = now - self.interval_start.get();
        let due =
            elapsed >= self.max_interval || (elapsed >= self.min_interval && self.demand.load(Relaxed) as f64 >= ENOUGH_DEMAND * FIXED);
        if !(rollover || due) {
            return;
        }
        if self.recomputing.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            return;
        }
        if now >= self.period_end.get() {
            self.roll_over(now);
        }
        let elapsed = now - self.interval_start.get();
        if elapsed > 0.0 {
            self.re_estimate(now, elapsed);
        }
        self.recomputing.store(0, Release);
    }

    /// A new period: spending starts again; the demand estimates carry over.
    /// (A clock that steps back never rolls a period back: spending is kept.)
    fn roll_over(&self, now: f64) {
        if let Some(period) = self.calendar.bounds(now) {
            self.period_start.set(period.start);
            self.period_end.set(period.end);
            self.used.store(0, Release);
            self.used_at_interval_start.store(0, Release);
            self.kept_roots.store(0, Release);
        }
    }

    fn re_estimate(&self, now: f64, elapsed: f64) {
        // A clock that jumped forward must not dilute the interval's demand.
        let span = elapsed.min(2.0 * self.max_interval);
        let demand = self.demand.swap(0, AcqRel) as f64 / FIXED;
        let kept = self.kept_roots.swap(0, AcqRel);
        let used = self.used.load(Acquire);
        let spent = used.saturating_sub(self.used_at_interval_start.swap(used, AcqRel)) as f64;
        if kept > 0 {
            let observed = (spent / kept as f64).max(1.0);
            self.spans_per_trace.set(blend(self.spans_per_trace.get(), observed));
        }
        let rate = demand * self.spans_per_trace.get() / span;
        let smoothed = if self.demand_rate.get() == 0.0 { rate } else { blend(self.demand_rate.get(), rate) };
        self.demand_rate.set(smoothed);
        self.spend_rate.set(blend(self.spend_rate.get(), spent / span));
        let forced = self.forced.swap(0, AcqRel) as f64;
        self.forced_rate.set(blend(self.forced_rate.get(), forced / span));
        let remaining = (self.budget - self.reserve).saturating_sub(used) as f64;
        let remaining_time = (self.period_end.get() - now).max(self.min_interval);
        // Keep rules spend what they spend: hold back their projected share
        // (with a margin, as their rate is an estimate) from the paced traffic.
        let allowance = (remaining / remaining_time - 1.25 * self.forced_rate.get()).max(0.0);
        let pace = if smoothed <= 0.0 { 1.0 } else { (allowance / smoothed).clamp(0.0, 1.0) };
        self.pace.set(pace);
        self.interval_start.set(now);
    }

    /// Restore spending saved by an earlier process, when it is for the period
    /// holding `now`. Returns whether it was applied.
    pub fn restore(&self, period_start: f64, used: u64, now: f64) -> bool {
        match self.calendar.bounds(now) {
            Some(period) if period.start == period_start && self.period_start.get() == period_start => {
                self.used.fetch_add(used, AcqRel);
                self.used_at_interval_start.fetch_add(used, AcqRel);
                true
            }
            _ => false,
        }
    }

    pub fn status(&self, now: f64) -> Status {
        let used = self.used.load(Acquire);
        let period = self.period();
        let spend_rate = self.spend_rate.get();
        let remaining_time = (period.end - now).max(0.0);
        Status {
            budget: self.budget,
            used,
            refused: self.refused.load(Relaxed),
            pace: self.pace.get(),
            period,
            spend_rate,
            demand_rate: self.demand_rate.get(),
            projected: used as f64 + spend_rate * remaining_time,
        }
    }
}

fn blend(previous: f64, observed: f64) -> f64 {
    previous + SMOOTHING * (observed - previous)
}

#[cfg(test)]
mod tests;
