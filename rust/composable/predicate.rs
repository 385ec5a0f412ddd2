//! The predicates of a rule-based composable sampler, with the OpenTelemetry
//! Python SDK's semantics: attribute values compared by their `str()` (each
//! item of a sequence on its own), shell patterns with included and excluded
//! lists, span kinds, the parent (none, local or remote), conjunctions, and
//! predicates written in Python (evaluated through the span view).

use rustc_hash::FxHashSet;

use super::pattern::Glob;
use crate::plan::SpanFacts;
use crate::rules::condition::{AttrValue, Literal};
use crate::rules::SpanView;

/// Where the parent of a span is, as `ParentPredicate` names it.
pub const PARENT_NAMES: [&str; 3] = ["none", "local", "remote"];

#[derive(Debug, Clone)]
pub enum Predicate {
    Always,
    /// Some value of the attribute, as `str()` writes it, is one of `values`.
    AttributeValues {
        key: usize,
        values: FxHashSet<String>,
    },
    /// Some value of the attribute matches an included pattern (any, when
    /// none are given) and no excluded one.
    AttributePatterns {
        key: usize,
        included: Vec<Glob>,
        excluded: Vec<Glob>,
    },
    /// The attribute equals `value` by Python's `==` (the SDK's deprecated
    /// `AttributePredicate`; numbers and booleans compare as numbers).
    AttributeEquals {
        key: usize,
        value: Literal,
    },
    /// The span kind is one of these (bits by index into `rules::KIND_NAMES`).
    SpanKinds(u8),
    /// The parent is one of these (bits by index into [`PARENT_NAMES`]).
    Parent(u8),
    All(Vec<Predicate>),
    /// A predicate written in Python, by its slot.
    Foreign(usize),
}

impl Predicate {
    pub fn matches<S: SpanView + ?Sized>(&self, facts: &SpanFacts, span: &S) -> bool {
        match self {
            Predicate::Always => true,
            Predicate::AttributeValues { key, values } => span.any_attribute_text(*key, &mut |text| values.contains(text)),
            Predicate::AttributePatterns { key, included, excluded } => span.any_attribute_text(*key, &mut |text| {
                (included.is_empty() || included.iter().any(|g| g.is_match(text))) && !excluded.iter().any(|g| g.is_match(text))
            }),
            Predicate::AttributeEquals { key, value } => span.attribute(*key).is_some_and(|v| python_equals(value, &v)),
            Predicate::SpanKinds(bits) => span.kind().is_some_and(|kind| kind < 8 && bits & (1 << kind) != 0),
            Predicate::Parent(bits) => bits & (1 << parent_index(facts)) != 0,
            Predicate::All(predicates) => predicates.iter().all(|p| p.matches(facts, span)),
            Predicate::Foreign(slot) => span.foreign_predicate(*slot),
        }
    }

    /// How many predicates this one is made of (itself included).
    pub fn count(&self) -> usize {
        match self {
            Predicate::All(predicates) => 1 + predicates.iter().map(Predicate::count).sum::<usize>(),
            _ => 1,
        }
    }
}

/// 0 for no parent, 1 for a local parent, 2 for a remote one.
fn parent_index(facts: &SpanFacts) -> usize {
    match facts.parent {
        None => 0,
        Some(parent) if parent.remote => 2,
        Some(_) => 1,
    }
}

/// Python's `==` between a configured scalar and an attribute value: strings
/// by text; integers, floats and booleans as numbers (`True == 1 == 1.0`).
fn python_equals(literal: &Literal, value: &AttrValue<'_>) -> bool {
    let number = |v: &AttrValue<'_>| match v {
        AttrValue::Int(i) => Some(*i as f64),
        AttrValue::Float(f) => Some(*f),
        AttrValue::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (literal, value) {
        (Literal::Str(a), AttrValue::Str(b)) => a == b,
        (Literal::Str(_), _) | (_, AttrValue::Str(_)) => false,
        (Literal::Int(a), AttrValue::Int(b)) => a == b,
        (Literal::Int(a), v) => number(v) == Some(*a as f64),
        (Literal::Float(a), v) => number(v) == Some(*a),
        (Literal::Bool(a), v) => number(v) == Some(f64::from(u8::from(*a))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_equality_between_numbers_and_booleans() {
        assert!(python_equals(&Literal::Int(1), &AttrValue::Bool(true)));
        assert!(python_equals(&Literal::Float(1.0), &AttrValue::Int(1)));
        assert!(python_equals(&Literal::Bool(false), &AttrValue::Float(0.0)));
        assert!(!python_equals(&Literal::Str("1".into()), &AttrValue::Int(1)));
        assert!(!python_equals(&Literal::Int(1), &AttrValue::Other));
    }
}
