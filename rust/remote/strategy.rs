//! A Jaeger sampling strategy document, read and checked: what a strategy
//! server (Jaeger's `/sampling` endpoint on port 5778, the Collector's
//! `jaegerremotesampling` extension) or a strategy file says. Both JSON
//! spellings seen in the wild are read (camelCase and snake_case keys, the
//! strategy type as a name or as a number, or missing when per-operation
//! strategies are given), and so is the strategies file a Jaeger collector is
//! configured with (`service_strategies` and `default_strategy`), from which
//! the service's entry is taken. A document with any bad value is refused whole.

use crate::config::ConfigError;
use crate::data::{Data, Path};
use crate::words::{plain, py_float};

/// More per-operation entries than this is not a strategy but a mistake (or an attack).
pub const MAX_DOCUMENT_OPERATIONS: usize = 100_000;

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
        other => Err(path.error(format!("expected an object, got {}", other.kind()))),
    }
}

fn number(path: &Path, data: &Data) -> Result<f64, ConfigError> {
    let value = match data {
        Data::Int(i) => *i as f64,
        Data::Float(f) => *f,
        // protojson writes 64-bit integers as strings.
        Data::Str(text) => text.trim().parse::<f64>().map_err(|_| path.error(format!("{text:?} is not a number")))?,
        other => return Err(path.error(format!("expected a number, got {}", other.kind()))),
    };
    if !value.is_finite() {
        return Err(path.error(format!("{value} is not a finite number")));
    }
    Ok(value)
}

fn probability(path: &Path, data: &Data) -> Result<f64, ConfigError> {
    let value = number(path, data)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(path.error(format!("{value} is out of range; expected a probability in [0, 1]")));
    }
    Ok(value)
}

fn rate(path: &Path, data: &Data) -> Result<f64, ConfigError> {
    let value = number(path, data)?;
    if value < 0.0 {
        return Err(path.error(format!("{value} is negative; expected traces per second >= 0")));
    }
    Ok(value)
}

/// `{"samplingRate": p}` under `key`.
fn sampling_rate(path: &Path, data: &Data) -> Result<f64, ConfigError> {
    let entries = map(path, data)?;
    let (key, value) = member(entries, "samplingRate").ok_or_else(|| path.error("missing samplingRate"))?;
    probability(&path.field(key), value)
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
        Data::Str(text) => format!("{text:?}"),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => f.to_string(),
        other => other.kind().to_owned(),
    }
}

/// Read a strategy document (JSON as plain data) for `service`.
pub fn parse_for(document: &Data, service: &str) -> Result<Strategy, ConfigError> {
    if let Data::Map(entries) = document {
        if entries.iter().any(|(key, _)| key == "service_strategies" || key == "default_strategy") {
            return from_strategies_file(entries, service);
        }
    }
    parse(document)
}

