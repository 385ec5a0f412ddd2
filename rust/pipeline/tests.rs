use super::*;
use crate::clock::{FixedClock, Moment};
use crate::plan::{BareSpan, ParentFacts, SpanFacts};

fn s(text: &str) -> Data {
    Data::Str(text.to_owned())
}

fn map(entries: Vec<(&str, Data)>) -> Data {
    Data::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

const T: f64 = 1_767_225_600.0;

fn build(doc: Data) -> Result<Pipeline, ConfigError> {
    parse(&doc, Arc::new(FixedClock(T)), &Existing::default(), None)
}

fn seed_pipeline() -> Data {
    map(vec![
        ("force_keep", map(vec![("rules", Data::List(vec![map(vec![("name", s("pay")), ("span_name", s("charge"))])]))])),
        ("adaptive", map(vec![])),
        (
            "rules",
            map(vec![
                ("default_rate", Data::Float(0.5)),
                ("rules", Data::List(vec![map(vec![("name", s("health")), ("span_name", s("GET /health")), ("action", s("drop"))])])),
            ]),
        ),
        ("budget", map(vec![("budget", Data::Int(1000)), ("period", s("day"))])),
        ("rate_limit", map(vec![("traces_per_second", Data::Int(100))])),
    ])
}

#[test]
fn stages_compose_in_the_written_order() {
    let pipeline = build(seed_pipeline()).unwrap();
    assert_eq!(pipeline.stage_names, ["force_keep", "adaptive", "rules", "budget", "rate_limit"]);
    assert!(pipeline.signals.is_some());
    assert_eq!(pipeline.plan.rule_slots(), 3);
    assert_eq!(pipeline.plan.rule_name(0), "pay");
    assert_eq!(pipeline.plan.rule_name(1), "health");
    assert_eq!(pipeline.plan.rule_name(2), "default");
    let unsampled = SpanFacts { trace_id_low64: 0, parent: Some(ParentFacts { sampled: false, ..Default::default() }) };
    let forced = pipeline.plan.decide(&unsampled, &BareSpan { name: "charge", root: false }, &Moment::new(&FixedClock(T)));
    assert!(forced.sampled && forced.forced);
    let root = SpanFacts { trace_id_low64: u64::MAX, parent: None };
    let dropped = pipeline.plan.decide(&root, &BareSpan { name: "GET /health", root: true }, &Moment::new(&FixedClock(T)));
    assert!(!dropped.sampled);
    let kept = pipeline.plan.decide(&root, &BareSpan { name: "GET /x", root: true }, &Moment::new(&FixedClock(T)));
    assert!(kept.sampled);
}

#[test]
fn impossible_orders_and_unknown_keys_are_named() {
    let err = |doc: Data| build(doc).err().map(|e| e.to_string()).unwrap_or_default();
    let rules = || map(vec![("default_rate", Data::Float(0.5)), ("rules", Data::List(vec![]))]);
    let budget = || map(vec![("budget", Data::Int(10))]);
    assert!(err(map(vec![("budget", budget()), ("rules", rules())])).starts_with("rules: comes after budget"));
    assert!(err(map(vec![("rate_limit", map(vec![("traces_per_second", Data::Int(1))])), ("budget", budget())]))
        .starts_with("budget: comes after rate_limit"));
    assert!(err(map(vec![("rules", rules()), ("force_keep", map(vec![("rules", Data::List(vec![]))]))]))
        .starts_with("force_keep: comes after rules"));
    assert!(err(map(vec![("rules", rules()), ("probability", map(vec![("rate", Data::Float(0.1))]))]))
        .starts_with("probability: give either rules"));
    assert!(err(map(vec![("rulez", rules())])).starts_with("rulez: unknown stage or setting (did you mean \"rules\"?)"));
    assert!(err(map(vec![(
        "rules",
        map(vec![("default_rate", Data::Float(0.5)), ("rules", Data::List(vec![])), ("multiplier", Data::List(vec![]))])
    )]))
    .starts_with("rules.multiplier: unknown field"));
    assert!(err(map(vec![("rules", map(vec![("rules", Data::List(vec![]))]))])).starts_with("rules: missing field default_rate"));
    assert!(err(map(vec![("budget", map(vec![("budget", Data::Int(10)), ("period", s("fortnight"))]))]))
        .starts_with("budget.period: unknown period \"fortnight\""));
    assert!(err(map(vec![("budget", map(vec![("budget", Data::Int(10)), ("timezone", s("Moon/Base"))]))]))
        .starts_with("budget.timezone: unknown time zone"));
    assert!(err(map(vec![("adaptive", map(vec![("window", Data::Float(0.5))]))])).starts_with("adaptive.window: 0.5 s is shorter"));
    assert!(err(map(vec![(
        "adaptive",
        map(vec![(
            "error_steps",
            Data::List(vec![Data::List(vec![Data::Int(10), Data::Float(2.0)]), Data::List(vec![Data::Int(5), Data::Float(3.0)])])
        )])
    )]))
    .starts_with("adaptive.error_steps[1]: (5, 3) after (10, 2) is not monotone"));
    assert!(err(map(vec![(
        "force_keep",
        map(vec![("rules", Data::List(vec![map(vec![("span_name", s("x")), ("rate", Data::Float(0.5))])]))])
    )]))
    .starts_with("force_keep.rules[0].rate: force_keep rules always keep"));
    assert!(err(map(vec![("rules", rules()), ("precision", s("five"))])).starts_with("precision: expected a whole number"));
    assert!(err(Data::List(vec![])).starts_with("(top level): expected a mapping"));
}

#[test]
fn an_empty_document_keeps_everything() {
    let pipeline = build(map(vec![])).unwrap();
    let root = SpanFacts { trace_id_low64: 0, parent: None };
    assert!(pipeline.plan.decide(&root, &BareSpan { name: "x", root: true }, &Moment::new(&FixedClock(T))).sampled);
}

#[test]
fn a_rules_file_is_recognised_and_the_right_entry_point_named() {
    let rules_file = map(vec![("default_rate", Data::Float(0.2)), ("rules", Data::List(vec![]))]);
    let error = build(rules_file).err().unwrap().to_string();
    assert!(error.starts_with("default_rate: this looks like a rules file"), "{error}");
    assert!(error.contains("OTEL_TRACES_SAMPLER=tracesieve_rules"), "{error}");
    let listed = map(vec![("rules", Data::List(vec![]))]);
    assert!(build(listed).err().unwrap().to_string().starts_with("rules: this looks like a rules file"));
}

#[test]
fn a_tail_section_is_the_providers_and_makes_drops_recorded() {
    let probability = || map(vec![("rate", Data::Float(0.1))]);
    let tail = || map(vec![("decision_wait", Data::Float(1.0))]);
    assert!(build(map(vec![("probability", probability()), ("tail", tail())])).unwrap().settings.defer);
    let explicit = build(map(vec![("probability", probability()), ("defer", Data::Bool(false)), ("tail", tail())])).unwrap();
    assert!(!explicit.settings.defer, "an explicit defer wins");
    assert!(!build(map(vec![("probability", probability())])).unwrap().settings.defer);
    let err = build(map(vec![("tail", Data::Int(3))])).err().unwrap().to_string();
    assert!(err.starts_with("tail: expected a mapping of tail settings"), "{err}");
}
