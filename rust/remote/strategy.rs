//! A Jaeger sampling strategy document, read as Jaeger and its Go client read
//! it: what a strategy server (Jaeger's `/sampling` endpoint on port 5778, the
//! Collector's `jaegerremotesampling` extension) sends, and the strategies
//! file a Jaeger collector is configured with (`service_strategies` and
//! `default_strategy`), from which the service's response is made as Jaeger's
//! file store makes it.
//!
//! Both JSON spellings seen in the wild are read (camelCase and snake_case
//! keys, the strategy type as a name or as a number). What Jaeger's Go client
//! would use, is used: a probability out of [0, 1] is clamped to it, a
//! negative lower bound or rate keeps nothing more, an operation listed twice
//! takes its last entry, and per-operation strategies win over the strategy
//! type. Each such reading is noted (the poller logs the notes). What the Go
//! client would refuse (a value of the wrong type, a rate that is no integer
//! of 32 bits, a document with no strategy), is refused whole.

use crate::config::ConfigError;
use crate::data::{Data, Path};
use crate::words::{plain, py_float, quoted};

/// More per-operation entries than this is not a strategy but a mistake (or an attack).
pub const MAX_DOCUMENT_OPERATIONS: usize = 100_000;
/// Jaeger's default sampling probability (its `--sampling.default-sampling-probability`):
/// what its file store gives a service no entry, type or default covers.
pub const JAEGER_DEFAULT_PROBABILITY: f64 = 0.001;

/// One operation's entry of a per-operation strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub name: String,
    pub probability: f64,
}

/// What the document asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Keep this fraction of traces.
    Probabilistic(f64),
    /// Keep at most this many traces per second.
    RateLimiting(f64),
    /// A probability per span name, a default for the rest, and a lower bound
    /// of traces per second every operation gets whatever its probability.
    PerOperation { default_probability: f64, lower_bound: f64, operations: Vec<Operation> },
}

/// A strategy read from a document, with notes on what was read as Jaeger
/// reads it rather than as written (clamped values, defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub strategy: Strategy,
    pub notes: Vec<String>,
}

impl Strategy {
    /// Plain words, for `stats()` and logs.
    pub fn describe(&self) -> String {
        match self {
            Strategy::Probabilistic(p) => format!("probabilistic {}", py_float(*p)),
            Strategy::RateLimiting(rate) => format!("rate limiting {} traces/s", plain(*rate)),
            Strategy::PerOperation { default_probability, lower_bound, operations } => format!(
                "per operation: {} operations, default probability {}, lower bound {} traces/s",
                operations.len(),
                py_float(*default_probability),
                plain(*lower_bound)
            ),
        }
    }
}

/// A member by either spelling (`samplingRate` or `sampling_rate`).
fn member<'a>(entries: &'a [(String, Data)], camel: &str) -> Option<(&'a str, &'a Data)> {
    let snake: String =
        camel.chars().flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] }).collect();
    entries.iter().find(|(key, value)| (key == camel || *key == snake) && !matches!(value, Data::Null)).map(|(k, v)| (k.as_str(), v))
}

fn map<'a>(path: &Path, data: &'a Data) -> Result<&'a [(String, Data)], ConfigError> {
    match data {
        Data::Map(entries) => Ok(entries),
        other => Err(path.error(format!("expected an object, got {}", other.described()))),
    }
}

fn number(path: &Path, data: &Data) -> Result<f64, ConfigError> {
    let value = match data {
        Data::Int(i) => *i as f64,
        Data::Float(f) => *f,
        // protojson writes 64-bit integers as strings.
        Data::Str(text) => text.trim().parse::<f64>().map_err(|_| path.error(format!("{} is not a number", quoted(text))))?,
        other => return Err(path.error(format!("expected a number, got {}", other.described()))),
    };
    if !value.is_finite() {
        return Err(path.error(format!("{} is not a finite number", plain(value))));
    }
    Ok(value)
}