/// A Jaeger collector's strategies file: the entry for `service`, else the default.
fn from_strategies_file(entries: &[(String, Data)], service: &str) -> Result<Strategy, ConfigError> {
    let root = Path::root("");
    let default = entries.iter().find(|(key, _)| key == "default_strategy").map(|(_, value)| value);
    let mut chosen = None;
    if let Some((_, list)) = entries.iter().find(|(key, _)| key == "service_strategies") {
        let path = root.member("service_strategies");
        let Data::List(items) = list else {
            return Err(path.error(format!("expected a list, got {}", list.kind())));
        };
        for (i, item) in items.iter().enumerate() {
            let fields = map(&path.index(i), item)?;
            if matches!(fields.iter().find(|(k, _)| k == "service"), Some((_, Data::Str(name))) if name == service) {
                chosen = Some((path.index(i), item));
            }
        }
    }
    let (path, entry) = match (chosen, default) {
        (Some(found), _) => found,
        (None, Some(default)) => (root.member("default_strategy"), default),
        (None, None) => return Err(root.error(format!("no entry for service {service:?} and no default_strategy"))),
    };
    let fields = map(&path, entry)?;
    let param = |name: &str| -> Result<f64, ConfigError> {
        let (_, value) = fields.iter().find(|(k, _)| k == name).ok_or_else(|| path.error(format!("missing {name}")))?;
        number(&path.field(name), value)
    };
    let kind = match fields.iter().find(|(k, _)| k == "type") {
        Some((_, Data::Str(kind))) => kind.to_ascii_lowercase(),
        Some((_, other)) => return Err(path.field("type").error(format!("expected a string, got {}", other.kind()))),
        None => "probabilistic".to_owned(),
    };
    match kind.as_str() {
        "ratelimiting" | "rate_limiting" => {
            let value = param("param")?;
            if value < 0.0 {
                return Err(path.field("param").error(format!("{value} is negative; expected traces per second >= 0")));
            }
            Ok(Strategy::RateLimiting(value))
        }
        "probabilistic" => {
            let p = param("param")?;
            if !(0.0..=1.0).contains(&p) {
                return Err(path.field("param").error(format!("{p} is out of range; expected a probability in [0, 1]")));
            }
            // A service without operation strategies takes the default's, as Jaeger does.
            let own = fields.iter().find(|(k, _)| k == "operation_strategies").map(|(_, v)| (path.field("operation_strategies"), v));
            let inherited = || {
                let Some(Data::Map(default)) = default else { return None };
                default
                    .iter()
                    .find(|(k, _)| k == "operation_strategies")
                    .map(|(_, v)| (root.member("default_strategy").field("operation_strategies"), v))
            };
            let Some((list_path, list)) = own.or_else(inherited) else { return Ok(Strategy::Probabilistic(p)) };
            let Data::List(items) = list else {
                return Err(list_path.error(format!("expected a list, got {}", list.kind())));
            };
            if items.len() > MAX_DOCUMENT_OPERATIONS {
                return Err(list_path.error(format!("{} operations is too many; expected at most {MAX_DOCUMENT_OPERATIONS}", items.len())));
            }
            let mut operations = Vec::with_capacity(items.len());
            let mut seen = rustc_hash::FxHashSet::default();
            for (i, item) in items.iter().enumerate() {
                let item_path = list_path.index(i);
                let item_fields = map(&item_path, item)?;
                let name = match item_fields.iter().find(|(k, _)| k == "operation") {
                    Some((_, Data::Str(name))) => name.clone(),
                    _ => return Err(item_path.error("missing operation (a string)")),
                };
                let (_, value) = item_fields.iter().find(|(k, _)| k == "param").ok_or_else(|| item_path.error("missing param"))?;
                let probability = probability(&item_path.field("param"), value)?;
                if !seen.insert(name.clone()) {
                    return Err(item_path.error(format!("operation {name:?} is listed twice")));
                }
                operations.push(Operation { name, probability });
            }
            Ok(Strategy::PerOperation { default_probability: p, lower_bound: 0.0, operations })
        }
        other => Err(path.field("type").error(format!("{other:?} is not a strategy type; expected \"probabilistic\" or \"ratelimiting\""))),
    }
}

