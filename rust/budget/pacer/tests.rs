use super::*;
use crate::budget::period::{Calendar, PeriodKind};
use std::sync::Arc;

const JAN_2026: f64 = 1_767_225_600.0; // 2026-01-01T00:00:00Z
const HOUR: f64 = 3600.0;

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Demand weight of an hour: a daily wave, peak mid-afternoon, trough at night.
fn wave(hour: usize) -> f64 {
    1.0 + 0.8 * ((hour % 24) as f64 - 9.0).mul_add(std::f64::consts::TAU / 24.0, 0.0).sin()
}

struct Outcome {
    offered: u64,
    used: u64,
    blind_hours: usize,
    hours: usize,
}

/// Simulate a month of root spans (`spans_per_trace` spans each) at `demand`
/// times the budget, optionally multiplying one day's traffic by `spike`.
fn simulate(budget: u64, demand: f64, spans_per_trace: u64, spike: Option<(usize, f64)>) -> Outcome {
    let calendar = Calendar::new(PeriodKind::Month, "UTC").unwrap();
    let pacer = Pacer::new(calendar, budget, true, JAN_2026).unwrap();
    let hours = 31 * 24;
    let weights: Vec<f64> =
        (0..hours).map(|h| wave(h) * spike.filter(|(day, _)| h / 24 == *day).map_or(1.0, |(_, factor)| factor)).collect();
    let baseline: f64 = (0..hours).map(wave).sum();
    let traces_total = demand * budget as f64 / spans_per_trace as f64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut blind_hours = 0;
    let mut offered = 0;
    for (hour, weight) in weights.iter().enumerate() {
        let traces = (traces_total * weight / baseline).round() as u64;
        offered += traces * spans_per_trace;
        let mut kept = 0;
        for i in 0..traces {
            let now = JAN_2026 + hour as f64 * HOUR + i as f64 * HOUR / traces as f64;
            let paced = pacer.pace(now, 1.0);
            let pace = if pacer.visibility_due(now) { 1.0 } else { paced };
            if rng.unit() < pace && pacer.admit(true, false, Some(now)) {
                kept += 1;
                for _ in 1..spans_per_trace {
                    pacer.admit(false, false, None);
                }
            }
        }
        if kept == 0 {
            blind_hours += 1;
        }
    }
    Outcome { offered, used: pacer.status(JAN_2026 + hours as f64 * HOUR - 1.0).used, blind_hours, hours }
}

#[test]
fn under_demand_keeps_everything() {
    let budget = 100_000;
    let outcome = simulate(budget, 0.5, 1, None);
    assert_eq!(outcome.used, outcome.offered);
}

#[test]
fn every_demand_level_uses_95_percent_never_overshoots_and_never_goes_blind() {
    let budget = 100_000;
    for demand in [2.0, 10.0, 100.0] {
        let outcome = simulate(budget, demand, 1, None);
        let used = outcome.used as f64 / budget as f64;
        assert!((0.95..=1.0).contains(&used), "demand {demand}x used {used}");
        assert_eq!(outcome.blind_hours, 0, "demand {demand}x of {} hours", outcome.hours);
    }
}

#[test]
fn child_spans_count_against_the_budget() {
    let budget = 60_000;
    let outcome = simulate(budget, 10.0, 3, None);
    let used = outcome.used as f64 / budget as f64;
    assert!((0.95..=1.0).contains(&used), "used {used}");
    assert_eq!(outcome.blind_hours, 0);
}

#[test]
fn a_spike_day_does_not_exhaust_the_budget() {
    let budget = 100_000;
    let outcome = simulate(budget, 10.0, 1, Some((15, 20.0)));
    let used = outcome.used as f64 / budget as f64;
    assert!((0.95..=1.0).contains(&used), "used {used}");
    assert_eq!(outcome.blind_hours, 0);
}

#[test]
fn threads_never_overshoot() {
    let calendar = Calendar::new(PeriodKind::Day, "UTC").unwrap();
    let pacer = Arc::new(Pacer::new(calendar, 10_000, true, JAN_2026).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let pacer = Arc::clone(&pacer);
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    pacer.admit(true, false, None);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let status = pacer.status(JAN_2026);
    // New traces stop at the budget less its reserve (1/200) for children of kept traces.
    assert_eq!(status.used, 9_950);
    assert_eq!(status.refused, 800_000 - 9_950);
    assert!(pacer.admit(false, false, None), "a child of a kept trace still fits");
}

#[test]
fn forced_keeps_pass_the_cap_only_when_allowed() {
    let calendar = || Calendar::new(PeriodKind::Day, "UTC").unwrap();
    let uncapped = Pacer::new(calendar(), 1, false, JAN_2026).unwrap();
    assert!(uncapped.admit(true, false, None));
    assert!(!uncapped.admit(true, false, None));
    assert!(uncapped.admit(true, true, None));
    let capped = Pacer::new(calendar(), 1, true, JAN_2026).unwrap();
    assert!(capped.admit(true, true, None));
    assert!(!capped.admit(true, true, None));
}

#[test]
fn clock_jumps_neither_reset_spending_nor_overshoot() {
    let calendar = Calendar::new(PeriodKind::Month, "UTC").unwrap();
    let budget = 1_000;
    let pacer = Pacer::new(calendar, budget, true, JAN_2026 + 10.0 * 86400.0).unwrap();
    let mut kept = 0;
    for step in 0..200_000u64 {
        // Back and forth inside January, and once far into the past.
        let now = match step % 4 {
            0 => JAN_2026 + 10.0 * 86400.0 + step as f64,
            1 => JAN_2026 + 2.0 * 86400.0,
            2 => JAN_2026 - 400.0 * 86400.0,
            _ => JAN_2026 + 30.0 * 86400.0,
        };
        if pacer.pace(now, 1.0) > 0.0 && pacer.admit(true, false, Some(now)) {
            kept += 1;
        }
    }
    let status = pacer.status(JAN_2026 + 20.0 * 86400.0);
    assert_eq!(status.period.start, JAN_2026);
    assert_eq!(status.used, kept);
    assert!(status.used <= budget);
    // Jumping into February rolls over, and spending starts again.
    let february = JAN_2026 + 31.0 * 86400.0 + 5.0;
    pacer.pace(february, 1.0);
    assert_eq!(pacer.status(february).used, 0);
    assert!(pacer.admit(true, false, Some(february)));
}

#[test]
fn restore_applies_only_to_the_same_period() {
    let calendar = Calendar::new(PeriodKind::Month, "UTC").unwrap();
    let pacer = Pacer::new(calendar, 1_000, true, JAN_2026 + 86400.0).unwrap();
    assert!(!pacer.restore(JAN_2026 - 31.0 * 86400.0, 500, JAN_2026 + 86400.0));
    assert!(pacer.restore(JAN_2026, 400, JAN_2026 + 86400.0));
    assert_eq!(pacer.status(JAN_2026 + 86400.0).used, 400);
}

#[test]
fn a_zero_budget_is_rejected() {
    let calendar = Calendar::new(PeriodKind::Month, "UTC").unwrap();
    assert!(Pacer::new(calendar, 0, true, JAN_2026).is_err());
}
