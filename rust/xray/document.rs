//! What X-Ray sends, read as the AWS samplers read it: the rule records of
//! `GetSamplingRules` (all pages together) and the target documents of
//! `SamplingTargets`. A field of the wrong type, a rate out of [0, 1] or a
//! negative reservoir refuses the whole document (the state in force stays);
//! a rule with no name or of a version other than 1 is skipped, as the AWS
//! samplers skip it; fields this reader does not use are ignored, as X-Ray
//! adds fields over time.

use crate::config::ConfigError;
use crate::data::{number, string, Data, Path};
use crate::words::plain;

use super::pattern::Pattern;

/// More rules than this is not a configuration but a mistake (X-Ray allows 25 per account).
pub const MAX_RULES: usize = 10_000;
/// Attributes a rule may match on (X-Ray allows 5).
pub const MAX_RULE_ATTRIBUTES: usize = 64;

/// One sampling rule, as X-Ray defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub priority: i64,
    pub fixed_rate: f64,
    pub reservoir_size: u64,
    pub service_name: Pattern,
    pub service_type: Pattern,
    pub host: Pattern,
    pub http_method: Pattern,
    pub url_path: Pattern,
    pub resource_arn: Pattern,
    pub attributes: Vec<(String, Pattern)>,
}

/// The rules of a `GetSamplingRules` answer, in the order they are tried
/// (priority, then name), with what was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub rules: Vec<RuleSpec>,
    pub skipped: Vec<String>,
}

/// One `SamplingTargetDocuments` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    pub rule_name: String,
    pub fixed_rate: f64,
    /// Traces per second this client may keep from the reservoir (None: 0).
    pub reservoir_quota: Option<f64>,
    /// Unix seconds when the quota ends (None: it has already ended).
    pub reservoir_quota_ttl: Option<f64>,
    /// Seconds until X-Ray wants the next report.
    pub interval: Option<f64>,
}

/// A `SamplingTargets` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    pub targets: Vec<TargetSpec>,
    /// Unix seconds of the last change to the rules (newer than ours: fetch them again).
    pub last_rule_modification: f64,
    /// Statistics X-Ray did not take, by rule name.
    pub unprocessed: Vec<String>,
}

fn entries<'a>(path: &Path, data: &'a Data) -> Result<&'a [(String, Data)], ConfigError> {
    match data {
        Data::Map(entries) => Ok(entries),
        other => Err(path.error(format!("expected an object, got {}", other.described()))),
    }
}

fn get<'a>(entries: &'a [(String, Data)], key: &str) -> Option<&'a Data> {
    entries.iter().find(|(k, v)| k == key && !matches!(v, Data::Null)).map(|(_, v)| v)
}

fn list<'a>(path: &Path, data: &'a Data) -> Result<&'a [Data], ConfigError> {
    crate::data::list(path, data)
}

fn text_or_empty(entries: &[(String, Data)], path: &Path, key: &str) -> Result<String, ConfigError> {
    get(entries, key).map_or(Ok(String::new()), |v| string(&path.field(key), v).map(str::to_owned))
}

fn rate(path: &Path, data: &Data) -> Result<f64, ConfigError> {
    let value = number(path, data)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(path.error(format!("{} is out of range; expected a rate in [0, 1]", plain(value))));
    }
    Ok(value)
}

fn whole(path: &Path, data: &Data) -> Result<i64, ConfigError> {
    let value = number(path, data)?;
    if value.fract() != 0.0 {
        return Err(path.error(format!("{} is not a whole number", plain(value))));
    }
    if value.abs() > 9.0e15 {
        return Err(path.error(format!("{} is out of range; expected a whole number within ±9e15", plain(value))));
    }
    Ok(value as i64)
}

/// Read every page's `SamplingRuleRecords` (each page an object as X-Ray sends it).
pub fn parse_rules(pages: &[Data]) -> Result<Rules, ConfigError> {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for (page_index, page) in pages.iter().enumerate() {
        let page_path = Path::root(&format!("GetSamplingRules page {}", page_index + 1));
        let page_entries = entries(&page_path, page)?;
        let records_path = page_path.field("SamplingRuleRecords");
        let Some(records) = get(page_entries, "SamplingRuleRecords") else {
            return Err(records_path.error("missing; expected the list of sampling rule records"));
        };
        for (index, record) in list(&records_path, records)?.iter().enumerate() {
            let record_path = records_path.index(index);
            let Some(rule) = get(entries(&record_path, record)?, "SamplingRule") else {
                return Err(record_path.field("SamplingRule").error("missing; expected the rule of this record"));
            };
            if rules.len() >= MAX_RULES {
                return Err(records_path.error(format!("more than {MAX_RULES} rules")));
            }
            match parse_rule(&record_path.field("SamplingRule"), rule)? {
                Ok(spec) => rules.push(spec),
                Err(reason) => skipped.push(reason),
            }
        }
    }
    // Priority, then name by code point (as the AWS samplers sort).
    rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.name.cmp(&b.name)));
    Ok(Rules { rules, skipped })
}