/// Read a strategy document as a strategy server sends it (JSON as plain data).
pub fn parse(document: &Data) -> Result<Strategy, ConfigError> {
    let root = Path::root("");
    let entries = map(&Path::root("(document)"), document)?;
    let declared = member(entries, "strategyType").map(|(key, value)| kind(&root.member(key), value)).transpose()?;
    if let Some((key, operations)) = member(entries, "operationSampling") {
        // Per-operation strategies win, as in Jaeger's own clients.
        let path = root.member(key);
        let fields = map(&path, operations)?;
        let default_probability = match member(fields, "defaultSamplingProbability") {
            Some((k, v)) => probability(&path.field(k), v)?,
            None => return Err(path.error("missing defaultSamplingProbability")),
        };
        let lower_bound =
            member(fields, "defaultLowerBoundTracesPerSecond").map(|(k, v)| rate(&path.field(k), v)).transpose()?.unwrap_or(0.0);
        let mut parsed: Vec<Operation> = Vec::new();
        if let Some((k, list)) = member(fields, "perOperationStrategies") {
            let list_path = path.field(k);
            let Data::List(items) = list else {
                return Err(list_path.error(format!("expected a list, got {}", list.kind())));
            };
            if items.len() > MAX_DOCUMENT_OPERATIONS {
                return Err(list_path.error(format!("{} operations is too many; expected at most {MAX_DOCUMENT_OPERATIONS}", items.len())));
            }
            let mut seen = rustc_hash::FxHashSet::default();
            for (i, item) in items.iter().enumerate() {
                let item_path = list_path.index(i);
                let item_fields = map(&item_path, item)?;
                let name = match member(item_fields, "operation") {
                    Some((_, Data::Str(name))) => name.clone(),
                    Some((k, other)) => return Err(item_path.field(k).error(format!("expected a string, got {}", other.kind()))),
                    None => return Err(item_path.error("missing operation")),
                };
                let probability = match member(item_fields, "probabilisticSampling") {
                    Some((k, v)) => sampling_rate(&item_path.field(k), v)?,
                    None => return Err(item_path.error("missing probabilisticSampling")),
                };
                if !seen.insert(name.clone()) {
                    return Err(item_path.error(format!("operation {name:?} is listed twice")));
                }
                parsed.push(Operation { name, probability });
            }
        }
        return Ok(Strategy::PerOperation { default_probability, lower_bound, operations: parsed });
    }
    let limiting = member(entries, "rateLimitingSampling");
    let probabilistic = member(entries, "probabilisticSampling");
    let kind = match declared {
        Some(kind) => kind,
        None if limiting.is_some() && probabilistic.is_none() => Kind::RateLimiting,
        None => Kind::Probabilistic,
    };
    match kind {
        Kind::RateLimiting => {
            let (key, value) = limiting.ok_or_else(|| root.error("a RATE_LIMITING strategy without rateLimitingSampling"))?;
            let path = root.member(key);
            let fields = map(&path, value)?;
            let (k, v) = member(fields, "maxTracesPerSecond").ok_or_else(|| path.error("missing maxTracesPerSecond"))?;
            Ok(Strategy::RateLimiting(rate(&path.field(k), v)?))
        }
        Kind::Probabilistic => {
            let (key, value) = probabilistic
                .ok_or_else(|| root.error("no strategy: expected probabilisticSampling, rateLimitingSampling or operationSampling"))?;
            Ok(Strategy::Probabilistic(sampling_rate(&root.member(key), value)?))
        }
    }
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

    #[test]
    fn both_spellings_and_both_type_encodings() {
        for text in [
            r#"{"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.25}}"#,
            r#"{"strategyType": 0, "probabilisticSampling": {"samplingRate": 0.25}}"#,
            r#"{"strategy_type": "PROBABILISTIC", "probabilistic_sampling": {"sampling_rate": 0.25}}"#,
            r#"{"probabilisticSampling": {"samplingRate": 0.25}}"#,
        ] {
            assert_eq!(parse(&json(text)).unwrap(), Strategy::Probabilistic(0.25), "{text}");
        }
        for text in [
            r#"{"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 7}}"#,
            r#"{"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 7}}"#,
            r#"{"rate_limiting_sampling": {"max_traces_per_second": "7"}}"#,
        ] {
            assert_eq!(parse(&json(text)).unwrap(), Strategy::RateLimiting(7.0), "{text}");
        }
    }

    #[test]
    fn per_operation_strategies_win_even_without_a_type() {
        let text = r#"{"probabilisticSampling": {"samplingRate": 1.0},
            "operationSampling": {"defaultSamplingProbability": 0.1, "defaultLowerBoundTracesPerSecond": 0.5,
              "perOperationStrategies": [{"operation": "GET /a", "probabilisticSampling": {"samplingRate": 0.9}}]}}"#;
        assert_eq!(
            parse(&json(text)).unwrap(),
            Strategy::PerOperation {
                default_probability: 0.1,
                lower_bound: 0.5,
                operations: vec![Operation { name: "GET /a".into(), probability: 0.9 }]
            }
        );
    }

    #[test]
    fn a_collector_strategies_file_gives_the_service_entry_or_the_default() {
        let text = r#"{
            "service_strategies": [
                {"service": "checkout", "type": "probabilistic", "param": 0.8,
                 "operation_strategies": [{"operation": "GET /pay", "type": "probabilistic", "param": 1.0}]},
                {"service": "search", "type": "ratelimiting", "param": 5}
            ],
            "default_strategy": {"type": "probabilistic", "param": 0.1,
                "operation_strategies": [{"operation": "/health", "type": "probabilistic", "param": 0.0}]}
        }"#;
        let doc = json(text);
        assert_eq!(
            parse_for(&doc, "checkout").unwrap(),
            Strategy::PerOperation {
                default_probability: 0.8,
                lower_bound: 0.0,
                operations: vec![Operation { name: "GET /pay".into(), probability: 1.0 }]
            }
        );
        assert_eq!(parse_for(&doc, "search").unwrap(), Strategy::RateLimiting(5.0));
        assert_eq!(
            parse_for(&doc, "other").unwrap(),
            Strategy::PerOperation {
                default_probability: 0.1,
                lower_bound: 0.0,
                operations: vec![Operation { name: "/health".into(), probability: 0.0 }]
            }
        );
        let error = parse_for(&json(r#"{"service_strategies": []}"#), "x").unwrap_err().to_string();
        assert!(error.contains("no entry for service \"x\""), "{error}");
    }

    #[test]
    fn bad_documents_are_refused_whole() {
        let cases = [
            (r#"{"probabilisticSampling": {"samplingRate": 1.5}}"#, "1.5 is out of range"),
            (r#"{"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": -1}}"#, "-1 is negative"),
            (r#"{"strategyType": "ADAPTIVE"}"#, "is not a strategy type"),
            (r#"{}"#, "no strategy"),
            (r#"[1, 2]"#, "expected an object"),
            (
                r#"{"operationSampling": {"defaultSamplingProbability": 0.1, "perOperationStrategies": [
                    {"operation": "a", "probabilisticSampling": {"samplingRate": 0.5}},
                    {"operation": "b", "probabilisticSampling": {"samplingRate": 2}}]}}"#,
                "perOperationStrategies[1]",
            ),
            (
                r#"{"operationSampling": {"defaultSamplingProbability": 0.1, "perOperationStrategies": [
                    {"operation": "a", "probabilisticSampling": {"samplingRate": 0.5}},
                    {"operation": "a", "probabilisticSampling": {"samplingRate": 0.4}}]}}"#,
                "listed twice",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(&json(text)).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
