//! A neutral tree for user configuration (what JSON, TOML, YAML and plain
//! Python data have in common), with helpers that read it and report mistakes
//! by their path, such as `rules[2].match["payment.amount"]`.

use std::fmt::Write as _;

use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Data>),
    /// Key order is kept: it can carry meaning (and reads back as written).
    Map(Vec<(String, Data)>),
}

impl Data {
    /// The word users see for this kind of value in error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Data::Null => "null",
            Data::Bool(_) => "a boolean",
            Data::Int(_) => "an integer",
            Data::Float(_) => "a number",
            Data::Str(_) => "a string",
            Data::List(_) => "a list",
            Data::Map(_) => "a mapping",
        }
    }

    /// A value as a message says what it got: its kind, and a scalar's value
    /// (`the string "0.5"`, `the integer 3`), clipped as `words::quoted` clips.
    pub fn described(&self) -> String {
        match self {
            Data::Null => "null".to_owned(),
            Data::Bool(b) => format!("the boolean {b}"),
            Data::Int(i) => format!("the integer {i}"),
            Data::Float(f) => format!("the number {}", crate::words::plain(*f)),
            Data::Str(s) => format!("the string {}", crate::words::quoted(s)),
            Data::List(items) => format!("a list of {}", items.len()),
            Data::Map(_) => "a mapping".to_owned(),
        }
    }

    /// Short rendering of a value for messages.
    pub fn show(&self) -> String {
        match self {
            Data::Null => "null".to_owned(),
            Data::Bool(b) => b.to_string(),
            Data::Int(i) => i.to_string(),
            Data::Float(f) => f.to_string(),
            Data::Str(s) => crate::words::quoted(s),
            Data::List(items) => format!("a list of {}", items.len()),
            Data::Map(_) => "a mapping".to_owned(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Data::Int(i) => Some(*i as f64),
            Data::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// A location in the configuration tree, rendered like `rules[2].match["a.b"]`.
#[derive(Debug, Clone)]
pub struct Path(String);

impl Path {
    pub fn root(name: &str) -> Path {
        Path(name.to_owned())
    }

    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// A field with a plain identifier name: `.field`.
    pub fn field(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_owned())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// A key of a user mapping: `.name` when it is a plain identifier, else `["a.b"]`.
    pub fn member(&self, name: &str) -> Path {
        let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            self.field(name)
        } else {
            self.key(name)
        }
    }

    /// A user-chosen key (an attribute name): `["key"]`.
    pub fn key(&self, name: &str) -> Path {
        let mut out = self.0.clone();
        let _ = write!(out, "[{name:?}]");
        Path(out)
    }

    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.0, message)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads a mapping's fields, and afterwards rejects any it did not ask for
/// (so a typo such as `rat: 0.5` is an error, not a silent default).
pub struct Fields<'a> {
    path: Path,
    entries: &'a [(String, Data)],
    used: Vec<bool>,
}

impl<'a> Fields<'a> {
    pub fn new(path: &Path, data: &'a Data) -> Result<Fields<'a>, ConfigError> {
        match data {
            Data::Map(entries) => Ok(Fields { path: path.clone(), entries, used: vec![false; entries.len()] }),
            other => Err(path.error(format!("expected a mapping, got {}", other.described()))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn take(&mut self, name: &str) -> Option<(Path, &'a Data)> {
        let position = self.entries.iter().position(|(key, _)| key == name)?;
        self.used[position] = true;
        Some((self.path.field(name), &self.entries[position].1))
    }

    /// The error for a required field that is absent: `message`, plus a "did
    /// you mean" when a field nobody took is a likely typo of one of `names`
    /// (`defualt_rate` for `default_rate`).
    pub fn missing(&self, names: &[&str], message: &str) -> ConfigError {
        let typo = self
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.used[*i])
            .find_map(|(_, (key, _))| suggestion(key, names).map(|name| (key.as_str(), name)));
        match typo {
            Some((key, name)) => self.path.error(format!("{message} ({key:?} is there: did you mean {name:?}?)")),
            None => self.path.error(message),
        }
    }

    /// Fail on any field nobody took, naming the ones that are valid here.
    pub fn finish(self, valid: &[&str]) -> Result<(), ConfigError> {
        self.unknown(valid).map_or(Ok(()), Err)
    }

    /// The error for the first field nobody took, naming the ones that are
    /// valid here; None when every field was taken.
    pub fn unknown(&self, valid: &[&str]) -> Option<ConfigError> {
        let (key, _) = self.entries.iter().enumerate().find(|(i, _)| !self.used[*i])?.1;
        let hint = suggestion(key, valid).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
        Some(self.path.field(key).error(format!("unknown field{hint}; expected one of {}", valid.join(", "))))
    }
}

/// The valid name closest to a typo, if it is close enough to be a likely intent.
pub fn suggestion<'v>(typo: &str, valid: &[&'v str]) -> Option<&'v str> {
    valid
        .iter()
        .map(|candidate| (edit_distance(typo, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        // On a tie, prefer the name the typo is a prefix of ("rout" -> "route", not "root").
        .min_by_key(|(distance, candidate)| (*distance, !candidate.starts_with(typo)))
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

pub fn string<'a>(path: &Path, data: &'a Data) -> Result<&'a str, ConfigError> {
    match data {
        Data::Str(s) => Ok(s),
        other => Err(path.error(format!("expected a string, got {}", other.described()))),
    }
}

pub fn boolean(path: &Path, data: &Data) -> Result<bool, ConfigError> {
    match data {
        Data::Bool(b) => Ok(*b),
        other => Err(path.error(format!("expected true or false, got {}", other.described()))),
    }
}

pub fn number(path: &Path, data: &Data) -> Result<f64, ConfigError> {
    match data.as_f64() {
        Some(value) if value.is_finite() => Ok(value),
        Some(value) => Err(path.error(format!("{} is not a finite number", crate::words::plain(value)))),
        None => {
            // "0.5" in quotes (TOML, YAML and JSON all make it text) is the likely slip.
            let unquote = matches!(data, Data::Str(text) if text.trim().parse::<f64>().is_ok());
            let hint = if unquote { " (write a number without quotes)" } else { "" };
            Err(path.error(format!("expected a number, got {}{hint}", data.described())))
        }
    }
}

pub fn list<'a>(path: &Path, data: &'a Data) -> Result<&'a [Data], ConfigError> {
    match data {
        Data::List(items) => Ok(items),
        other => Err(path.error(format!("expected a list, got {}", other.described()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Data)]) -> Data {
        Data::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn paths_render_like_python_access() {
        let path = Path::root("rules").index(2).field("match").key("payment.amount");
        assert_eq!(path.as_str(), "rules[2].match[\"payment.amount\"]");
        assert_eq!(Path::root("rules").index(0).member("match").member("user.tier").as_str(), "rules[0].match[\"user.tier\"]");
        assert_eq!(Path::root("m").member("free").as_str(), "m.free");
    }

    #[test]
    fn unknown_fields_are_rejected_with_a_suggestion() {
        let data = map(&[("rat", Data::Float(0.5))]);
        let path = Path::root("rules").index(0);
        let mut fields = Fields::new(&path, &data).unwrap();
        assert!(fields.take("rate").is_none());
        let error = fields.finish(&["name", "rate", "action"]).unwrap_err();
        assert_eq!(error.to_string(), "rules[0].rat: unknown field (did you mean \"rate\"?); expected one of name, rate, action");
    }

    #[test]
    fn a_missing_field_names_the_typo_that_was_meant_for_it() {
        let data = map(&[("defualt_rate", Data::Float(0.1)), ("rules", Data::List(vec![]))]);
        let path = Path::root("rules");
        let mut fields = Fields::new(&path, &data).unwrap();
        assert!(fields.take("rules").is_some());
        let error = fields.missing(&["default_rate"], "missing field default_rate");
        assert_eq!(error.to_string(), "rules: missing field default_rate (\"defualt_rate\" is there: did you mean \"default_rate\"?)");
        // A field already taken is no typo, and an unrelated one gives no hint.
        let data = map(&[("rules", Data::List(vec![])), ("colour", Data::Int(1))]);
        let mut fields = Fields::new(&path, &data).unwrap();
        assert!(fields.take("rules").is_some());
        assert_eq!(fields.missing(&["default_rate"], "missing field default_rate").to_string(), "rules: missing field default_rate");
    }

    #[test]
    fn type_errors_name_the_expected_and_actual_kind() {
        let path = Path::root("default_rate");
        assert_eq!(number(&path, &Data::Str("x".into())).unwrap_err().to_string(), "default_rate: expected a number, got the string \"x\"");
        assert_eq!(
            number(&path, &Data::Str("0.5".into())).unwrap_err().to_string(),
            "default_rate: expected a number, got the string \"0.5\" (write a number without quotes)"
        );
        assert_eq!(boolean(&path, &Data::Int(1)).unwrap_err().to_string(), "default_rate: expected true or false, got the integer 1");
        assert!(number(&path, &Data::Float(f64::NAN)).is_err());
        assert_eq!(number(&path, &Data::Int(1)), Ok(1.0));
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggestion("actoin", &["action", "rate"]), Some("action"));
        assert_eq!(suggestion("zzzzzz", &["action", "rate"]), None);
        assert_eq!(suggestion("rout", &["root", "route"]), Some("route"));
    }
}
