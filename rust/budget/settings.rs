//! A budget's settings as its store piece is named by them ("budget=100000
//! spans, period=month, ..."): written by the pacer, read back for `check`,
//! which tells an operator which other budgets a service's record holds.

use crate::store::Store;

/// Bumped whenever `PacerState`'s layout changes (1: the layout before it was
/// named): part of the settings a store piece is made with, so a host record
/// starts a new piece for it and a file store refuses the old one by name.
pub const STATE_LAYOUT: u32 = 2;

/// The settings that tell one budget's count from another's.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    pub budget: u64,
    pub period: String,
    pub timezone: String,
    pub cap_forced: bool,
    pub downstream: String,
}

impl BudgetSettings {
    /// The settings a fleet shares one budget by.
    pub fn text(&self) -> String {
        format!(
            "budget={} spans, period={}, timezone={}, cap_forced_keeps={}, downstream={}",
            self.budget, self.period, self.timezone, self.cap_forced, self.downstream
        )
    }

    /// The settings a store piece is made with: a new state layout makes a new piece.
    pub fn piece_text(&self) -> String {
        format!("{}, state layout={STATE_LAYOUT}", self.text())
    }

    /// The settings a piece of this state layout was made with (None for
    /// another layout, or text that is no budget's).
    pub fn parse(text: &str) -> Option<BudgetSettings> {
        let rest = text.strip_suffix(&format!(", state layout={STATE_LAYOUT}"))?;
        let mut fields = rest.split(", ");
        let mut field = |key: &str| fields.next()?.strip_prefix(key)?.strip_prefix('=').map(str::to_owned);
        let budget = field("budget")?.strip_suffix(" spans")?.parse().ok()?;
        let period = field("period")?;
        let timezone = field("timezone")?;
        let cap_forced = match field("cap_forced_keeps")?.as_str() {
            "true" => true,
            "false" => false,
            _ => return None,
        };
        let downstream = field("downstream")?;
        fields.next().is_none().then_some(BudgetSettings { budget, period, timezone, cap_forced, downstream })
    }
}

/// The budgets `store` holds pieces for, in every file of a host record.
pub fn budgets_in(store: &Store) -> Vec<BudgetSettings> {
    store.settings_of("budget").iter().filter_map(|text| BudgetSettings::parse(text)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_back_as_written_and_other_layouts_are_passed_over() {
        let settings = BudgetSettings {
            budget: 100_000,
            period: "month".into(),
            timezone: "America/New_York".into(),
            cap_forced: true,
            downstream: "follow".into(),
        };
        assert_eq!(BudgetSettings::parse(&settings.piece_text()), Some(settings.clone()));
        assert_eq!(BudgetSettings::parse(&settings.text()), None, "the layout before it was named");
        assert_eq!(BudgetSettings::parse(&settings.text().replace("100000", "100000.5")), None);
        let later = format!("{}, state layout={}", settings.text(), STATE_LAYOUT + 1);
        assert_eq!(BudgetSettings::parse(&later), None);
        assert_eq!(BudgetSettings::parse(&format!("{}, extra=1, state layout={STATE_LAYOUT}", settings.text())), None);
        assert_eq!(BudgetSettings::parse(""), None);
    }

    #[test]
    fn a_host_records_budgets_are_found_in_every_file_it_has() {
        let dir = tempfile::Builder::new().prefix("tracesieve-settings-").tempdir().unwrap();
        let url = format!("{}#service", dir.path().display());
        let store = Store::host_record(&url, Some("boot")).unwrap();
        assert_eq!(budgets_in(&store), vec![], "a new record holds none");
        let pieces = crate::store::file::MAX_PIECES + 6; // past the first file: into the first overflow file
        let settings: Vec<BudgetSettings> = (1..=pieces)
            .map(|budget| BudgetSettings {
                budget,
                period: "day".into(),
                timezone: "UTC".into(),
                cap_forced: false,
                downstream: "pace".into(),
            })
            .collect();
        for one in &settings {
            store.place("budget", &one.piece_text(), 8).unwrap().ready().unwrap();
        }
        store.place("rate_limit", "rate=5", 8).unwrap().ready().unwrap();
        assert!(dir.path().join("service+2.tracesieve").exists());
        assert!(!dir.path().join("service+3.tracesieve").exists());
        let again = Store::host_record(&url, Some("boot")).unwrap();
        assert_eq!(budgets_in(&again), settings);
        assert!(!dir.path().join("service+3.tracesieve").exists(), "reading made no file");
    }
}
