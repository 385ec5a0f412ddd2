//! What paced keeps must leave for the rest of the period: the keep rules'
//! and the tail's expected spans (from their typical rates, which look past a
//! storm), the visibility floor's expected keeps and the children's headroom.

use std::sync::atomic::Ordering::*;

use super::{Pacer, TailClass};

/// Keep rules' expected spans are reserved with this margin (they come in bunches).
const FORCED_MARGIN: f64 = 1.1;
/// The floor's measured share of slots is reserved with this margin.
const FLOOR_MARGIN: f64 = 1.25;
const DAY: f64 = 86_400.0;
/// Tail keeps' expected spans are reserved with this margin (errors come in storms).
const TAIL_MARGIN: f64 = 1.25;
/// The reserve counts on keep rules and tail keeps going on at the period's
/// average rate, or at most this multiple of the last days' typical rate
/// (their moving sums, which swing a few percent over a daily wave), so a
/// storm does not starve the head sample for the rest of the period.
const DAY_MARGIN: f64 = 1.1;
/// Once settled, the moving sums take at most this multiple of what their
/// rate expects from an interval: a storm of a few hours raises them by a few
/// tens of percent, while a lasting rise doubles them every 17 hours or so.
const STORM_FACTOR: f64 = 3.0;
/// How long a surge of a tail class is expected to last yet, in seconds, when
/// the classes after it ask for room.
const SURGE_HOLD: f64 = 3600.0;

impl Pacer {
    /// How far into the period's own record the long-run figures are trusted
    /// (0 to 1): over a day, daily waves average out.
    #[inline]
    pub(super) fn record_weight(&self, mono: f64) -> f64 {
        ((mono - self.s.counting_since.get()) / self.horizon()).clamp(0.0, 1.0)
    }

    /// A day, or a quarter of a shorter period: long enough for daily waves
    /// to average out.
    #[inline]
    pub(super) fn horizon(&self) -> f64 {
        DAY.min((self.s.period_end.get() - self.s.period_start.get()) / 4.0)
    }

    /// A rate to expect for the rest of the period, from its `recent` rate,
    /// the period's `count` so far and its moving sum `day`: the
    /// recent rate at first (blended into the rest over the horizon), then the
    /// period's average (a recent rate taken at night would under-reserve for
    /// the daytime), or the last days' typical rate with a margin where that
    /// is lower (a storm early in the period would otherwise hold the average
    /// up for weeks).
    pub(super) fn expected_rate(&self, mono: f64, recent: f64, count: u64, day: f64) -> f64 {
        let weight = self.record_weight(mono);
        if weight == 0.0 {
            return recent;
        }
        let average = count as f64 / (mono - self.s.counting_since.get()).max(1e-9);
        let seconds = self.s.day_seconds.get();
        let typical = if seconds > 0.0 { average.min(DAY_MARGIN * day / seconds) } else { average };
        weight * typical + (1.0 - weight) * recent
    }

    /// Keep-rule spans per second to expect for the rest of the period.
    pub(super) fn expected_forced_rate(&self, mono: f64) -> f64 {
        let s = &self.s;
        self.expected_rate(mono, s.forced_rate.get(), s.period_forced.load(Relaxed), s.day_forced.get())
    }

    /// The spans keep rules are expected to keep from now to the period's end.
    #[inline]
    pub(super) fn forced_ahead(&self, mono: f64) -> f64 {
        if self.cap_forced {
            return 0.0; // capped keep rules compete for the same spans
        }
        // With a margin, as the rate is an estimate and keep rules come in bunches
        // (and a Poisson one, so the last hours do not overshoot).
        let expected = self.expected_forced_rate(mono) * (self.s.mono_end.get() - mono).max(0.0);
        if expected <= 0.0 {
            return 0.0;
        }
        FORCED_MARGIN * expected + 2.0 * expected.sqrt() + 2.0
    }

