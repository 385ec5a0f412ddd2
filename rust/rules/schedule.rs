//! Time-of-day multipliers in a named IANA time zone. The local hour comes
//! from the tz database, so DST changes are handled by construction; it is
//! cached per UTC quarter hour (every current zone offset is a multiple of 15
//! minutes, so the local hour cannot change inside one) in a single atomic.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::config::ConfigError;
use crate::data::{self, Data, Fields, Path};

const QUARTER_HOUR: f64 = 900.0;
const EMPTY: u64 = u64::MAX;

#[derive(Debug)]
pub struct Schedule {
    zone_name: String,
    zone: TimeZone,
    factor_by_hour: [f64; 24],
    windows: Vec<Window>,
    /// (quarter-hour index << 5) | local hour, or EMPTY.
    cache: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: u8,
    pub end: u8,
    pub factor: f64,
}

impl Schedule {
    pub fn new(zone_name: &str, windows: Vec<Window>) -> Result<Schedule, String> {
        let zone = TimeZone::get(zone_name).map_err(|_| {
            format!("unknown time zone {}; expected an IANA name such as \"Europe/Berlin\" or \"UTC\"", crate::words::quoted(zone_name))
        })?;
        let mut factor_by_hour = [f64::NAN; 24];
        for window in &windows {
            for hour in hours(window.start, window.end) {
                if !factor_by_hour[hour].is_nan() {
                    return Err(format!("hour {hour} is covered by more than one window; windows must not overlap"));
                }
                factor_by_hour[hour] = window.factor;
            }
        }
        let missing: Vec<String> = (0..24).filter(|h| factor_by_hour[*h].is_nan()).map(|h| h.to_string()).collect();
        if !missing.is_empty() {
            return Err(format!("hours {} are not covered; windows must cover all 24 hours", missing.join(", ")));
        }
        Ok(Schedule { zone_name: zone_name.to_owned(), zone, factor_by_hour, windows, cache: AtomicU64::new(EMPTY) })
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The multiplier in force at Unix time `now`. A non-finite or
    /// out-of-range time gets a factor of 1.
    pub fn factor_at(&self, now: f64) -> f64 {
        match self.local_hour(now) {
            Some(hour) => self.factor_by_hour[hour as usize],
            None => 1.0,
        }
    }

    pub fn local_hour(&self, now: f64) -> Option<u8> {
        if !now.is_finite() {
            return None;
        }
        let quarter = now / QUARTER_HOUR;
        if !(0.0..(1u64 << 50) as f64).contains(&quarter) {
            return self.compute_hour(now);
        }
        // Truncation is the floor for non-negative values.
        let quarter = quarter as u64;
        let cached = self.cache.load(Relaxed);
        if cached != EMPTY && cached >> 5 == quarter {
            return Some((cached & 0x1f) as u8);
        }
        let hour = self.compute_hour(now)?;
        self.cache.store((quarter << 5) | u64::from(hour), Relaxed);
        Some(hour)
    }

    fn compute_hour(&self, now: f64) -> Option<u8> {
        let seconds = now.floor() as i64;
        let timestamp = Timestamp::from_second(seconds).ok()?;
        Some(self.zone.to_datetime(timestamp).hour() as u8)
    }
}

/// The hours of a window [start, end), wrapping past midnight when end <= start.
fn hours(start: u8, end: u8) -> Vec<usize> {
    if start < end {
        (start as usize..end as usize).collect()
    } else {
        (start as usize..24).chain(0..end as usize).collect()
    }
}

/// `{"timezone": "Asia/Seoul", "windows": [{"start": 9, "end": 18, "factor": 1.5}, ...]}`
pub fn parse(path: &Path, spec: &Data) -> Result<Schedule, ConfigError> {
    let mut fields = Fields::new(path, spec)?;
    let (zone_path, zone) =
        fields.take("timezone").ok_or_else(|| path.error("missing field timezone (an IANA zone name such as \"UTC\")"))?;
    let zone = data::string(&zone_path, zone)?;
    let (windows_path, windows_data) =
        fields.take("windows").ok_or_else(|| path.error("missing field windows (a list of {start, end, factor})"))?;
    fields.finish(&["timezone", "windows"])?;
    let mut windows = Vec::new();
    for (i, window) in data::list(&windows_path, windows_data)?.iter().enumerate() {
        let window_path = windows_path.index(i);
        let mut fields = Fields::new(&window_path, window)?;
        let hour = |name: &str, max: i64, fields: &mut Fields| -> Result<u8, ConfigError> {
            let (p, value) = fields.take(name).ok_or_else(|| window_path.error(format!("missing field {name}")))?;
            match value {
                Data::Int(h) if (0..=max).contains(h) => Ok(*h as u8),
                other => Err(p.error(format!("{} is not an hour; expected a whole number from 0 to {max}", other.show()))),
            }
        };
        let start = hour("start", 23, &mut fields)?;
        let end = hour("end", 24, &mut fields)?;
        let (factor_path, factor) = fields.take("factor").ok_or_else(|| window_path.error("missing field factor"))?;
        let factor = data::number(&factor_path, factor)?;
        if factor < 0.0 {
            return Err(factor_path.error(format!("{} is negative; expected a multiplier >= 0", crate::words::plain(factor))));
        }
        fields.finish(&["start", "end", "factor"])?;
        if start == end % 24 && !(start == 0 && end == 24) {
            return Err(
                window_path.error(format!("start {start} and end {end} make an empty window; use start 0, end 24 for the whole day"))
            );
        }
        windows.push(Window { start, end: end % 24, factor });
    }
    if windows.is_empty() {
        return Err(windows_path.error("expected at least one window"));
    }
    Schedule::new(zone, windows).map_err(|message| {
        if message.starts_with("unknown time zone") {
            zone_path.error(message)
        } else {
            windows_path.error(message)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_schedule(zone: &str) -> Schedule {
        Schedule::new(
            zone,
            vec![
                Window { start: 9, end: 18, factor: 1.5 },
                Window { start: 18, end: 23, factor: 1.0 },
                Window { start: 23, end: 9, factor: 0.5 },
            ],
        )
        .unwrap()
    }

    fn unix(text: &str) -> f64 {
        text.parse::<Timestamp>().unwrap().as_second() as f64
    }

    #[test]
    fn seed_windows_in_utc() {
        let schedule = seed_schedule("UTC");
        assert_eq!(schedule.factor_at(unix("2026-01-15T08:59:59Z")), 0.5);
        assert_eq!(schedule.factor_at(unix("2026-01-15T09:00:00Z")), 1.5);
        assert_eq!(schedule.factor_at(unix("2026-01-15T17:59:59Z")), 1.5);
        assert_eq!(schedule.factor_at(unix("2026-01-15T18:00:00Z")), 1.0);
        assert_eq!(schedule.factor_at(unix("2026-01-15T23:00:00Z")), 0.5);
        assert_eq!(schedule.factor_at(unix("2026-01-16T00:30:00Z")), 0.5);
    }

    #[test]
    fn zone_offsets_and_dst() {
        let seoul = seed_schedule("Asia/Seoul"); // UTC+9, no DST
        assert_eq!(seoul.factor_at(unix("2026-06-01T00:00:00Z")), 1.5); // 09:00 KST
        let new_york = seed_schedule("America/New_York");
        // Spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
        assert_eq!(new_york.local_hour(unix("2026-03-08T06:59:59Z")), Some(1));
        assert_eq!(new_york.local_hour(unix("2026-03-08T07:00:00Z")), Some(3));
        // 09:00 local is 14:00Z in winter and 13:00Z in summer.
        assert_eq!(new_york.factor_at(unix("2026-03-07T13:30:00Z")), 0.5);
        assert_eq!(new_york.factor_at(unix("2026-03-09T13:30:00Z")), 1.5);
        // Fall back 2026-11-01: 01:00-02:00 local happens twice.
        assert_eq!(new_york.local_hour(unix("2026-11-01T05:30:00Z")), Some(1));
        assert_eq!(new_york.local_hour(unix("2026-11-01T06:30:00Z")), Some(1));
        assert_eq!(new_york.local_hour(unix("2026-11-01T07:30:00Z")), Some(2));
        // A half-hour zone: India is UTC+5:30.
        let kolkata = seed_schedule("Asia/Kolkata");
        assert_eq!(kolkata.local_hour(unix("2026-01-01T03:29:59Z")), Some(8));
        assert_eq!(kolkata.local_hour(unix("2026-01-01T03:30:00Z")), Some(9));
    }

    #[test]
    fn cache_follows_time_in_both_directions() {
        let schedule = seed_schedule("UTC");
        let nine = unix("2026-01-15T09:00:00Z");
        assert_eq!(schedule.factor_at(nine), 1.5);
        assert_eq!(schedule.factor_at(nine - 1.0), 0.5, "clock stepped back");
        assert_eq!(schedule.factor_at(nine + 9.0 * 3600.0), 1.0);
        assert_eq!(schedule.factor_at(f64::NAN), 1.0);
        assert_eq!(schedule.factor_at(-1e300), 1.0);
    }

    #[test]
    fn gaps_overlaps_and_bad_zones_are_rejected() {
        let gap = Schedule::new("UTC", vec![Window { start: 9, end: 18, factor: 1.0 }]).unwrap_err();
        assert!(gap.starts_with("hours 0, 1, 2, 3, 4, 5, 6, 7, 8, 18"), "{gap}");
        let overlap =
            Schedule::new("UTC", vec![Window { start: 0, end: 12, factor: 1.0 }, Window { start: 11, end: 0, factor: 1.0 }]).unwrap_err();
        assert_eq!(overlap, "hour 11 is covered by more than one window; windows must not overlap");
        assert!(Schedule::new("Mars/Olympus", vec![]).unwrap_err().starts_with("unknown time zone \"Mars/Olympus\""));
        assert!(Schedule::new("UTC", vec![Window { start: 0, end: 0, factor: 2.0 }]).is_ok(), "0..0 wraps: whole day");
    }

    #[test]
    fn parse_reports_paths() {
        let path = Path::root("multipliers").index(1).field("schedule");
        let spec = |zone: &str, start: i64| {
            Data::Map(vec![
                ("timezone".into(), Data::Str(zone.into())),
                (
                    "windows".into(),
                    Data::List(vec![Data::Map(vec![
                        ("start".into(), Data::Int(start)),
                        ("end".into(), Data::Int(24)),
                        ("factor".into(), Data::Float(1.0)),
                    ])]),
                ),
            ])
        };
        assert!(parse(&path, &spec("UTC", 0)).is_ok());
        assert_eq!(
            parse(&path, &spec("Nowhere/Land", 0)).unwrap_err().to_string(),
            "multipliers[1].schedule.timezone: unknown time zone \"Nowhere/Land\"; expected an IANA name such as \"Europe/Berlin\" or \"UTC\""
        );
        assert_eq!(
            parse(&path, &spec("UTC", 25)).unwrap_err().to_string(),
            "multipliers[1].schedule.windows[0].start: 25 is not an hour; expected a whole number from 0 to 23"
        );
        assert!(parse(&path, &spec("UTC", 3))
            .unwrap_err()
            .to_string()
            .starts_with("multipliers[1].schedule.windows: hours 0, 1, 2 are not covered"));
    }
}
