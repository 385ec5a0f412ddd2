//! Calendar periods (hour, day, week, month) in a named time zone: the
//! boundaries of the period holding a given instant. Calendar arithmetic is
//! jiff's, so December rolls into January, February knows leap years, and a
//! day with a DST change is 23 or 25 hours long.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::config::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Hour,
    Day,
    /// Monday to Monday.
    Week,
    Month,
}

impl PeriodKind {
    pub const NAMES: [&'static str; 4] = ["hour", "day", "week", "month"];

    pub fn parse(name: &str) -> Result<PeriodKind, ConfigError> {
        match name {
            "hour" => Ok(PeriodKind::Hour),
            "day" => Ok(PeriodKind::Day),
            "week" => Ok(PeriodKind::Week),
            "month" => Ok(PeriodKind::Month),
            other => Err(ConfigError::new(
                "period",
                format!("unknown period {}; expected one of {}", crate::words::quoted(other), PeriodKind::NAMES.join(", ")),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        PeriodKind::NAMES[self as usize]
    }
}

/// A period kind in a time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub kind: PeriodKind,
    pub zone_name: String,
    zone: TimeZone,
}

/// [start, end) in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub start: f64,
    pub end: f64,
}

impl Bounds {
    pub fn length(&self) -> f64 {
        self.end - self.start
    }
}

impl Calendar {
    pub fn new(kind: PeriodKind, zone_name: &str) -> Result<Calendar, ConfigError> {
        let zone = TimeZone::get(zone_name).map_err(|_| {
            ConfigError::new(
                "timezone",
                format!(
                    "unknown time zone {}; expected an IANA name such as \"Europe/Berlin\" or \"UTC\"",
                    crate::words::quoted(zone_name)
                ),
            )
        })?;
        Ok(Calendar { kind, zone_name: zone_name.to_owned(), zone })
    }

    /// The period holding Unix time `now` (None for times jiff cannot represent).
    pub fn bounds(&self, now: f64) -> Option<Bounds> {
        if !now.is_finite() {
            return None;
        }
        let instant = Timestamp::from_second(now.floor() as i64).ok()?;
        let local = instant.to_zoned_datetime(self.zone.clone());
        let midnight = |date: Date| -> Option<f64> { Some(date.to_zoned_datetime(self.zone.clone()).ok()?.timestamp().as_second() as f64) };
        let date = local.date();
        let (start, end) = match self.kind {
            PeriodKind::Hour => {
                // The local hour began minutes and seconds ago; it lasts 3600 s of absolute time.
                let into_hour = i64::from(local.minute()) * 60 + i64::from(local.second());
                let start = (instant.as_second() - into_hour) as f64;
                (start, start + 3600.0)
            }
            PeriodKind::Day => (midnight(date)?, midnight(date.tomorrow().ok()?)?),
            PeriodKind::Week => {
                let monday = date.checked_sub(i64::from(date.weekday().to_monday_zero_offset()).days()).ok()?;
                (midnight(monday)?, midnight(monday.checked_add(7.days()).ok()?)?)
            }
            PeriodKind::Month => {
                let first = date.first_of_month();
                (midnight(first)?, midnight(first.checked_add(1.month()).ok()?)?)
            }
        };
        (end > start).then_some(Bounds { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(text: &str) -> f64 {
        text.parse::<Timestamp>().unwrap().as_second() as f64
    }

    fn bounds(kind: PeriodKind, zone: &str, at: &str) -> (f64, f64) {
        let b = Calendar::new(kind, zone).unwrap().bounds(unix(at)).unwrap();
        (b.start, b.end)
    }

    #[test]
    fn december_rolls_into_january() {
        let (start, end) = bounds(PeriodKind::Month, "UTC", "2026-12-15T10:00:00Z");
        assert_eq!((start, end), (unix("2026-12-01T00:00:00Z"), unix("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn february_in_leap_and_common_years() {
        let (start, end) = bounds(PeriodKind::Month, "UTC", "2028-02-10T00:00:00Z");
        assert_eq!((end - start) / 86400.0, 29.0);
        let (start, end) = bounds(PeriodKind::Month, "UTC", "2027-02-10T00:00:00Z");
        assert_eq!((end - start) / 86400.0, 28.0);
    }

    #[test]
    fn dst_days_are_23_and_25_hours() {
        let (start, end) = bounds(PeriodKind::Day, "America/New_York", "2026-03-08T12:00:00Z");
        assert_eq!((end - start) / 3600.0, 23.0);
        assert_eq!(start, unix("2026-03-08T05:00:00Z"));
        let (start, end) = bounds(PeriodKind::Day, "America/New_York", "2026-11-01T12:00:00Z");
        assert_eq!((end - start) / 3600.0, 25.0);
        let (start, end) = bounds(PeriodKind::Month, "Europe/Berlin", "2026-03-15T12:00:00Z");
        assert_eq!(start, unix("2026-02-28T23:00:00Z"));
        assert_eq!(end, unix("2026-03-31T22:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday_and_hours_follow_local_offsets() {
        // 2026-11-25 is a Wednesday.
        let (start, end) = bounds(PeriodKind::Week, "UTC", "2026-11-25T08:00:00Z");
        assert_eq!((start, end), (unix("2026-11-23T00:00:00Z"), unix("2026-11-30T00:00:00Z")));
        let (start, end) = bounds(PeriodKind::Hour, "Asia/Kolkata", "2026-11-25T08:10:00Z");
        assert_eq!((start, end), (unix("2026-11-25T07:30:00Z"), unix("2026-11-25T08:30:00Z")));
        // The repeated hour at the fall-back change is its own hour.
        let (start, _) = bounds(PeriodKind::Hour, "America/New_York", "2026-11-01T06:20:00Z");
        assert_eq!(start, unix("2026-11-01T06:00:00Z"));
    }

    #[test]
    fn names_and_errors() {
        assert_eq!(PeriodKind::parse("week").unwrap().name(), "week");
        assert_eq!(
            PeriodKind::parse("quarter").unwrap_err().to_string(),
            "period: unknown period \"quarter\"; expected one of hour, day, week, month"
        );
        assert!(Calendar::new(PeriodKind::Day, "Nowhere").is_err());
        assert!(Calendar::new(PeriodKind::Day, "UTC").unwrap().bounds(f64::NAN).is_none());
    }
}
