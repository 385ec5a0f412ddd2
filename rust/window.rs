//! A lock-free sliding-window event counter: a ring of time buckets, each one
//! atomic word holding (bucket epoch, count). Recording is one CAS loop on one
//! word; reading sums the buckets whose epoch is inside the window. A bucket
//! whose epoch is stale is reset by the first writer of the new epoch, so
//! expired events never leak into a later window and no count is lost.
//! The ring lives in a region of a store, so processes can share it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::ConfigError;
use crate::store::Region;
use crate::words::plain;

/// Low bits of a bucket word: the count.
const COUNT_BITS: u32 = 32;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

#[derive(Debug)]
pub struct SlidingWindow {
    resolution: f64,
    buckets: Region,
    /// Times are counted in ticks of `resolution` from this origin, so a tick
    /// fits the 32 high bits of a bucket word.
    origin: f64,
    /// Events the rest of a fleet counted in its windows (0 outside a fleet).
    others: AtomicU64,
}

fn pack(tick: u64, count: u64) -> u64 {
    (tick << COUNT_BITS) | count.min(COUNT_MASK)
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> COUNT_BITS, word & COUNT_MASK)
}

impl SlidingWindow {
    /// A window of `length` seconds in buckets of `resolution` seconds,
    /// with ticks counted from `origin` (Unix seconds).
    pub fn new(length: f64, resolution: f64, origin: f64) -> Result<SlidingWindow, ConfigError> {
        let count = SlidingWindow::buckets_for(length, resolution)?;
        // Start one window back, so clocks that step back a little stay in range.
        let origin = if origin.is_finite() { origin - length } else { 0.0 };
        Ok(SlidingWindow::over(Region::heap(count), resolution, origin))
    }

    /// A window whose buckets are `buckets` (zeroed when made), with ticks
    /// counted from `origin` exactly (every process sharing it gives the same).
    pub fn over(buckets: Region, resolution: f64, origin: f64) -> SlidingWindow {
        SlidingWindow { resolution, buckets, origin, others: AtomicU64::new(0) }
    }

    /// How many buckets a window of `length` seconds at `resolution` takes,
    /// or why it cannot be made.
    pub fn buckets_for(length: f64, resolution: f64) -> Result<usize, ConfigError> {
        if !(resolution.is_finite() && resolution > 0.0) {
            return Err(ConfigError::new("resolution", format!("{} is not a positive number of seconds", plain(resolution))));
        }
        if !(length.is_finite() && length > 0.0) {
            return Err(ConfigError::new("window", format!("{} is not a positive number of seconds", plain(length))));
        }
        if length < resolution {
            return Err(ConfigError::new(
                "window",
                format!(
                    "{} s is shorter than its resolution of {} s; expected a window of at least one bucket",
                    plain(length),
                    plain(resolution)
                ),
            ));
        }
        // Counted as a float first: a window of 1e22 s would saturate the cast.
        let count = (length / resolution).round();
        if count > 1_000_000.0 {
            return Err(ConfigError::new(
                "resolution",
                format!("{} buckets ({} s / {} s) is too many; expected at most 1,000,000", plain(count), plain(length), plain(resolution)),
            ));
        }
        Ok(count as usize)
    }

    pub fn length(&self) -> f64 {
        self.resolution * self.buckets.words().len() as f64
    }

    pub fn resolution(&self) -> f64 {
        self.resolution
    }

    /// The tick (bucket epoch) of Unix time `now`; +1 so that 0 means "never written".
    #[inline]
    pub fn tick(&self, now: f64) -> u64 {
        let ticks = (now - self.origin) / self.resolution;
        if ticks.is_nan() || ticks < 0.0 {
            return 1;
        }
        (ticks as u64).min((1 << (64 - COUNT_BITS)) - 2) + 1
    }

    /// Count `n` events at time `now`. Events older than the window are ignored.
    #[inline]
    pub fn record(&self, now: f64, n: u64) {
        let tick = self.tick(now);
        let bucket = &self.buckets.words()[(tick % self.buckets.words().len() as u64) as usize];
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let (bucket_tick, count) = unpack(current);
            let next = if bucket_tick == tick {
                pack(tick, count.saturating_add(n))
            } else if bucket_tick < tick {
                pack(tick, n)
            } else {
                // The slot already belongs to a later tick: this event is
                // older than the whole window.
                return;
            };
            match bucket.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Events in the window ending at `now` (the current bucket included),
    /// the rest of the fleet's included.
    pub fn total(&self, now: f64) -> u64 {
        self.local_total(now).saturating_add(self.others.load(Ordering::Acquire))
    }

    /// What the rest of a fleet counted in its windows, as last heard.
    pub fn set_others(&self, count: u64) {
        self.others.store(count, Ordering::Release);
    }

    /// Events this process (or host) counted in the window ending at `now`.
    pub fn local_total(&self, now: f64) -> u64 {
        let tick = self.tick(now);
        let oldest = tick.saturating_sub(self.buckets.words().len() as u64 - 1);
        self.buckets
            .words()
            .iter()
            .map(|bucket| unpack(bucket.load(Ordering::Acquire)))
            .filter(|(bucket_tick, _)| *bucket_tick >= oldest && *bucket_tick <= tick)
            .map(|(_, count)| count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const T0: f64 = 1_767_225_600.0;

    #[test]
    fn counts_inside_the_window_only() {
        let window = SlidingWindow::new(300.0, 1.0, T0).unwrap();
        window.record(T0, 3);
        window.record(T0 + 0.5, 2);
        window.record(T0 + 299.0, 1);
        assert_eq!(window.total(T0 + 299.0), 6);
        assert_eq!(window.total(T0 + 300.0), 1, "the first second has slid out");
        assert_eq!(window.total(T0 + 598.0), 1);
        assert_eq!(window.total(T0 + 599.0), 0);
    }

    #[test]
    fn stale_buckets_are_reset_by_the_next_writer() {
        let window = SlidingWindow::new(10.0, 1.0, T0).unwrap();
        window.record(T0, 100);
        window.record(T0 + 10.0, 1); // same slot, one lap later
        assert_eq!(window.total(T0 + 10.0), 1);
        window.record(T0 + 0.2, 5); // older than the window: ignored
        assert_eq!(window.total(T0 + 10.0), 1);
    }

    #[test]
    fn clock_steps_back_and_forth_never_panic() {
        let window = SlidingWindow::new(60.0, 1.0, T0).unwrap();
        for now in [T0, T0 - 30.0, T0 - 1e9, f64::NAN, f64::INFINITY, T0 + 1e12, -1.0] {
            window.record(now, 1);
            let _ = window.total(now);
        }
    }

    #[test]
    fn counts_are_exact_under_threads() {
        let window = Arc::new(SlidingWindow::new(300.0, 1.0, T0).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let window = Arc::clone(&window);
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        // Spread over 20 s, crossing bucket boundaries while racing.
                        window.record(T0 + ((i + t * 7) % 20) as f64, 1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(window.total(T0 + 20.0), 400_000);
    }

    #[test]
    fn bad_shapes_are_rejected() {
        assert!(SlidingWindow::new(0.5, 1.0, T0).unwrap_err().to_string().starts_with("window: 0.5 s is shorter than its resolution"));
        assert!(SlidingWindow::new(10.0, 0.0, T0).is_err());
        assert!(SlidingWindow::new(-1.0, 1.0, T0).is_err());
        assert!(SlidingWindow::new(1e9, 1e-6, T0).is_err());
    }
}