/// A rule, or why it is skipped.
fn parse_rule(path: &Path, data: &Data) -> Result<Result<RuleSpec, String>, ConfigError> {
    let e = entries(path, data)?;
    let name = text_or_empty(e, path, "RuleName")?;
    let version = get(e, "Version").map(|v| whole(&path.field("Version"), v)).transpose()?.unwrap_or(0);
    let pattern = |key: &str| text_or_empty(e, path, key).map(|text| Pattern::new(&text));
    let fixed_rate = get(e, "FixedRate").map(|v| rate(&path.field("FixedRate"), v)).transpose()?.unwrap_or(0.0);
    let reservoir_size = match get(e, "ReservoirSize") {
        Some(v) => {
            let size = whole(&path.field("ReservoirSize"), v)?;
            u64::try_from(size).map_err(|_| path.field("ReservoirSize").error(format!("{size} is negative")))?
        }
        None => 0,
    };
    // No priority sorts after the default rule (10000), as the AWS samplers read it.
    let priority = get(e, "Priority").map(|v| whole(&path.field("Priority"), v)).transpose()?.unwrap_or(10_001);
    let mut attributes = Vec::new();
    if let Some(map) = get(e, "Attributes") {
        let attributes_path = path.field("Attributes");
        for (key, value) in entries(&attributes_path, map)? {
            if attributes.len() >= MAX_RULE_ATTRIBUTES {
                return Err(attributes_path.error(format!("more than {MAX_RULE_ATTRIBUTES} attributes")));
            }
            attributes.push((key.clone(), Pattern::new(string(&attributes_path.key(key), value)?)));
        }
    }
    let spec = RuleSpec {
        fixed_rate,
        reservoir_size,
        priority,
        service_name: pattern("ServiceName")?,
        service_type: pattern("ServiceType")?,
        host: pattern("Host")?,
        http_method: pattern("HTTPMethod")?,
        url_path: pattern("URLPath")?,
        resource_arn: pattern("ResourceARN")?,
        attributes,
        name,
    };
    if spec.name.is_empty() {
        return Ok(Err("a rule with no RuleName".to_owned()));
    }
    if version != 1 {
        return Ok(Err(format!("rule {}: Version {version} (only version 1 is defined)", crate::words::quoted(&spec.name))));
    }
    Ok(Ok(spec))
}