    /// Floor keeps to expect from now to the period's end. The floor keeps a
    /// slot's first span unless something else took it, so a slot needs it
    /// with the chance that nothing else is kept there: at first from what the
    /// allowance pays for beyond a span a slot, spread over the slots (halved,
    /// as nights are quieter than the average), then as many as the period's
    /// own record says (with a margin). Reserving one per slot up front would
    /// starve the pace, and a starved pace would make the floor fire in every
    /// slot: the record would then confirm the starvation.
    #[inline]
    pub(super) fn floor_ahead(&self, mono: f64) -> f64 {
        let slot_length = self.s.slot_length.get();
        let time_left = (self.s.mono_end.get() - mono).max(0.0);
        let slots = (time_left / slot_length).floor().max(0.0);
        if slots == 0.0 {
            return 0.0;
        }
        let others = self.forced_ahead(mono) + self.tail_ahead_all(mono) + self.child_headroom;
        let left = (self.budget as f64 - self.total_used() as f64 - others).max(0.0);
        // A slot's first span is the floor's while the allowance is about one
        // span a slot; what it leaves beyond that spreads random keeps over the
        // slots, each of which then needs the floor less.
        let per_slot = left / slots;
        let prior = (-0.5 * (per_slot - 1.0)).exp().min(1.0);
        let weight = self.record_weight(mono);
        if weight == 0.0 {
            return slots * prior;
        }
        let elapsed = (self.slot(mono) + 1).saturating_sub(self.s.first_slot.load(Relaxed)).max(1);
        let share = (FLOOR_MARGIN * self.s.period_floor.load(Relaxed) as f64 / elapsed as f64).min(1.0);
        slots * (weight * share + (1.0 - weight) * prior)
    }

    /// What paced keeps must leave: room for the children of kept traces, the
    /// floor keeps still to come (so the floor never runs dry) and the keep
    /// rules' expected spans (kept regardless).
    #[inline]
    pub(super) fn reserved(&self, mono: f64) -> f64 {
        self.child_headroom + self.floor_ahead(mono) * self.trace_spans() + self.forced_ahead(mono) + self.tail_ahead_all(mono)
    }

    /// The spans tail keeps of `class` are expected to need from now to the
    /// period's end (at the rate `expected_rate` gives), with a margin.
    pub(super) fn tail_ahead(&self, class: TailClass, mono: f64) -> f64 {
        let i = class as usize;
        let s = &self.s;
        let rate = self.expected_rate(mono, s.tail_rate[i].get(), s.period_tail[i].load(Relaxed), s.day_tail[i].get());
        let expected = rate * (self.s.mono_end.get() - mono).max(0.0);
        if expected <= 0.0 {
            return 0.0;
        }
        TAIL_MARGIN * expected + 2.0 * expected.sqrt()
    }

    /// What a class is expected to need when the classes after it ask: as
    /// `tail_ahead`, and, while its recent rate is above the rate expected,
    /// the surge for another `SURGE_HOLD` too, so that during a storm of
    /// errors, slow traces yield what the storm will need.
    pub(super) fn tail_ahead_with_surge(&self, class: TailClass, mono: f64) -> f64 {
        let i = class as usize;
        let s = &self.s;
        let recent = s.tail_rate[i].get();
        let expected = self.expected_rate(mono, recent, s.period_tail[i].load(Relaxed), s.day_tail[i].get());
        let hold = (s.mono_end.get() - mono).clamp(0.0, SURGE_HOLD);
        self.tail_ahead(class, mono) + TAIL_MARGIN * (recent - expected).max(0.0) * hold
    }

    /// Spans tail keeps spent this period.
    pub(super) fn tail_this_period(&self) -> f64 {
        self.s.period_tail.iter().map(|t| t.load(Relaxed) as f64).sum()
    }

    pub(super) fn tail_ahead_all(&self, mono: f64) -> f64 {
        TailClass::ALL.iter().map(|class| self.tail_ahead(*class, mono)).sum()
    }

    /// Add an interval of `elapsed` seconds with `forced` keep-rule spans and
    /// `tails` tail spans per class to the moving sums. They decay over two
    /// horizons as the interval passes, and once they have seen about a whole
    /// horizon (a daily wave's peak and trough), an interval adds at most
    /// STORM_FACTOR times what their rate expects (and a few spans).
    pub(super) fn add_to_typical_rates(&self, elapsed: f64, forced: f64, tails: &[f64; 3]) {
        let s = &self.s;
        let decay = (-elapsed / (2.0 * self.horizon())).exp();
        let seconds = s.day_seconds.get();
        let settled = seconds >= 0.75 * self.horizon();
        let typical = |sum: f64, count: f64| if settled { count.min(STORM_FACTOR * (sum / seconds * elapsed + 1.0)) } else { count };
        s.day_seconds.set(seconds * decay + elapsed);
        s.day_forced.set(s.day_forced.get() * decay + typical(s.day_forced.get(), forced));
        for (i, tail) in tails.iter().enumerate() {
            s.day_tail[i].set(s.day_tail[i].get() * decay + typical(s.day_tail[i].get(), *tail));
        }
    }
}