/// Notes on what was read differently from what was written.
struct Notes(Vec<String>);

impl Notes {
    /// A probability, clamped to [0, 1] as Jaeger's Go client clamps it.
    fn probability(&mut self, path: &Path, data: &Data) -> Result<f64, ConfigError> {
        let value = number(path, data)?;
        let clamped = value.clamp(0.0, 1.0);
        if clamped != value {
            self.0.push(format!(
                "{}: {} is out of [0, 1]; used as {} (as Jaeger's clients clamp it)",
                path.as_str(),
                plain(value),
                plain(clamped)
            ));
        }
        Ok(clamped)
    }

    /// Traces per second that may be fractional (a lower bound): below 0 keeps nothing more.
    fn rate(&mut self, path: &Path, data: &Data) -> Result<f64, ConfigError> {
        let value = number(path, data)?;
        if value < 0.0 {
            self.0.push(format!("{}: {} is negative; used as 0", path.as_str(), plain(value)));
            return Ok(0.0);
        }
        Ok(value)
    }

    /// A protocol `maxTracesPerSecond`: a 32-bit integer; 0 or less keeps nothing.
    fn max_traces(&mut self, path: &Path, data: &Data) -> Result<f64, ConfigError> {
        let value = number(path, data)?;
        if value.fract() != 0.0 || value.abs() > f64::from(i32::MAX) {
            return Err(path.error(format!("{} is not a 32-bit whole number, as Jaeger's protocol has here", plain(value))));
        }
        if value < 0.0 {
            self.0.push(format!("{}: {} is negative; keeps no trace", path.as_str(), plain(value)));
            return Ok(0.0);
        }
        Ok(value)
    }

    /// `{"samplingRate": p}` under `path`.
    fn sampling_rate(&mut self, path: &Path, data: &Data) -> Result<f64, ConfigError> {
        let entries = map(path, data)?;
        let (key, value) = member(entries, "samplingRate").ok_or_else(|| path.error("missing samplingRate"))?;
        self.probability(&path.field(key), value)
    }
}

#[derive(Debug, PartialEq)]
enum Kind {
    Probabilistic,
    RateLimiting,
}

fn kind(path: &Path, data: &Data) -> Result<Kind, ConfigError> {
    match data {
        Data::Int(0) => Ok(Kind::Probabilistic),
        Data::Int(1) => Ok(Kind::RateLimiting),
        Data::Str(name) if name.eq_ignore_ascii_case("PROBABILISTIC") => Ok(Kind::Probabilistic),
        Data::Str(name) if name.eq_ignore_ascii_case("RATE_LIMITING") => Ok(Kind::RateLimiting),
        other => {
            Err(path.error(format!("{} is not a strategy type; expected \"PROBABILISTIC\" (0) or \"RATE_LIMITING\" (1)", shown(other))))
        }
    }
}

fn shown(data: &Data) -> String {
    match data {
        Data::Str(text) => quoted(text),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => f.to_string(),
        other => other.kind().to_owned(),
    }
}

/// Operations with a name listed twice take the last entry (as Jaeger's client
/// keeps one sampler per name), at the first one's place.
fn last_wins(operations: Vec<Operation>, notes: &mut Notes, path: &Path) -> Vec<Operation> {
    let mut out: Vec<Operation> = Vec::with_capacity(operations.len());
    let mut index: rustc_hash::FxHashMap<String, usize> = rustc_hash::FxHashMap::default();
    for operation in operations {
        match index.get(&operation.name) {
            Some(&i) => {
                notes.0.push(format!("{}: operation {} is listed twice; its last entry is used", path.as_str(), quoted(&operation.name)));
                out[i] = operation;
            }
            None => {
                index.insert(operation.name.clone(), out.len());
                out.push(operation);
            }
        }
    }
    out
}

