//! How a pacer begins counting: a start with no record (it assumes the
//! calendar's share and an earlier process's burst were spent, and may spend
//! its start allowance at once), a first start, a restart from a state file or
//! a reboot's record, and a reload that carries the old pacer's count over.

use std::sync::atomic::Ordering::*;

use super::{Estimates, Pacer, Snapshot, FRESH, START_SECONDS};
use crate::budget::period::Bounds;
use crate::clock::Moment;

impl Pacer {
    /// Start pacing from zeroed state at `now` in `period`. Mid-period, with
    /// nothing known of what was spent before, assume the calendar's share was,
    /// and (unless `first`: nobody counted this budget before) that an earlier
    /// process also spent its burst: this start may then spend its start
    /// allowance at once and what the line grants after, so restarts with no
    /// record overshoot the calendar by one allowance each at most, and leave
    /// no hour blind (an allowance under a span waits for the line's next one).
    pub(super) fn initialise(&self, now: &Moment, period: Bounds, first: bool) {
        self.initialise_at(now.wall(), now.monotonic(), period, first);
    }

    /// `initialise` at wall time `wall_now` (monotonic `mono`).
    pub(super) fn initialise_at(&self, wall_now: f64, mono: f64, period: Bounds, first: bool) {
        let spans = self.budget as f64;
        let length = period.length();
        self.s.pace.set(1.0);
        self.s.spans_per_entry.set(1.0);
        self.s.interval_start.set(mono);
        let share = spans * ((wall_now - period.start) / length).clamp(0.0, 1.0);
        let unknown = wall_now - period.start >= 1.0 && !first;
        let allowance = if unknown { self.start_allowance(length) } else { 0.0 };
        let assumed = if unknown { (share + self.burst - allowance).max(share).min(spans) } else { share };
        // A known start's line begins at the whole spans it assumes, so its
        // burst is whole from the first decision (pacing 1, not 0.99).
        let line = if unknown { share } else { share.ceil().min(spans) };
        self.start_period(period, wall_now, mono, assumed.ceil() as u64, line);
        self.s.start_allowance.set(allowance);
        self.s.fresh_until.set(mono + FRESH);
        self.s.wall_seen.set(wall_now);
    }

    /// What a start with no record may spend at once: the even pace's spend
    /// over `START_SECONDS` (at most the burst).
    fn start_allowance(&self, length: f64) -> f64 {
        (self.budget as f64 * START_SECONDS / length.max(1.0)).min(self.burst).max(1e-9)
    }

    /// What the state says, as a state file would (before a reboot re-bases it).
    pub(super) fn saved_state(&self) -> Snapshot {
        let s = &self.s;
        Snapshot {
            period_start: s.period_start.get(),
            used: self.total_used(),
            estimates: (s.estimated.load(Relaxed) == 1).then(|| Estimates {
                pace: s.pace.get(),
                demand_rate: s.demand_rate.get(),
                spans_per_entry: s.spans_per_entry.get(),
                forced_rate: s.forced_rate.get(),
            }),
            saved_at: s.wall_seen.get(),
        }
    }

    /// What to save so a restarted process carries on where this one stopped.
    pub fn snapshot(&self, now: &Moment) -> Snapshot {
        Snapshot { saved_at: self.wall.wall(now.monotonic()), ..self.saved_state() }
    }

    /// Carry on from a snapshot of an earlier process when it is for the
    /// current period: its count replaces what was assumed, the line continues
    /// from it (or from the calendar's share, if it spent more), and recent
    /// estimates (saved within the last few intervals) end the cold start at
    /// once. Returns whether the count was applied.
    pub fn restore(&self, snapshot: &Snapshot, now: &Moment) -> bool {
        let mono = now.monotonic();
        let mut wall = self.wall.wall(mono);
        let s = &self.s;
        if !self.made_here || !snapshot.period_start.is_finite() {
            return false;
        }
        if snapshot.period_start != s.period_start.get() {
            // The start's reading placed another period than the record's. When the clock,
            // read again, is in the record's period, that reading was one bad reading: place
            // the period by the good one, or the record's count would be thrown away and
            // spent again once the clock reads right. A clock that still disagrees is
            // believed (the record may be the one that was wrong: saved by a clock ahead).
            let again = now.reread_wall();
            if let Some(period) = self.calendar.bounds(again).filter(|p| p.start == snapshot.period_start) {
                self.wall.reset(again, mono);
                self.initialise_at(again, mono, period, false);
                wall = again;
            }
        }
        if snapshot.period_start != s.period_start.get() {
            return false;
        }
        self.carried_over();
        let used = snapshot.used.min(self.budget.saturating_mul(4));
        s.assumed.store(used, Release);
        s.used.store(0, Release);
        self.fleet_recount();
        s.used_at_interval_start.store(0, Release);
        s.start_allowance.set(0.0); // a known start
        s.fresh_until.set(0.0);
        // The line never starts above the calendar's share: what was spent
        // beyond it (a burst) is not granted a second time.
        self.anchor_line(mono, (used as f64).min(self.even_share(wall)), s.mono_end.get());
        let fresh = (wall - snapshot.saved_at).abs() <= (2.0 * self.max_interval).max(3600.0);
        if let Some(estimates) = snapshot.estimates.filter(|_| fresh) {
            self.apply_estimates(&estimates);
            self.set_pace(mono);
        }
        true
    }

