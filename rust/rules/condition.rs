//! One condition of a rule: a subject (an attribute, the span name, the route,
//! the kind, whether the span is a root) and an operator with its operand.
//! Values of an unexpected type simply do not match.

use wildmatch::WildMatch;

use crate::config::ConfigError;
use crate::data::{self, Data, Path};

/// A start attribute's value as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Present, but of a type rules do not compare (a sequence, say).
    Other,
}

/// A literal from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Literal {
    fn from_data(path: &Path, data: &Data) -> Result<Literal, ConfigError> {
        Ok(match data {
            Data::Str(s) => Literal::Str(s.clone()),
            Data::Int(i) => Literal::Int(*i),
            Data::Float(f) if f.is_finite() => Literal::Float(*f),
            Data::Bool(b) => Literal::Bool(*b),
            other => return Err(path.error(format!("expected a string, number or boolean to compare with, got {}", other.described()))),
        })
    }

    /// Equality with strict types, except that integers and floats compare as numbers.
    #[inline]
    pub fn equals(&self, value: &AttrValue<'_>) -> bool {
        match (self, value) {
            (Literal::Str(a), AttrValue::Str(b)) => a == b,
            (Literal::Int(a), AttrValue::Int(b)) => a == b,
            (Literal::Int(a), AttrValue::Float(b)) => (*a as f64) == *b,
            (Literal::Float(a), AttrValue::Int(b)) => *a == (*b as f64),
            (Literal::Float(a), AttrValue::Float(b)) => a == b,
            (Literal::Bool(a), AttrValue::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// What a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A start attribute, by its index in the rule set's key table.
    Attribute(usize),
    SpanName,
    /// `http.route`, else `url.path`, else `http.target`, else the span name.
    Route,
    /// The span kind as a lowercase word: internal, server, client, producer, consumer.
    Kind,
    /// True when the span has no valid parent.
    Root,
}

#[derive(Debug, Clone)]
pub enum Op {
    Eq(Literal),
    In(Vec<Literal>),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Exists(bool),
    Glob(WildMatch, String),
    Prefix(String),
}

/// Operator names, as users write them.
pub const OPERATORS: &[&str] = &["<", "<=", ">", ">=", "==", "in", "exists", "glob", "prefix"];

impl Op {
    /// Does `value` (None when the subject is absent) satisfy the operator?
    #[inline]
    pub fn matches(&self, value: Option<&AttrValue<'_>>) -> bool {
        let Some(value) = value else {
            return matches!(self, Op::Exists(false));
        };
        match self {
            Op::Exists(should_exist) => *should_exist,
            Op::Eq(literal) => literal.equals(value),
            Op::In(literals) => literals.iter().any(|literal| literal.equals(value)),
            Op::Lt(bound) => number(value).is_some_and(|v| v < *bound),
            Op::Le(bound) => number(value).is_some_and(|v| v <= *bound),
            Op::Gt(bound) => number(value).is_some_and(|v| v > *bound),
            Op::Ge(bound) => number(value).is_some_and(|v| v >= *bound),
            Op::Glob(pattern, _) => matches!(value, AttrValue::Str(s) if pattern.matches(s)),
            Op::Prefix(prefix) => matches!(value, AttrValue::Str(s) if s.starts_with(prefix.as_str())),
        }
    }
}

fn number(value: &AttrValue<'_>) -> Option<f64> {
    match value {
        AttrValue::Int(i) => Some(*i as f64),
        AttrValue::Float(f) => Some(*f),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub subject: Subject,
    pub op: Op,
}

/// Parse what a user wrote for one subject: a bare literal (equality) or a
/// mapping of operators to operands, all of which must hold.
pub fn parse_ops(path: &Path, data: &Data) -> Result<Vec<Op>, ConfigError> {
    let Data::Map(entries) = data else {
        return Ok(vec![Op::Eq(Literal::from_data(path, data)?)]);
    };
    if entries.is_empty() {
        return Err(path.error(format!("empty condition; expected one of {}", OPERATORS.join(", "))));
    }
    entries.iter().map(|(op, operand)| parse_op(path, op, operand)).collect()
}

fn parse_op(path: &Path, op: &str, operand: &Data) -> Result<Op, ConfigError> {
    let bound = |operand: &Data| {
        data::number(path, operand).map_err(|_| path.error(format!("operator \"{op}\" needs a number, got {}", operand.show())))
    };
    let text = |operand: &Data| match operand {
        Data::Str(s) => Ok(s.clone()),
        other => Err(path.error(format!("operator \"{op}\" needs a string, got {}", other.show()))),
    };
    Ok(match op {
        "==" => Op::Eq(Literal::from_data(path, operand)?),
        "in" => {
            let items =
                data::list(path, operand).map_err(|_| path.error(format!("operator \"in\" needs a list, got {}", operand.show())))?;
            if items.is_empty() {
                return Err(path.error("operator \"in\" needs a non-empty list"));
            }
            Op::In(items.iter().map(|item| Literal::from_data(path, item)).collect::<Result<_, _>>()?)
        }
        "<" => Op::Lt(bound(operand)?),
        "<=" => Op::Le(bound(operand)?),
        ">" => Op::Gt(bound(operand)?),
        ">=" => Op::Ge(bound(operand)?),
        "exists" => match operand {
            Data::Bool(b) => Op::Exists(*b),
            other => return Err(path.error(format!("operator \"exists\" needs true or false, got {}", other.show()))),
        },
        "glob" => {
            let pattern = text(operand)?;
            Op::Glob(WildMatch::new(&pattern), pattern)
        }
        "prefix" => Op::Prefix(text(operand)?),
        unknown => {
            let quoted: Vec<&str> = OPERATORS.to_vec();
            return Err(path.error(format!("unknown operator \"{unknown}\"; expected one of {}", quoted.join(", "))));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(data: Data) -> Vec<Op> {
        parse_ops(&Path::root("x"), &data).unwrap()
    }

    fn map(op: &str, operand: Data) -> Data {
        Data::Map(vec![(op.to_owned(), operand)])
    }

    fn all(ops: &[Op], value: Option<AttrValue<'_>>) -> bool {
        ops.iter().all(|op| op.matches(value.as_ref()))
    }

    #[test]
    fn bare_literal_is_equality_with_strict_types() {
        let eq = ops(Data::Str("premium".into()));
        assert!(all(&eq, Some(AttrValue::Str("premium"))));
        assert!(!all(&eq, Some(AttrValue::Str("free"))));
        assert!(!all(&eq, Some(AttrValue::Int(1))));
        assert!(!all(&eq, None));
        let one = ops(Data::Int(1));
        assert!(all(&one, Some(AttrValue::Float(1.0))));
        assert!(!all(&one, Some(AttrValue::Bool(true))), "bool is not a number here");
        let yes = ops(Data::Bool(true));
        assert!(all(&yes, Some(AttrValue::Bool(true))));
        assert!(!all(&yes, Some(AttrValue::Int(1))));
    }

    #[test]
    fn numeric_operators_and_ranges() {
        let range = ops(Data::Map(vec![(">=".into(), Data::Int(100)), ("<".into(), Data::Float(1000.5))]));
        assert!(all(&range, Some(AttrValue::Int(100))));
        assert!(all(&range, Some(AttrValue::Float(1000.4))));
        assert!(!all(&range, Some(AttrValue::Float(1000.5))));
        assert!(!all(&range, Some(AttrValue::Int(99))));
        assert!(!all(&range, Some(AttrValue::Str("500"))), "strings never compare as numbers");
        for (op, value, expected) in [(">", 1000.0, false), (">", 1000.01, true), ("<=", 5.0, true), ("<", 5.0, false)] {
            let parsed = ops(map(op, Data::Int(if op.starts_with('>') { 1000 } else { 5 })));
            assert_eq!(all(&parsed, Some(AttrValue::Float(value))), expected, "{op} {value}");
        }
    }

    #[test]
    fn in_exists_glob_prefix() {
        let set = ops(map("in", Data::List(vec![Data::Str("a".into()), Data::Int(2)])));
        assert!(all(&set, Some(AttrValue::Str("a"))));
        assert!(all(&set, Some(AttrValue::Int(2))));
        assert!(!all(&set, Some(AttrValue::Str("2"))));
        let exists = ops(map("exists", Data::Bool(true)));
        assert!(all(&exists, Some(AttrValue::Other)));
        assert!(!all(&exists, None));
        let absent = ops(map("exists", Data::Bool(false)));
        assert!(all(&absent, None));
        assert!(!all(&absent, Some(AttrValue::Bool(false))));
        let glob = ops(map("glob", Data::Str("/api/user/*".into())));
        assert!(all(&glob, Some(AttrValue::Str("/api/user/login"))));
        assert!(!all(&glob, Some(AttrValue::Str("/api/order"))));
        assert!(!all(&glob, Some(AttrValue::Int(3))));
        let one_char = ops(map("glob", Data::Str("GET /v?/items".into())));
        assert!(all(&one_char, Some(AttrValue::Str("GET /v2/items"))));
        let prefix = ops(map("prefix", Data::Str("/api/".into())));
        assert!(all(&prefix, Some(AttrValue::Str("/api/x"))));
        assert!(!all(&prefix, Some(AttrValue::Str("/apix"))));
    }

    #[test]
    fn glob_is_fast_on_hostile_input() {
        let glob = ops(map("glob", Data::Str("*a*a*a*a*a*b".into())));
        let hostile = "a".repeat(20_000);
        let started = std::time::Instant::now();
        assert!(!all(&glob, Some(AttrValue::Str(&hostile))));
        assert!(started.elapsed().as_secs_f64() < 1.0);
    }

    #[test]
    fn bad_operators_are_named() {
        let path = Path::root("rules").index(2).field("match").key("payment.amount");
        let error = parse_ops(&path, &map("=>", Data::Int(1000))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "rules[2].match[\"payment.amount\"]: unknown operator \"=>\"; expected one of <, <=, >, >=, ==, in, exists, glob, prefix"
        );
        assert!(parse_ops(&path, &map(">", Data::Str("big".into()))).unwrap_err().to_string().contains("needs a number, got \"big\""));
        assert!(parse_ops(&path, &map("in", Data::Int(3))).unwrap_err().to_string().contains("needs a list"));
        assert!(parse_ops(&path, &map("in", Data::List(vec![]))).is_err());
        assert!(parse_ops(&path, &map("exists", Data::Str("yes".into()))).is_err());
        assert!(parse_ops(&path, &Data::Map(vec![])).is_err());
        assert!(parse_ops(&path, &Data::Null).is_err());
        assert!(parse_ops(&path, &Data::List(vec![])).is_err());
    }
}