/// Read a strategy document (JSON as plain data) for `service`: a Jaeger
/// collector's strategies file, or a strategy server's response.
pub fn parse_for(document: &Data, service: &str) -> Result<Parsed, ConfigError> {
    if let Data::Map(entries) = document {
        if entries.iter().any(|(key, _)| key == "service_strategies" || key == "default_strategy") {
            return from_strategies_file(entries, service);
        }
    }
    parse(document)
}

/// One entry of a strategies file as Jaeger's file store reads it: the
/// strategy (`type` and `param`), and its operation strategies.
struct FileEntry {
    probability: Option<f64>,
    rate: Option<f64>,
    /// `(default probability, operations)` when the entry has operation strategies.
    operations: Option<(f64, Vec<Operation>)>,
}

/// A `type`/`param` pair: probabilistic `param`, or a rate limit of `param`
/// truncated to a 32-bit integer; a missing or unknown type is Jaeger's
/// default probability (0.001), as its file store makes it.
fn file_strategy(path: &Path, fields: &[(String, Data)], notes: &mut Notes) -> Result<(Option<f64>, Option<f64>), ConfigError> {
    let param = match fields.iter().find(|(k, _)| k == "param") {
        Some((_, Data::Null)) | None => 0.0,
        Some((_, value)) => number(&path.field("param"), value)?,
    };
    let kind = match fields.iter().find(|(k, _)| k == "type") {
        Some((_, Data::Str(kind))) => kind.as_str(),
        Some((_, Data::Null)) | None => "",
        Some((_, other)) => return Err(path.field("type").error(format!("expected a string, got {}", other.described()))),
    };
    Ok(match kind {
        "probabilistic" => (Some(param), None),
        "ratelimiting" => (None, Some(go_int32(param))),
        other => {
            notes.0.push(format!(
                "{}: {} is not a strategy type (\"probabilistic\" or \"ratelimiting\"); Jaeger's default probability {} is used",
                path.as_str(),
                if other.is_empty() { "a missing type".to_owned() } else { quoted(other) },
                plain(JAEGER_DEFAULT_PROBABILITY)
            ));
            (Some(JAEGER_DEFAULT_PROBABILITY), None)
        }
    })
}

/// Go's `int32(x)` of a float on the machines Jaeger runs on: truncated toward
/// zero; out of range, the lowest int32 (which, negative, keeps nothing).
fn go_int32(value: f64) -> f64 {
    let truncated = value.trunc();
    if truncated >= f64::from(i32::MIN) && truncated <= f64::from(i32::MAX) {
        truncated
    } else {
        f64::from(i32::MIN)
    }
}

fn file_entry(path: &Path, entry: &Data, notes: &mut Notes) -> Result<FileEntry, ConfigError> {
    let fields = map(path, entry)?;
    let (probability, rate) = file_strategy(path, fields, notes)?;
    let list = match fields.iter().find(|(k, _)| k == "operation_strategies") {
        Some((_, Data::Null)) | None => return Ok(FileEntry { probability, rate, operations: None }),
        Some((_, Data::List(items))) => items,
        Some((_, other)) => return Err(path.field("operation_strategies").error(format!("expected a list, got {}", other.described()))),
    };
    let list_path = path.field("operation_strategies");
    if list.is_empty() {
        return Ok(FileEntry { probability, rate, operations: None });
    }
    if list.len() > MAX_DOCUMENT_OPERATIONS {
        return Err(list_path.error(format!("{} operations is too many; expected at most {MAX_DOCUMENT_OPERATIONS}", list.len())));
    }
    // A rate-limited service's operations default to Jaeger's default probability.
    let default = probability.unwrap_or(JAEGER_DEFAULT_PROBABILITY);
    let mut operations = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let item_path = list_path.index(i);
        let item_fields = map(&item_path, item)?;
        let name = match item_fields.iter().find(|(k, _)| k == "operation") {
            Some((_, Data::Str(name))) => name.clone(),
            Some((_, Data::Null)) | None => String::new(),
            Some((_, other)) => return Err(item_path.field("operation").error(format!("expected a string, got {}", other.described()))),
        };
        match file_strategy(&item_path, item_fields, notes)? {
            (Some(p), _) => operations.push(Operation { name, probability: p }),
            (None, _) => notes.0.push(format!(
                "{}: operation {} has a rate limit, which operation strategies do not support; it gets the service's default probability {}, as in Jaeger",
                item_path.as_str(),
                quoted(&name),
                plain(default)
            )),
        }
    }
    Ok(FileEntry { probability, rate, operations: Some((default, operations)) })
}

