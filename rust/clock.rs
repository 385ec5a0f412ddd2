//! Where time comes from: the system clock, or a caller-supplied one so tests
//! and simulations can run a month in seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> f64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Wall-clock time with the kernel's coarse resolution (a few milliseconds):
    /// every reader of time here works in seconds to hours, and the coarse
    /// clock costs a few nanoseconds where the precise one costs tens.
    #[inline]
    fn now(&self) -> f64 {
        #[cfg(target_os = "linux")]
        {
            let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: a valid out-pointer; CLOCK_REALTIME_COARSE exists on every Linux we build for.
            if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) } == 0 {
                return now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9;
            }
        }
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => elapsed.as_secs_f64(),
            Err(before) => -before.duration().as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_agrees_with_std_to_within_its_resolution() {
        let std_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((SystemClock.now() - std_now).abs() < 0.1);
    }
}

/// A fixed instant, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub f64);

impl Clock for FixedClock {
    fn now(&self) -> f64 {
        self.0
    }
}
