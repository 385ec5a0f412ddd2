//! Where time comes from. Two readings: the wall clock (Unix seconds), which
//! only places calendar periods and time-of-day schedules, and a monotonic
//! clock, from which every duration is measured (intervals, windows, token
//! refills, the budget's progress), so a wall clock that steps or jumps cannot
//! freeze or rush them. Tests and simulations supply both, to run a month in
//! seconds and to make the wall clock jump on purpose.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Wall-clock time, Unix seconds.
    fn now(&self) -> f64;
    /// Seconds on a clock that never steps; only differences mean anything.
    fn monotonic(&self) -> f64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// A coarse clock reading (a few milliseconds of resolution): every reader of
/// time here works in seconds to hours, and the coarse clocks cost a few
/// nanoseconds where the precise ones cost tens.
#[cfg(target_os = "linux")]
fn coarse(clock: libc::clockid_t) -> Option<f64> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer; both coarse clocks exist on every Linux we build for.
    let read = unsafe { libc::clock_gettime(clock, &mut now) } == 0;
    read.then_some(now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9)
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> f64 {
        #[cfg(target_os = "linux")]
        if let Some(now) = coarse(libc::CLOCK_REALTIME_COARSE) {
            return now;
        }
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => elapsed.as_secs_f64(),
            Err(before) => -before.duration().as_secs_f64(),
        }
    }

    /// CLOCK_MONOTONIC is one clock for every process on the host, so durations
    /// measured by different processes (sharing a budget) agree.
    #[inline]
    fn monotonic(&self) -> f64 {
        #[cfg(target_os = "linux")]
        if let Some(now) = coarse(libc::CLOCK_MONOTONIC_COARSE) {
            return now;
        }
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
    }
}

/// A fixed instant, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub f64);

impl Clock for FixedClock {
    fn now(&self) -> f64 {
        self.0
    }

    fn monotonic(&self) -> f64 {
        self.0
    }
}

/// Another instant on a live clock: wall time `wall`, and for a later one the
/// live monotonic time moved on by as much, so state measured on the live
/// clock's monotonic time (a budget's line, a boost's windows) is read as it
/// would stand then; state cannot be wound back, so an earlier instant reads
/// it as it stands now. `explain(now=...)` reads with it: a fixed monotonic
/// reading equal to the wall time read a budget's line decades ahead.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    wall: f64,
    monotonic: f64,
}

impl ShiftedClock {
    pub fn at(live: &dyn Clock, wall: f64) -> ShiftedClock {
        ShiftedClock { wall, monotonic: live.monotonic() + (wall - live.now()).max(0.0) }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> f64 {
        self.wall
    }

    fn monotonic(&self) -> f64 {
        self.monotonic
    }
}

/// The time of one decision, read lazily: each clock at most once, and only
/// if a stage needs it.
pub struct Moment<'a> {
    clock: &'a dyn Clock,
    wall: Cell<Option<f64>>,
    monotonic: Cell<Option<f64>>,
}

impl<'a> Moment<'a> {
    pub fn new(clock: &'a dyn Clock) -> Self {
        Moment { clock, wall: Cell::new(None), monotonic: Cell::new(None) }
    }

    #[inline]
    pub fn wall(&self) -> f64 {
        *self.wall.get().get_or_insert_with(|| {
            let t = self.clock.now();
            self.wall.set(Some(t));
            t
        })
    }

    #[inline]
    pub fn monotonic(&self) -> f64 {
        *self.monotonic.get().get_or_insert_with(|| {
            let t = self.clock.monotonic();
            self.monotonic.set(Some(t));
            t
        })
    }

    /// Read the wall clock again (after a reading that made no sense), and
    /// keep that reading for this moment.
    pub fn reread_wall(&self) -> f64 {
        let t = self.clock.now();
        self.wall.set(Some(t));
        t
    }

    /// The wall time two readings agree on (within `tolerance` seconds), kept
    /// for this moment: a second reading, and a third when the first two
    /// disagree. Where one reading places something lasting (a start's
    /// period), one bad reading must not.
    pub fn settled_wall(&self, tolerance: f64) -> f64 {
        let first = self.wall();
        let second = self.reread_wall();
        if (second - first).abs() <= tolerance {
            return second;
        }
        let third = self.reread_wall();
        let agreed = if (third - second).abs() > tolerance && (third - first).abs() <= tolerance { first } else { third };
        self.wall.set(Some(agreed));
        agreed
    }

    /// Whether either clock was read.
    pub fn was_read(&self) -> bool {
        self.wall.get().is_some() || self.monotonic.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_agrees_with_std_to_within_its_resolution() {
        let std_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((SystemClock.now() - std_now).abs() < 0.1);
        let a = SystemClock.monotonic();
        let b = SystemClock.monotonic();
        assert!(b >= a);
    }

    #[test]
    fn a_shifted_clock_moves_both_readings_on_by_one_amount() {
        let live = FixedClock(1_000.0);
        let hour_later = ShiftedClock::at(&live, 4_600.0);
        assert_eq!((hour_later.now(), hour_later.monotonic()), (4_600.0, 4_600.0));
        let hour_before = ShiftedClock::at(&live, -2_600.0);
        assert_eq!((hour_before.now(), hour_before.monotonic()), (-2_600.0, 1_000.0), "no state is wound back");
        let system = SystemClock;
        let shifted = ShiftedClock::at(&system, system.now() + 60.0);
        assert!((shifted.monotonic() - system.monotonic() - 60.0).abs() < 0.1, "{shifted:?}");
    }

    #[test]
    fn a_moment_reads_each_clock_once() {
        struct Counting(std::sync::atomic::AtomicU32);
        impl Clock for Counting {
            fn now(&self) -> f64 {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                5.0
            }
            fn monotonic(&self) -> f64 {
                self.0.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
                7.0
            }
        }
        let clock = Counting(Default::default());
        let moment = Moment::new(&clock);
        assert!(!moment.was_read());
        assert_eq!((moment.wall(), moment.wall(), moment.monotonic(), moment.monotonic()), (5.0, 5.0, 7.0, 7.0));
        assert_eq!(clock.0.load(std::sync::atomic::Ordering::Relaxed), 101);
    }

    /// A wall clock that gives `readings` in turn (the last one from then on).
    struct Readings(std::sync::Mutex<Vec<f64>>);
    impl Clock for Readings {
        fn now(&self) -> f64 {
            let mut readings = self.0.lock().unwrap();
            if readings.len() > 1 {
                readings.remove(0)
            } else {
                readings[0]
            }
        }
        fn monotonic(&self) -> f64 {
            0.0
        }
    }

    #[test]
    fn a_settled_wall_reading_is_one_two_readings_agree_on() {
        let settle = |readings: Vec<f64>| {
            let clock = Readings(std::sync::Mutex::new(readings));
            let moment = Moment::new(&clock);
            let settled = moment.settled_wall(2.0);
            assert_eq!(moment.wall(), settled, "kept for the moment");
            settled
        };
        assert_eq!(settle(vec![100.0, 100.5]), 100.5, "two that agree: the later");
        assert_eq!(settle(vec![0.0, 100.0, 100.1]), 100.1, "a bad first reading");
        assert_eq!(settle(vec![100.0, 0.0, 100.1]), 100.0, "a bad second reading");
        assert_eq!(settle(vec![f64::NAN, 100.0, 100.1]), 100.1, "an unusable first reading");
        assert_eq!(settle(vec![0.0, 50.0, 100.0]), 100.0, "none agree: the latest");
    }
}