/// A Jaeger collector's strategies file: the response Jaeger's file store
/// makes for `service` (its entry, else the default), read as Jaeger's client
/// reads it.
fn from_strategies_file(entries: &[(String, Data)], service: &str) -> Result<Parsed, ConfigError> {
    let root = Path::root("");
    let mut notes = Notes(Vec::new());
    let default = match entries.iter().find(|(key, _)| key == "default_strategy") {
        Some((_, Data::Null)) | None => None,
        Some((_, value)) => Some(file_entry(&root.member("default_strategy"), value, &mut notes)?),
    };
    let mut chosen = None;
    match entries.iter().find(|(key, _)| key == "service_strategies") {
        Some((_, Data::Null)) | None => {}
        Some((_, Data::List(items))) => {
            let path = root.member("service_strategies");
            for (i, item) in items.iter().enumerate() {
                let fields = map(&path.index(i), item)?;
                match fields.iter().find(|(k, _)| k == "service") {
                    Some((_, Data::Str(name))) if name == service => chosen = Some((path.index(i), item)),
                    Some((_, Data::Str(_) | Data::Null)) | None => {}
                    Some((_, other)) => {
                        return Err(path.index(i).field("service").error(format!("expected a string, got {}", other.described())))
                    }
                }
            }
        }
        Some((_, other)) => return Err(root.member("service_strategies").error(format!("expected a list, got {}", other.described()))),
    }
    let mut entry = match (chosen, default.as_ref()) {
        (Some((path, item)), default) => {
            let mut entry = file_entry(&path, item, &mut notes)?;
            // Operation strategies of the default apply to a service too, its own first.
            if let Some((default_probability, default_operations)) = default.and_then(|d| d.operations.as_ref()) {
                match &mut entry.operations {
                    None => {
                        let probability = entry.probability.unwrap_or(*default_probability);
                        entry.operations = Some((probability, default_operations.clone()));
                    }
                    Some((_, own)) => {
                        let names: rustc_hash::FxHashSet<String> = own.iter().map(|o| o.name.clone()).collect();
                        own.extend(default_operations.iter().filter(|o| !names.contains(&o.name)).cloned());
                    }
                }
            }
            entry
        }
        (None, Some(_)) => default.expect("matched Some"),
        (None, None) => FileEntry { probability: Some(JAEGER_DEFAULT_PROBABILITY), rate: None, operations: None },
    };
    let clamp = |p: f64, what: String, notes: &mut Notes| -> f64 {
        let clamped = p.clamp(0.0, 1.0);
        if clamped != p {
            notes.0.push(format!("{what}: {} is out of [0, 1]; used as {} (as Jaeger's clients clamp it)", plain(p), plain(clamped)));
        }
        clamped
    };
    // Jaeger's client: per-operation strategies win over the type.
    let strategy = match entry.operations.take() {
        Some((default_probability, operations)) => {
            let default_probability = clamp(default_probability, format!("service {service:?}: default probability"), &mut notes);
            let operations = operations
                .into_iter()
                .map(|op| Operation {
                    probability: clamp(op.probability, format!("service {service:?}: operation {}", quoted(&op.name)), &mut notes),
                    name: op.name,
                })
                .collect();
            let operations = last_wins(operations, &mut notes, &root.member("service_strategies"));
            Strategy::PerOperation { default_probability, lower_bound: 0.0, operations }
        }
        None => match (entry.probability, entry.rate) {
            (_, Some(rate)) => {
                if rate <= 0.0 {
                    notes.0.push(format!("service {service:?}: a rate limit of {} keeps no trace", plain(rate)));
                }
                Strategy::RateLimiting(rate.max(0.0))
            }
            (Some(p), None) => Strategy::Probabilistic(clamp(p, format!("service {service:?}: probability"), &mut notes)),
            (None, None) => Strategy::Probabilistic(JAEGER_DEFAULT_PROBABILITY),
        },
    };
    Ok(Parsed { strategy, notes: notes.0 })
}

