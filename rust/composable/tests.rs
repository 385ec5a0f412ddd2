use std::sync::Arc;

use super::parse::composite;
use super::*;
use crate::clock::{Clock, FixedClock};
use crate::data::{Data, Path as DataPath};
use crate::ot_entry::OtFields;
use crate::plan::ParentFacts;
use crate::rules::condition::AttrValue;
use crate::threshold::decode_th;

/// A span with a name, a kind and attributes by key text.
struct Span<'a> {
    keys: &'a [String],
    kind: Option<usize>,
    attributes: Vec<(&'a str, AttrValue<'a>)>,
}

impl SpanView for Span<'_> {
    fn name(&self) -> &str {
        "span"
    }
    fn kind(&self) -> Option<usize> {
        self.kind
    }
    fn is_root(&self) -> bool {
        true
    }
    fn attribute(&self, key: usize) -> Option<AttrValue<'_>> {
        let name = self.keys.get(key)?;
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

fn yaml_like(json: &str) -> Data {
    fn convert(value: &serde_json::Value) -> Data {
        match value {
            serde_json::Value::Null => Data::Null,
            serde_json::Value::Bool(b) => Data::Bool(*b),
            serde_json::Value::Number(n) => n.as_i64().map_or_else(|| Data::Float(n.as_f64().unwrap()), Data::Int),
            serde_json::Value::String(s) => Data::Str(s.clone()),
            serde_json::Value::Array(items) => Data::List(items.iter().map(convert).collect()),
            serde_json::Value::Object(map) => Data::Map(map.iter().map(|(k, v)| (k.clone(), convert(v))).collect()),
        }
    }
    convert(&serde_json::from_str(json).unwrap())
}

fn tree(json: &str) -> Composite {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(1_000.0));
    composite(&yaml_like(json), &DataPath::root("sampler"), &clock, None).unwrap()
}

fn error(json: &str) -> String {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(1_000.0));
    let e = composite(&yaml_like(json), &DataPath::root("sampler"), &clock, None).unwrap_err();
    format!("{}: {}", e.field, e.message)
}

fn root(randomness: u64) -> SpanFacts {
    SpanFacts { trace_id_low64: randomness, parent: None }
}

fn child(randomness: u64, sampled: bool, remote: bool, th: Option<&str>) -> SpanFacts {
    let ot = OtFields { th: th.and_then(decode_th), rv: None };
    SpanFacts { trace_id_low64: randomness, parent: Some(ParentFacts { sampled, remote, ot }) }
}

fn decide(tree: &Composite, facts: &SpanFacts, span: &Span<'_>) -> Decision {
    tree.decide(facts, span, &Moment::new(&FixedClock(1_000.0)))
}

fn bare(tree: &Composite) -> Span<'_> {
    Span { keys: &tree.keys, kind: None, attributes: Vec::new() }
}

const HALF: u64 = 1 << 55;