/// Read a `SamplingTargets` answer.
pub fn parse_targets(data: &Data) -> Result<Targets, ConfigError> {
    let path = Path::root("SamplingTargets");
    let e = entries(&path, data)?;
    let documents_path = path.field("SamplingTargetDocuments");
    let Some(documents) = get(e, "SamplingTargetDocuments") else {
        return Err(documents_path.error("missing; expected the list of sampling targets"));
    };
    let last_rule_modification = match get(e, "LastRuleModification") {
        Some(v) => number(&path.field("LastRuleModification"), v)?,
        None => return Err(path.field("LastRuleModification").error("missing; expected Unix seconds")),
    };
    let mut targets = Vec::new();
    for (index, document) in list(&documents_path, documents)?.iter().enumerate() {
        let p = documents_path.index(index);
        let d = entries(&p, document)?;
        let non_negative = |key: &str| -> Result<Option<f64>, ConfigError> {
            get(d, key)
                .map(|v| {
                    let value = number(&p.field(key), v)?;
                    if value < 0.0 {
                        return Err(p.field(key).error(format!("{} is negative", plain(value))));
                    }
                    Ok(value)
                })
                .transpose()
        };
        targets.push(TargetSpec {
            rule_name: text_or_empty(d, &p, "RuleName")?,
            fixed_rate: get(d, "FixedRate").map(|v| rate(&p.field("FixedRate"), v)).transpose()?.unwrap_or(0.0),
            reservoir_quota: non_negative("ReservoirQuota")?,
            reservoir_quota_ttl: get(d, "ReservoirQuotaTTL").map(|v| number(&p.field("ReservoirQuotaTTL"), v)).transpose()?,
            interval: non_negative("Interval")?.filter(|i| *i > 0.0),
        });
    }
    let mut unprocessed = Vec::new();
    if let Some(items) = get(e, "UnprocessedStatistics") {
        let items_path = path.field("UnprocessedStatistics");
        for (index, item) in list(&items_path, items)?.iter().enumerate() {
            let p = items_path.index(index);
            let d = entries(&p, item)?;
            unprocessed.push(format!("{} ({})", text_or_empty(d, &p, "RuleName")?, text_or_empty(d, &p, "ErrorCode")?));
        }
    }
    Ok(Targets { targets, last_rule_modification, unprocessed })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn json(text: &str) -> Data {
        crate::remote::strategy::tests::json(text)
    }

    pub fn rule(name: &str, priority: i64, extra: &str) -> String {
        format!(
            r#"{{"SamplingRule": {{"RuleName": "{name}", "Priority": {priority}, "FixedRate": 0.05, "ReservoirSize": 1,
               "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*",
               "ResourceARN": "*", "Version": 1{extra}}}}}"#
        )
    }

    #[test]
    fn rules_sorted_by_priority_then_name_across_pages() {
        let first =
            json(&format!(r#"{{"SamplingRuleRecords": [{}, {}], "NextToken": "x"}}"#, rule("b", 5, ""), rule("Default", 10000, "")));
        let second = json(&format!(r#"{{"SamplingRuleRecords": [{}, {}]}}"#, rule("a", 5, ""), rule("A", 5, "")));
        let read = parse_rules(&[first, second]).unwrap();
        let names: Vec<&str> = read.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["A", "a", "b", "Default"]);
    }

    #[test]
    fn unnamed_and_other_versions_are_skipped() {
        let doc = json(&format!(
            r#"{{"SamplingRuleRecords": [{}, {}, {}]}}"#,
            rule("", 1, ""),
            rule("v2", 1, "").replace(r#""Version": 1"#, r#""Version": 2"#),
            rule("ok", 1, r#", "Attributes": {"tier": "gold*"}, "CreatedAt": 1.5"#)
        ));
        let read = parse_rules(&[doc]).unwrap();
        assert_eq!(read.rules.len(), 1);
        assert_eq!(read.rules[0].attributes, vec![("tier".to_owned(), Pattern::new("gold*"))]);
        assert_eq!(read.skipped.len(), 2);
    }

    #[test]
    fn malformed_documents_are_refused_naming_the_field() {
        for (doc, expected) in [
            (r#"{"SamplingRules": []}"#, "SamplingRuleRecords: missing"),
            (r#"{"SamplingRuleRecords": {}}"#, "expected a list"),
            (r#"{"SamplingRuleRecords": [{"SamplingRule": {"RuleName": "r", "FixedRate": 1.5}}]}"#, "FixedRate: 1.5 is out of range"),
            (r#"{"SamplingRuleRecords": [{"SamplingRule": {"RuleName": "r", "ReservoirSize": -1}}]}"#, "-1 is negative"),
            (r#"{"SamplingRuleRecords": [{"SamplingRule": {"RuleName": 7}}]}"#, "RuleName: expected a string"),
            (r#"{"SamplingRuleRecords": [{"SamplingRule": {"RuleName": "r", "Attributes": {"k": 1}}}]}"#, "expected a string"),
            (r#"[1]"#, "expected an object"),
        ] {
            let error = parse_rules(&[json(doc)]).unwrap_err().to_string();
            assert!(error.contains(expected), "{doc}: {error}");
        }
    }

    #[test]
    fn targets() {
        let doc = json(
            r#"{"SamplingTargetDocuments": [{"RuleName": "r", "FixedRate": 0.1, "ReservoirQuota": 30,
                "ReservoirQuotaTTL": 1700000000.5, "Interval": 15}, {"RuleName": "q", "FixedRate": 0.2}],
                "LastRuleModification": 1600000000, "UnprocessedStatistics": [{"RuleName": "z", "ErrorCode": "400"}]}"#,
        );
        let read = parse_targets(&doc).unwrap();
        assert_eq!(read.targets[0].reservoir_quota, Some(30.0));
        assert_eq!(read.targets[0].interval, Some(15.0));
        assert_eq!(read.targets[1].reservoir_quota_ttl, None);
        assert_eq!(read.unprocessed, ["z (400)"]);
        assert!(parse_targets(&json(r#"{"SamplingTargetDocuments": []}"#)).unwrap_err().to_string().contains("LastRuleModification"));
        assert!(parse_targets(&json(r#"{"SamplingTargetDocuments": [{"FixedRate": -0.1}], "LastRuleModification": 0}"#)).is_err());
    }
}