/// Read a strategy document as a strategy server sends it (JSON as plain data).
pub fn parse(document: &Data) -> Result<Parsed, ConfigError> {
    let root = Path::root("");
    let mut notes = Notes(Vec::new());
    let entries = map(&Path::root("(document)"), document)?;
    let declared = member(entries, "strategyType").map(|(key, value)| kind(&root.member(key), value)).transpose()?;
    if let Some((key, operations)) = member(entries, "operationSampling") {
        // Per-operation strategies win, as in Jaeger's own clients.
        let path = root.member(key);
        let fields = map(&path, operations)?;
        let default_probability = match member(fields, "defaultSamplingProbability") {
            Some((k, v)) => notes.probability(&path.field(k), v)?,
            None => return Err(path.error("missing defaultSamplingProbability")),
        };
        let lower_bound =
            member(fields, "defaultLowerBoundTracesPerSecond").map(|(k, v)| notes.rate(&path.field(k), v)).transpose()?.unwrap_or(0.0);
        let mut parsed: Vec<Operation> = Vec::new();
        if let Some((k, list)) = member(fields, "perOperationStrategies") {
            let list_path = path.field(k);
            let Data::List(items) = list else {
                return Err(list_path.error(format!("expected a list, got {}", list.described())));
            };
            if items.len() > MAX_DOCUMENT_OPERATIONS {
                return Err(list_path.error(format!("{} operations is too many; expected at most {MAX_DOCUMENT_OPERATIONS}", items.len())));
            }
            for (i, item) in items.iter().enumerate() {
                let item_path = list_path.index(i);
                let item_fields = map(&item_path, item)?;
                let name = match member(item_fields, "operation") {
                    Some((_, Data::Str(name))) => name.clone(),
                    Some((k, other)) => return Err(item_path.field(k).error(format!("expected a string, got {}", other.described()))),
                    None => return Err(item_path.error("missing operation")),
                };
                let probability = match member(item_fields, "probabilisticSampling") {
                    Some((k, v)) => notes.sampling_rate(&item_path.field(k), v)?,
                    None => return Err(item_path.error("missing probabilisticSampling")),
                };
                parsed.push(Operation { name, probability });
            }
            parsed = last_wins(parsed, &mut notes, &list_path);
        }
        let strategy = Strategy::PerOperation { default_probability, lower_bound, operations: parsed };
        return Ok(Parsed { strategy, notes: notes.0 });
    }
    let limiting = member(entries, "rateLimitingSampling");
    let probabilistic = member(entries, "probabilisticSampling");
    let kind = match declared {
        Some(kind) => kind,
        None if limiting.is_some() && probabilistic.is_none() => Kind::RateLimiting,
        None => Kind::Probabilistic,
    };
    let strategy = match kind {
        Kind::RateLimiting => {
            let (key, value) = limiting.ok_or_else(|| root.error("a RATE_LIMITING strategy without rateLimitingSampling"))?;
            let path = root.member(key);
            let fields = map(&path, value)?;
            let (k, v) = member(fields, "maxTracesPerSecond").ok_or_else(|| path.error("missing maxTracesPerSecond"))?;
            Strategy::RateLimiting(notes.max_traces(&path.field(k), v)?)
        }
        Kind::Probabilistic => {
            let (key, value) = probabilistic
                .ok_or_else(|| root.error("no strategy: expected probabilisticSampling, rateLimitingSampling or operationSampling"))?;
            Strategy::Probabilistic(notes.sampling_rate(&root.member(key), value)?)
        }
    };
    Ok(Parsed { strategy, notes: notes.0 })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn json(text: &str) -> Data {
        fn convert(value: serde_json::Value) -> Data {
            match value {
                serde_json::Value::Null => Data::Null,
                serde_json::Value::Bool(b) => Data::Bool(b),
                serde_json::Value::Number(n) => n.as_i64().map_or_else(|| Data::Float(n.as_f64().unwrap()), Data::Int),
                serde_json::Value::String(s) => Data::Str(s),
                serde_json::Value::Array(items) => Data::List(items.into_iter().map(convert).collect()),
                serde_json::Value::Object(entries) => Data::Map(entries.into_iter().map(|(k, v)| (k, convert(v))).collect()),
            }
        }
        convert(serde_json::from_str(text).unwrap())
    }

    fn strategy(text: &str) -> Strategy {
        parse(&json(text)).unwrap().strategy
    }

    fn for_service(doc: &Data, service: &str) -> Strategy {
        parse_for(doc, service).unwrap().strategy
    }

    fn ops(default_probability: f64, operations: &[(&str, f64)]) -> Strategy {
        Strategy::PerOperation {
            default_probability,
            lower_bound: 0.0,
            operations: operations.iter().map(|(name, p)| Operation { name: (*name).into(), probability: *p }).collect(),
        }
    }

    #[test]
    fn both_spellings_and_both_type_encodings() {
        for text in [
            r#"{"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.25}}"#,
            r#"{"strategyType": 0, "probabilisticSampling": {"samplingRate": 0.25}}"#,
            r#"{"strategy_type": "PROBABILISTIC", "probabilistic_sampling": {"sampling_rate": 0.25}}"#,
            r#"{"probabilisticSampling": {"samplingRate": 0.25}}"#,
        ] {
            assert_eq!(strategy(text), Strategy::Probabilistic(0.25), "{text}");
        }
        for text in [
            r#"{"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 7}}"#,
            r#"{"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 7}}"#,
            r#"{"rate_limiting_sampling": {"max_traces_per_second": "7"}}"#,
        ] {
            assert_eq!(strategy(text), Strategy::RateLimiting(7.0), "{text}");
        }
    }

    #[test]
    fn per_operation_strategies_win_over_the_type() {
        // As Jaeger's file store answers for a rate-limited service with operations.
        let text = r#"{"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 3},
            "operationSampling": {"defaultSamplingProbability": 0.2, "defaultLowerBoundTracesPerSecond": 0.5,
              "perOperationStrategies": [{"operation": "/health", "probabilisticSampling": {"samplingRate": 0.1}}]}}"#;
        assert_eq!(
            strategy(text),
            Strategy::PerOperation {
                default_probability: 0.2,
                lower_bound: 0.5,
                operations: vec![Operation { name: "/health".into(), probability: 0.1 }]
            }
        );
    }

    #[test]
    fn what_jaegers_go_client_would_use_is_used_and_noted() {
        let parsed = parse(&json(
            r#"{"operationSampling": {"defaultSamplingProbability": 1.5, "defaultLowerBoundTracesPerSecond": -2,
                "perOperationStrategies": [
                  {"operation": "a", "probabilisticSampling": {"samplingRate": -0.1}},
                  {"operation": "b", "probabilisticSampling": {"samplingRate": 1.1}},
                  {"operation": "a", "probabilisticSampling": {"samplingRate": 0.4}}]}}"#,
        ))
        .unwrap();
        assert_eq!(parsed.strategy, ops(1.0, &[("a", 0.4), ("b", 1.0)]));
        assert_eq!(parsed.notes.len(), 5, "{:?}", parsed.notes);
        assert!(parsed.notes[0].contains("1.5 is out of [0, 1]; used as 1"), "{:?}", parsed.notes);
        assert!(parsed.notes.iter().any(|n| n.contains("operation \"a\" is listed twice")));
        assert_eq!(strategy(r#"{"probabilisticSampling": {"samplingRate": 7}}"#), Strategy::Probabilistic(1.0));
        assert_eq!(strategy(r#"{"rateLimitingSampling": {"maxTracesPerSecond": -1}}"#), Strategy::RateLimiting(0.0));
    }

    #[test]
    fn what_jaegers_go_client_would_refuse_is_refused_whole() {
        let cases = [
            (r#"{"strategyType": "ADAPTIVE"}"#, "is not a strategy type"),
            (r#"{}"#, "no strategy"),
            (r#"[1, 2]"#, "expected an object"),
            (r#"{"probabilisticSampling": {"samplingRate": "x"}}"#, "is not a number"),
            (r#"{"rateLimitingSampling": {"maxTracesPerSecond": 0.5}}"#, "not a 32-bit whole number"),
            (r#"{"rateLimitingSampling": {"maxTracesPerSecond": 3000000000}}"#, "not a 32-bit whole number"),
            (
                r#"{"operationSampling": {"defaultSamplingProbability": 0.1, "perOperationStrategies": [
                    {"operation": 5, "probabilisticSampling": {"samplingRate": 0.5}}]}}"#,
                "perOperationStrategies[0].operation",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(&json(text)).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    /// Jaeger's own `operation_strategies.json` fixture, as its file store and
    /// client read it (its provider_test's expectations).
    const OPERATION_STRATEGIES: &str = r#"{
        "default_strategy": {"type": "probabilistic", "param": 0.5, "operation_strategies": [
            {"operation": "op0", "type": "probabilistic", "param": 0.2},
            {"operation": "op6", "type": "probabilistic", "param": 0},
            {"operation": "spam", "type": "ratelimiting", "param": 1},
            {"operation": "op7", "type": "probabilistic", "param": 1}]},
        "service_strategies": [
            {"service": "foo", "type": "probabilistic", "param": 0.8, "operation_strategies": [
                {"operation": "op6", "type": "probabilistic", "param": 0.5},
                {"operation": "op1", "type": "probabilistic", "param": 0.2},
                {"operation": "op2", "type": "ratelimiting", "param": 10}]},
            {"service": "bar", "type": "ratelimiting", "param": 5, "operation_strategies": [
                {"operation": "op3", "type": "probabilistic", "param": 0.3},
                {"operation": "op4", "type": "ratelimiting", "param": 100},
                {"operation": "op5", "type": "probabilistic", "param": 0.4}]}]}"#;

    #[test]
    fn jaegers_operation_strategies_fixture() {
        let doc = json(OPERATION_STRATEGIES);
        // A rate-limited operation is dropped (the service default applies to it); the default's merge in after.
        assert_eq!(for_service(&doc, "foo"), ops(0.8, &[("op6", 0.5), ("op1", 0.2), ("op0", 0.2), ("op7", 1.0)]));
        // A rate-limited service with operations: the client uses the operations, at Jaeger's default 0.001.
        assert_eq!(for_service(&doc, "bar"), ops(0.001, &[("op3", 0.3), ("op5", 0.4), ("op0", 0.2), ("op6", 0.0), ("op7", 1.0)]));
        assert_eq!(for_service(&doc, "other"), ops(0.5, &[("op0", 0.2), ("op6", 0.0), ("op7", 1.0)]));
        let notes = parse_for(&doc, "foo").unwrap().notes;
        assert!(notes.iter().any(|n| n.contains("operation \"op2\" has a rate limit")), "{notes:?}");
    }

    #[test]
    fn a_service_without_operations_takes_the_defaults_with_its_own_probability() {
        // Jaeger's service_no_per_operation fixture: ServiceA probabilistic, ServiceB rate limited.
        let doc = json(
            r#"{"default_strategy": {"type": "probabilistic", "param": 0.2,
                   "operation_strategies": [{"operation": "/health", "type": "probabilistic", "param": 0.1}]},
                "service_strategies": [
                   {"service": "ServiceA", "type": "probabilistic", "param": 1.0},
                   {"service": "ServiceB", "type": "ratelimiting", "param": 3}]}"#,
        );
        assert_eq!(for_service(&doc, "ServiceA"), ops(1.0, &[("/health", 0.1)]));
        assert_eq!(for_service(&doc, "ServiceB"), ops(0.2, &[("/health", 0.1)]));
    }

    #[test]
    fn a_missing_or_unknown_type_is_jaegers_default_probability() {
        // Jaeger's missing-service-types case.
        let doc = json(
            r#"{"default_strategy": {"type": "probabilistic", "param": 0.5},
                "service_strategies": [
                   {"service": "foo", "operation_strategies": [{"operation": "op1", "type": "probabilistic", "param": 0.2}]},
                   {"service": "bar", "param": 0.9, "operation_strategies": [
                       {"operation": "op3", "type": "probabilistic", "param": 0.3},
                       {"operation": "op5", "type": "probabilistic", "param": 0.4}]},
                   {"service": "baz", "type": "adaptive", "param": 0.9}]}"#,
        );
        assert_eq!(for_service(&doc, "foo"), ops(0.001, &[("op1", 0.2)]));
        assert_eq!(for_service(&doc, "bar"), ops(0.001, &[("op3", 0.3), ("op5", 0.4)]));
        assert_eq!(for_service(&doc, "baz"), Strategy::Probabilistic(0.001));
        assert_eq!(for_service(&doc, "default"), Strategy::Probabilistic(0.5));
        assert!(parse_for(&doc, "baz").unwrap().notes.iter().any(|n| n.contains("\"adaptive\" is not a strategy type")));
    }

    #[test]
    fn rate_limits_in_a_file_are_whole_numbers_as_jaeger_stores_them() {
        let doc =
            |param: &str| json(&format!(r#"{{"service_strategies": [{{"service": "s", "type": "ratelimiting", "param": {param}}}]}}"#));
        assert_eq!(for_service(&doc("3.5"), "s"), Strategy::RateLimiting(3.0));
        assert_eq!(for_service(&doc("0.9"), "s"), Strategy::RateLimiting(0.0), "0.9 traces a second truncates to none");
        assert_eq!(for_service(&doc("-2"), "s"), Strategy::RateLimiting(0.0));
        assert_eq!(for_service(&doc("3000000000"), "s"), Strategy::RateLimiting(0.0), "int32 overflow: Go's lowest int32");
    }

    #[test]
    fn no_entry_and_no_default_is_jaegers_default() {
        assert_eq!(for_service(&json(r#"{"service_strategies": []}"#), "x"), Strategy::Probabilistic(0.001));
        assert_eq!(
            for_service(&json(r#"{"default_strategy": {"type": "probabilistic", "param": 1.5}}"#), "x"),
            Strategy::Probabilistic(1.0)
        );
    }

    #[test]
    fn a_strategies_file_with_values_of_the_wrong_type_is_refused() {
        for (text, expected) in [
            (r#"{"service_strategies": "x"}"#, "expected a list"),
            (r#"{"service_strategies": [{"service": "s", "type": 1}]}"#, "type: expected a string"),
            (r#"{"service_strategies": [{"service": "s", "type": "probabilistic", "param": "a"}]}"#, "is not a number"),
            (r#"{"default_strategy": {"type": "probabilistic", "param": 0.1, "operation_strategies": {}}}"#, "expected a list"),
        ] {
            let error = parse_for(&json(text), "s").unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
