//! The wall clock as the pacer trusts it: monotonic time plus an offset. A
//! wall reading that disagrees with the offset by more than a tolerance is a
//! suspected jump; it is believed only when it persists (the same new offset
//! seen again at least `PERSISTENCE` seconds later). So one bad reading (a
//! milliseconds bug, a 40-day glitch for five seconds) moves nothing, while a
//! real step (an NTP correction, a host whose clock was set) is followed.

use crate::cells::AtomicF64;

/// Differences up to this many seconds are drift (NTP slews), followed at once.
pub const TOLERANCE: f64 = 2.0;
/// A jump is believed once its new offset has held this long on the monotonic clock.
pub const PERSISTENCE: f64 = 60.0;

#[derive(Debug)]
pub struct WallTracker {
    /// Trusted wall minus monotonic.
    offset: AtomicF64,
    /// The offset a suspected jump would set (NaN: none suspected).
    candidate: AtomicF64,
    /// Monotonic time the candidate was first seen.
    candidate_since: AtomicF64,
}

impl WallTracker {
    pub fn new(wall: f64, monotonic: f64) -> Self {
        WallTracker { offset: AtomicF64::new(wall - monotonic), candidate: AtomicF64::new(f64::NAN), candidate_since: AtomicF64::new(0.0) }
    }

    /// The trusted wall time at `monotonic`.
    #[inline]
    pub fn wall(&self, monotonic: f64) -> f64 {
        self.offset.get() + monotonic
    }

    /// Trust `wall` at `monotonic` from now on (a reading taken again after a
    /// bad one), forgetting any suspected jump.
    pub fn reset(&self, wall: f64, monotonic: f64) {
        self.offset.set(wall - monotonic);
        self.candidate.set(f64::NAN);
    }

    /// Take a wall reading into account; returns the trusted wall time.
    /// Callers serialise observations (the pacer does it under its lease).
    pub fn observe(&self, wall: f64, monotonic: f64) -> f64 {
        if !wall.is_finite() {
            return self.wall(monotonic);
        }
        let offset = wall - monotonic;
        if (offset - self.offset.get()).abs() <= TOLERANCE {
            self.offset.set(offset);
            self.candidate.set(f64::NAN);
            return wall;
        }
        let candidate = self.candidate.get();
        if candidate.is_nan() || (offset - candidate).abs() > TOLERANCE {
            self.candidate.set(offset);
            self.candidate_since.set(monotonic);
        } else if monotonic - self.candidate_since.get() >= PERSISTENCE {
            self.offset.set(offset);
            self.candidate.set(f64::NAN);
            return wall;
        }
        self.wall(monotonic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f64 = 1_767_225_600.0;

    #[test]
    fn drift_is_followed_and_a_single_bad_reading_ignored() {
        let tracker = WallTracker::new(T, 100.0);
        assert_eq!(tracker.observe(T + 10.5, 110.0), T + 10.5, "half a second of drift");
        assert_eq!(tracker.observe(T * 1000.0, 120.0), T + 20.5, "a milliseconds bug moves nothing");
        assert_eq!(tracker.observe(T + 30.5, 130.0), T + 30.5);
        assert_eq!(tracker.observe(T + 40.0 * 86400.0, 135.0), T + 35.5, "40 days for five seconds");
        assert_eq!(tracker.observe(T + 45.5, 145.0), T + 45.5);
    }

    #[test]
    fn a_jump_that_persists_is_believed() {
        let tracker = WallTracker::new(T, 0.0);
        assert_eq!(tracker.observe(T + 10.0 - 3600.0, 10.0), T + 10.0, "suspected");
        assert_eq!(tracker.observe(T + 40.0 - 3600.0, 40.0), T + 40.0, "not yet 60 s");
        assert_eq!(tracker.observe(T + 75.0 - 3600.0, 75.0), T + 75.0 - 3600.0, "believed after 65 s");
        assert_eq!(tracker.wall(100.0), T + 100.0 - 3600.0);
    }
}
