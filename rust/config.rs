//! Validation of user-supplied sampler settings, with messages that name the
//! field, the value and what would be valid.

use std::fmt;

use crate::threshold::MAX_PRECISION;
use crate::words::plain;

/// A setting that cannot be used. Raised as `tracesieve.ConfigError` in Python.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        ConfigError { field: field.to_owned(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A probability must be a finite number in [0, 1].
pub fn probability(field: &str, value: f64) -> Result<f64, ConfigError> {
    if value.is_nan() {
        return Err(ConfigError::new(field, "NaN is not a probability; expected a number in [0, 1]"));
    }
    if !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::new(field, format!("{} is out of range; expected a number in [0, 1]", plain(value))));
    }
    // Adding +0 turns -0 into 0, so no description says "-0".
    Ok(value + 0.0)
}

/// A finite number of seconds: > 0, or >= 0 when `zero_allowed`.
pub fn seconds(field: &str, value: f64, zero_allowed: bool) -> Result<f64, ConfigError> {
    let ok = value.is_finite() && (value > 0.0 || (zero_allowed && value == 0.0));
    if ok {
        Ok(value)
    } else if zero_allowed {
        Err(ConfigError::new(field, format!("{} is out of range; expected a number of seconds >= 0", plain(value))))
    } else {
        Err(ConfigError::new(field, format!("{} is not a positive number of seconds", plain(value))))
    }
}

/// A finite number > 0.
pub fn positive(field: &str, value: f64) -> Result<f64, ConfigError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(ConfigError::new(field, format!("{} is not a positive number", plain(value))));
    }
    Ok(value)
}

/// Threshold precision in significant hex digits.
pub fn precision(field: &str, value: i64) -> Result<u32, ConfigError> {
    if !(1..=i64::from(MAX_PRECISION)).contains(&value) {
        return Err(ConfigError::new(
            field,
            format!("{value} is out of range; expected a whole number of hex digits from 1 to {MAX_PRECISION}"),
        ));
    }
    Ok(value as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_bounds() {
        assert_eq!(probability("rate", 0.0), Ok(0.0));
        assert_eq!(probability("rate", 1.0), Ok(1.0));
        assert_eq!(probability("rate", 1.5).unwrap_err().to_string(), "rate: 1.5 is out of range; expected a number in [0, 1]");
        assert!(probability("rate", -0.0).unwrap().is_sign_positive());
        assert!(probability("rate", -0.1).is_err());
        assert!(probability("rate", f64::INFINITY).is_err());
        assert!(probability("rate", f64::NAN).unwrap_err().to_string().contains("NaN"));
    }

    #[test]
    fn precision_bounds() {
        assert_eq!(precision("precision", 1), Ok(1));
        assert_eq!(precision("precision", 12), Ok(12));
        assert!(precision("precision", 0).unwrap_err().to_string().starts_with("precision: 0 is out of range"));
        assert!(precision("precision", 13).is_err());
    }
}