    /// This process is the first to count this budget (a state file is
    /// configured and none exists yet): assume only the calendar's share was
    /// spent, not the share and a burst, so a first start mid-period keeps
    /// within its burst at once instead of waiting for the line.
    pub fn first_start(&self, now: &Moment) {
        if !self.made_here {
            return; // other processes on the host are counting it already
        }
        let mono = now.monotonic();
        let share = self.even_share(self.wall.wall(mono));
        let s = &self.s;
        s.start_allowance.set(0.0);
        s.fresh_until.set(mono + FRESH);
        s.assumed.store(share.ceil() as u64, Release);
        s.used.store(0, Release);
        self.fleet_recount();
        s.used_at_interval_start.store(0, Release);
        self.anchor_line(mono, share.ceil(), s.mono_end.get());
    }

    fn apply_estimates(&self, estimates: &Estimates) {
        let finite = |x: f64, fallback: f64| if x.is_finite() && x >= 0.0 { x } else { fallback };
        let s = &self.s;
        s.demand_rate.set(finite(estimates.demand_rate, 0.0));
        s.spans_per_entry.set(finite(estimates.spans_per_entry, 1.0).max(1.0));
        s.forced_rate.set(finite(estimates.forced_rate, 0.0));
        s.pace.set(finite(estimates.pace, 1.0).min(1.0));
        s.estimated.store(1, Release);
    }

    /// Carry a reloaded policy's pacing over from the pacer it replaces: the
    /// period's count and the demand estimates, with the line re-scaled to this
    /// budget (a different period kind or time zone starts afresh instead).
    pub fn carry_over(&self, old: &Pacer, now: &Moment) {
        if !self.made_here || old.calendar.kind != self.calendar.kind || old.calendar.zone_name != self.calendar.zone_name {
            return;
        }
        let mono = now.monotonic();
        let s = &self.s;
        if old.s.period_start.get() != s.period_start.get() {
            return;
        }
        self.carried_over();
        s.assumed.store(old.total_used(), Release);
        s.used.store(0, Release);
        s.start_allowance.set(old.s.start_allowance.get());
        s.fresh_until.set(old.s.fresh_until.get());
        self.fleet_recount();
        s.used_at_interval_start.store(0, Release);
        // Slots numbered alike carry over; otherwise the current one counts as covered.
        let last_kept =
            if old.s.slot_length.get() == s.slot_length.get() { old.s.last_kept_slot.load(Acquire) } else { self.slot(mono) + 1 };
        s.last_kept_slot.store(last_kept, Release);
        let since = old.s.counting_since.get();
        s.counting_since.set(since);
        s.first_slot.store(self.slot(since), Release);
        s.period_forced.store(old.s.period_forced.load(Acquire), Release);
        s.period_floor.store(old.s.period_floor.load(Acquire), Release);
        s.refused.store(old.s.refused.load(Acquire), Release);
        s.mean_inner.set(old.s.mean_inner.get());
        s.day_seconds.set(old.s.day_seconds.get());
        s.day_forced.set(old.s.day_forced.get());
        for class in 0..3 {
            s.day_tail[class].set(old.s.day_tail[class].get());
        }
        let scaled = old.allowed(mono) * self.budget as f64 / old.budget as f64;
        self.anchor_line(mono, scaled.min(self.even_share(self.wall.wall(mono))), s.mono_end.get());
        if old.s.estimated.load(Acquire) == 1 {
            self.apply_estimates(&Estimates {
                pace: old.s.pace.get(),
                demand_rate: old.s.demand_rate.get(),
                spans_per_entry: old.s.spans_per_entry.get(),
                forced_rate: old.s.forced_rate.get(),
            });
            self.set_pace(mono);
        }
    }
}
