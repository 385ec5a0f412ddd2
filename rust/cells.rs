//! Lock-free cells for state that several threads (and, through a shared
//! store, several processes) read and update: an `f64` kept in an `AtomicU64`.

use std::sync::atomic::{AtomicU64, Ordering::*};

/// An f64 in an atomic word.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub fn new(value: f64) -> Self {
        AtomicF64(AtomicU64::new(value.to_bits()))
    }

    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Acquire))
    }

    #[inline]
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Release);
    }

    /// Replace `current` with `new` if it still holds `current`.
    pub fn compare_exchange(&self, current: f64, new: f64) -> Result<f64, f64> {
        self.0.compare_exchange(current.to_bits(), new.to_bits(), AcqRel, Acquire).map(f64::from_bits).map_err(f64::from_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_and_swaps_floats() {
        let cell = AtomicF64::new(1.5);
        assert_eq!(cell.get(), 1.5);
        cell.set(-2.0);
        assert_eq!(cell.compare_exchange(-2.0, 3.0), Ok(-2.0));
        assert_eq!(cell.compare_exchange(-2.0, 4.0), Err(3.0));
    }
}