#[test]
fn probability_uses_the_exact_56_bit_threshold() {
    let t = tree(r#"{"probability": {"ratio": 0.5}}"#);
    assert!(matches!(t.root, Node::Probability { threshold } if threshold == HALF));
    assert_eq!(decide(&t, &root(HALF), &bare(&t)).th, ThUpdate::Set(HALF));
    let dropped = decide(&t, &root(HALF - 1), &bare(&t));
    assert_eq!((dropped.sampled, dropped.th), (false, ThUpdate::Erase));
    // 0.1 as the SDK computes it: 2^56 - round(0.1 * 2^56).
    assert_eq!(exact_threshold(0.1), 0xe6666666666666);
    assert!(matches!(tree(r#"{"probability": {"ratio": 0}}"#).root, Node::AlwaysOff));
    assert!(matches!(tree(r#"{"probability": {"ratio": 1e-300}}"#).root, Node::AlwaysOff));
    assert!(matches!(tree(r#"{"probability": null}"#).root, Node::Probability { threshold: 0 }));
}

#[test]
fn parent_threshold_follows_the_parent() {
    let t = tree(r#"{"parent_threshold": {"root": {"always_off": {}}}}"#);
    let span = bare(&t);
    assert!(!decide(&t, &root(u64::MAX), &span).sampled, "roots go to the root sampler");
    // A parent's th is reliable, whatever its sampled flag says.
    let with_th = decide(&t, &child(0xc0000000000000, false, true, Some("c")), &span);
    assert_eq!((with_th.sampled, with_th.th), (true, ThUpdate::Set(0xc0000000000000)));
    assert!(!decide(&t, &child(0xbfffffffffffff, true, true, Some("c")), &span).sampled);
    // A sampled parent without th: kept, th erased (threshold 0, unreliable).
    let legacy = decide(&t, &child(0, true, false, None), &span);
    assert_eq!((legacy.sampled, legacy.th), (true, ThUpdate::Erase));
    let unsampled = decide(&t, &child(u64::MAX, false, false, None), &span);
    assert_eq!((unsampled.sampled, unsampled.th), (false, ThUpdate::Erase));
}

#[test]
fn the_specifications_example_decides_per_rule() {
    let t = tree(
        r#"{"parent_threshold": {"root": {"rule_based": {"rules": [
            {"attribute_values": {"key": "http.route", "values": ["/health"]}, "sampler": {"always_off": {}}},
            {"attribute_patterns": {"key": "http.route", "included": ["/checkout*"]}, "sampler": {"always_on": {}}},
            {"sampler": {"probability": {"ratio": 0.1}}}
        ]}}}}"#,
    );
    let span = |route: &'static str| Span { keys: &t.keys, kind: None, attributes: vec![("http.route", AttrValue::Str(route))] };
    assert!(!decide(&t, &root(u64::MAX), &span("/health")).sampled);
    assert_eq!(decide(&t, &root(0), &span("/checkout/cart")).th, ThUpdate::Set(0));
    let tenth = exact_threshold(0.1);
    assert!(decide(&t, &root(tenth), &span("/other")).sampled);
    assert!(!decide(&t, &root(tenth - 1), &span("/other")).sampled);
}

#[test]
fn rules_read_values_as_python_writes_them_and_conditions_combine() {
    let t = tree(
        r#"{"rule_based": {"rules": [
            {"attribute_values": {"key": "status", "values": ["404", "True", "1.5"]}, "span_kinds": ["server"], "sampler": {"always_on": {}}}
        ]}}"#,
    );
    let span = |value: AttrValue<'static>, kind: usize| Span { keys: &t.keys, kind: Some(kind), attributes: vec![("status", value)] };
    assert!(decide(&t, &root(0), &span(AttrValue::Int(404), 1)).sampled);
    assert!(decide(&t, &root(0), &span(AttrValue::Bool(true), 1)).sampled);
    assert!(decide(&t, &root(0), &span(AttrValue::Float(1.5), 1)).sampled);
    assert!(!decide(&t, &root(0), &span(AttrValue::Int(404), 2)).sampled, "a client span");
    assert!(!decide(&t, &root(0), &span(AttrValue::Int(500), 1)).sampled, "no rule matches: dropped");
}

#[test]
fn parent_predicates_tell_none_local_and_remote_apart() {
    let t = tree(r#"{"rule_based": {"rules": [{"parent": ["remote"], "sampler": {"always_on": {}}}]}}"#);
    let span = bare(&t);
    assert!(decide(&t, &child(0, false, true, None), &span).sampled);
    assert!(!decide(&t, &child(0, false, false, None), &span).sampled);
    assert!(!decide(&t, &root(0), &span).sampled);
}

#[test]
fn annotating_marks_only_kept_spans() {
    let t = tree(r#"{"annotating": {"attributes": {"sampler.tier": "gold"}, "delegate": {"probability": {"ratio": 0.5}}}}"#);
    assert_eq!(t.marks, vec![Mark::Attributes(yaml_like(r#"{"sampler.tier": "gold"}"#))]);
    assert_eq!(decide(&t, &root(HALF), &bare(&t)).marks, 1);
    assert_eq!(decide(&t, &root(0), &bare(&t)).marks, 0);
}

#[test]
fn any_of_takes_the_lowest_threshold() {
    let t = tree(r#"{"any_of": [{"probability": {"ratio": 0.25}}, {"probability": {"ratio": 0.5}}, {"always_off": {}}]}"#);
    let kept = decide(&t, &root(HALF), &bare(&t));
    assert_eq!((kept.sampled, kept.th), (true, ThUpdate::Set(HALF)));
    let none = tree(r#"{"any_of": [{"always_off": {}}]}"#);
    assert!(!decide(&none, &root(u64::MAX), &bare(&none)).sampled);
}

#[test]
fn rate_limited_keeps_about_its_rate_as_a_probability() {
    struct Ticking(std::sync::atomic::AtomicU64);
    impl Clock for Ticking {
        fn now(&self) -> f64 {
            1_767_225_600.0
        }
        fn monotonic(&self) -> f64 {
            // 10,000 spans a second.
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as f64 / 10_000.0
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(Ticking(std::sync::atomic::AtomicU64::new(0)));
    let doc = yaml_like(r#"{"rate_limited": {"traces_per_second": 100, "delegate": {"always_on": {}}}}"#);
    let t = composite(&doc, &DataPath::root("sampler"), &clock, None).unwrap();
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut kept = 0;
    let mut thresholds = std::collections::BTreeSet::new();
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let decision = t.decide(&root(x), &bare(&t), &Moment::new(&*clock));
        kept += usize::from(decision.sampled);
        if let ThUpdate::Set(th) = decision.th {
            thresholds.insert(th);
        }
    }
    // Ten seconds at 10,000 a second against a rate of 100: about 1,000 kept.
    assert!((800..=1_200).contains(&kept), "{kept}");
    assert!(thresholds.iter().any(|t| *t > 0), "keeps above the rate carry the lowered probability");
}

#[test]
fn a_pipeline_node_paces_to_its_budget() {
    let t = tree(
        r#"{"rule_based": {"rules": [
            {"attribute_values": {"key": "http.route", "values": ["/checkout"]}, "sampler": {"always_on": {}}},
            {"sampler": {"tracesieve": {"probability": {"rate": 1.0}, "budget": {"budget": 100, "period": "hour"}, "store": null}}}
        ]}}"#,
    );
    let span = bare(&t);
    let kept = (0..10_000u64).filter(|i| decide(&t, &root(i.wrapping_mul(0x9e3779b97f4a7c15)), &span).sampled).count();
    assert!(kept <= 100 + 10, "{kept} kept against a budget of 100 in one instant");
}

#[test]
fn mistakes_name_the_field_and_what_would_be_valid() {
    assert!(error(r#"{"probabilty": {}}"#).contains("did you mean \"probability\"?"), "{}", error(r#"{"probabilty": {}}"#));
    // Regression: "unknown a composable sampler".
    assert_eq!(
        error(r#"{"traceid_ratio_based": {}}"#),
        "sampler.traceid_ratio_based: not a composable sampler; expected one of always_on, always_off, probability, parent_threshold, \
         rule_based, annotating, any_of, rate_limited, tracesieve"
    );
    assert!(error(r#"{"probability": {"ratio": 2}}"#).starts_with("sampler.probability.ratio: 2 is out of range"));
    assert!(error(r#"{"parent_threshold": {}}"#).contains("missing field root"));
    assert!(error(r#"{"always_on": {}, "always_off": {}}"#).contains("exactly one of"));
    assert!(error(r#"{"rule_based": {"rules": [{"span_kinds": ["sever"], "sampler": {"always_on": {}}}]}}"#)
        .contains("unknown span kinds \"sever\""));
    assert!(error(r#"{"rule_based": {"rules": [{"attribute_values": {"key": "a", "values": ["x"]}}]}}"#).contains("missing field sampler"));
    assert!(error(r#"{"tracesieve": {"respect_parent": true, "probability": {"rate": 0.5}}}"#).contains("belongs to the composite sampler"));
    assert!(error(r#"{"tracesieve": {"probability": {"rate": 0.5}, "tail": {"decision_wait": 1}}}"#)
        .contains("tail: is read by tracesieve.TracerProvider from a whole tracesieve document"));
    // Regression: a state file was silently never written (and the budget kept no record at all).
    assert_eq!(
        error(r#"{"tracesieve": {"probability": {"rate": 0.5}, "budget": {"budget": 100, "state_path": "b.json"}}}"#),
        "sampler.tracesieve.budget.state_path: is not kept for a pipeline inside a composite sampler; its budget keeps its record on \
         the host by default (or in the store= you give it)"
    );
    assert!(
        error(r#"{"annotating": {"attributes": {"a": {"b": 1}}, "delegate": {"always_on": {}}}}"#).contains("expected a string, number")
    );
}
