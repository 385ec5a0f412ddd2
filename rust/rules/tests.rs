use super::*;
use crate::data::Data;

/// A span for tests: attributes by name, resolved against a rule set's keys.
struct TestSpan<'a> {
    name: &'a str,
    kind: Option<usize>,
    root: bool,
    values: Vec<Option<AttrValue<'a>>>,
}

impl<'a> TestSpan<'a> {
    fn new(set: &RuleSet, name: &'a str, attributes: &[(&str, AttrValue<'a>)]) -> Self {
        let values = set.keys.iter().map(|k| attributes.iter().find(|(n, _)| n == k).map(|(_, v)| *v)).collect();
        TestSpan { name, kind: Some(1), root: true, values }
    }
}

impl SpanView for TestSpan<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> Option<usize> {
        self.kind
    }
    fn is_root(&self) -> bool {
        self.root
    }
    fn attribute(&self, key: usize) -> Option<AttrValue<'_>> {
        self.values.get(key).copied().flatten()
    }
}

fn s(text: &str) -> Data {
    Data::Str(text.to_owned())
}

fn map(entries: Vec<(&str, Data)>) -> Data {
    Data::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn seed_rules() -> Data {
    let keep = |name: &str, key: &str, condition: Data| {
        map(vec![("name", s(name)), ("match", map(vec![(key, condition)])), ("action", s("keep"))])
    };
    let route = |path: &str, rate: f64| map(vec![("name", s(path)), ("route", s(path)), ("rate", Data::Float(rate))]);
    Data::List(vec![
        keep("payment", "business.event", s("payment")),
        keep("order-created", "business.event", s("order.created")),
        keep("user-registered", "business.event", s("user.registered")),
        keep("security-event", "security.event", map(vec![("exists", Data::Bool(true))])),
        keep("high-value", "payment.amount", map(vec![(">", Data::Int(1000))])),
        route("/api/payment", 0.5),
        route("/api/order", 0.3),
        route("/api/user/login", 0.2),
        map(vec![
            ("name", s("probes")),
            ("route", map(vec![("in", Data::List(vec![s("/api/health"), s("/api/metrics")]))])),
            ("rate", Data::Float(0.01)),
        ]),
    ])
}

fn seed_multipliers() -> Data {
    let window = |start: i64, end: i64, factor: f64| {
        map(vec![("start", Data::Int(start)), ("end", Data::Int(end)), ("factor", Data::Float(factor))])
    };
    Data::List(vec![
        map(vec![
            ("attribute", s("user.tier")),
            ("factors", map(vec![("premium", Data::Float(1.5)), ("standard", Data::Float(1.0)), ("free", Data::Float(0.5))])),
        ]),
        map(vec![(
            "schedule",
            map(vec![("timezone", s("UTC")), ("windows", Data::List(vec![window(9, 18, 1.5), window(18, 23, 1.0), window(23, 9, 0.5)]))]),
        )]),
    ])
}

const NOON: f64 = 1_767_225_600.0 + 12.0 * 3600.0; // 2026-01-01T12:00:00Z
const NIGHT: f64 = 1_767_225_600.0 + 3.0 * 3600.0;

fn evaluate(set: &RuleSet, span: &TestSpan, now: f64) -> RuleOutcome {
    set.evaluate(span, &mut || now)
}

#[test]
fn seed_policy_decides_like_the_seed() {
    let set = parse(&seed_rules(), 0.1, &seed_multipliers()).unwrap();
    let span = TestSpan::new(&set, "POST", &[("http.route", AttrValue::Str("/api/order")), ("user.tier", AttrValue::Str("premium"))]);
    let outcome = evaluate(&set, &span, NOON);
    assert_eq!(set.rule_name(outcome.rule), "/api/order");
    assert!(matches!(outcome.action, Action::Rate(r) if (r - 0.3 * 1.5 * 1.5).abs() < 1e-12));
    let outcome = evaluate(&set, &span, NIGHT);
    assert!(matches!(outcome.action, Action::Rate(r) if (r - 0.3 * 1.5 * 0.5).abs() < 1e-12));
    // Unknown tier: multiplier 1. Unmatched route: default rate.
    let span = TestSpan::new(&set, "GET /other", &[("user.tier", AttrValue::Str("gold"))]);
    let outcome = evaluate(&set, &span, NOON);
    assert_eq!(set.rule_name(outcome.rule), "default");
    assert!(matches!(outcome.action, Action::Rate(r) if (r - 0.15).abs() < 1e-12));
}

#[test]
fn products_clamp_to_one() {
    let set = parse(&seed_rules(), 0.1, &seed_multipliers()).unwrap();
    let span = TestSpan::new(&set, "POST", &[("http.route", AttrValue::Str("/api/payment")), ("user.tier", AttrValue::Str("premium"))]);
    assert_eq!(evaluate(&set, &span, NOON).action, Action::Rate(1.0));
}

#[test]
fn force_keep_rules_come_first() {
    let set = parse(&seed_rules(), 0.1, &seed_multipliers()).unwrap();
    let cases: Vec<(&str, Vec<(&str, AttrValue)>)> = vec![
        ("payment", vec![("business.event", AttrValue::Str("payment")), ("http.route", AttrValue::Str("/api/health"))]),
        ("security-event", vec![("security.event", AttrValue::Bool(false))]),
        ("high-value", vec![("payment.amount", AttrValue::Float(1000.01))]),
        ("high-value", vec![("payment.amount", AttrValue::Int(5000))]),
    ];
    for (expected, attributes) in cases {
        let span = TestSpan::new(&set, "x", &attributes);
        let outcome = evaluate(&set, &span, NOON);
        assert_eq!((set.rule_name(outcome.rule), outcome.action), (expected, Action::Keep));
    }
    let modest = TestSpan::new(&set, "x", &[("payment.amount", AttrValue::Int(1000))]);
    assert_eq!(set.rule_name(evaluate(&set, &modest, NOON).rule), "default");
    let wrong_type = TestSpan::new(&set, "x", &[("payment.amount", AttrValue::Str("5000"))]);
    assert_eq!(set.rule_name(evaluate(&set, &wrong_type, NOON).rule), "default");
}

#[test]
fn first_match_in_list_order_wins() {
    let rules = Data::List(vec![
        map(vec![("name", s("a")), ("route", map(vec![("prefix", s("/api/"))])), ("rate", Data::Float(0.2))]),
        map(vec![("name", s("b")), ("route", s("/api/x")), ("action", s("drop"))]),
    ]);
    let set = parse(&rules, 1.0, &Data::List(vec![])).unwrap();
    let span = TestSpan::new(&set, "n", &[("http.route", AttrValue::Str("/api/x"))]);
    assert_eq!(set.rule_name(evaluate(&set, &span, NOON).rule), "a");
}

#[test]
fn route_falls_back_through_keys_to_the_name() {
    let set = parse(&Data::List(vec![]), 1.0, &Data::List(vec![])).unwrap();
    let with = |attributes: &[(&str, AttrValue<'static>)]| route(&TestSpan::new(&set, "GET /name", attributes)).to_owned();
    assert_eq!(with(&[("http.route", AttrValue::Str("/r")), ("url.path", AttrValue::Str("/p"))]), "/r");
    assert_eq!(with(&[("url.path", AttrValue::Str("/p")), ("http.target", AttrValue::Str("/t?q"))]), "/p");
    assert_eq!(with(&[("http.target", AttrValue::Str("/t?q"))]), "/t?q");
    assert_eq!(with(&[("http.route", AttrValue::Int(3))]), "GET /name", "non-strings are skipped");
    assert_eq!(with(&[]), "GET /name");
}

#[test]
fn span_name_kind_and_root_conditions() {
    let rules = Data::List(vec![
        map(vec![("name", s("consumers")), ("kind", Data::List(vec![s("consumer"), s("PRODUCER")])), ("rate", Data::Float(0.7))]),
        map(vec![("name", s("children")), ("root", Data::Bool(false)), ("rate", Data::Float(0.6))]),
        map(vec![("name", s("health")), ("span_name", map(vec![("glob", s("GET /health*"))])), ("action", s("drop"))]),
    ]);
    let set = parse(&rules, 0.5, &Data::List(vec![])).unwrap();
    let mut span = TestSpan::new(&set, "GET /healthz", &[]);
    assert_eq!(evaluate(&set, &span, NOON).action, Action::Drop);
    span.kind = Some(4);
    assert_eq!(set.rule_name(evaluate(&set, &span, NOON).rule), "consumers");
    span.kind = Some(1);
    span.root = false;
    assert_eq!(set.rule_name(evaluate(&set, &span, NOON).rule), "children");
}

#[test]
fn the_clock_is_only_read_when_a_schedule_needs_it() {
    let set = parse(&seed_rules(), 0.1, &Data::List(vec![])).unwrap();
    let span = TestSpan::new(&set, "x", &[]);
    let mut reads = 0;
    set.evaluate(&span, &mut || {
        reads += 1;
        0.0
    });
    assert_eq!(reads, 0);
}

fn error(rules: Data, multipliers: Data) -> String {
    parse(&rules, 0.1, &multipliers).unwrap_err().to_string()
}

#[test]
fn invalid_rules_name_where_and_what() {
    let none = || Data::List(vec![]);
    let rule = |entries: Vec<(&str, Data)>| {
        Data::List(vec![map(vec![("rate", Data::Float(0.1))]), map(vec![("rate", Data::Float(0.1))]), map(entries)])
    };
    assert_eq!(
        error(rule(vec![("match", map(vec![("payment.amount", map(vec![("=>", Data::Int(1000))]))])), ("action", s("keep"))]), none()),
        "rules[2].match[\"payment.amount\"]: unknown operator \"=>\"; expected one of <, <=, >, >=, ==, in, exists, glob, prefix"
    );
    assert_eq!(error(rule(vec![("rate", Data::Float(1.5))]), none()), "rules[2].rate: 1.5 is out of range; expected a number in [0, 1]");
    assert_eq!(
        error(rule(vec![("action", s("sample"))]), none()),
        "rules[2].action: unknown action \"sample\"; expected \"keep\" or \"drop\" (or give a rate instead)"
    );
    assert!(error(rule(vec![]), none()).starts_with("rules[2]: missing rate or action"));
    // A misnamed rate is named as the unknown field it is, not reported as a rate missing.
    assert_eq!(
        error(rule(vec![("sample_rate", Data::Float(0.5))]), none()),
        "rules[2].sample_rate: unknown field; expected one of name, span_name, kind, root, route, match, rate, action"
    );
    assert!(error(rule(vec![("acton", s("keep"))]), none()).starts_with("rules[2].acton: unknown field (did you mean \"action\"?)"));
    assert_eq!(
        error(rule(vec![("rate", Data::Float(0.1)), ("action", s("keep"))]), none()),
        "rules[2]: give either rate or action, not both"
    );
    assert!(error(rule(vec![("rate", Data::Float(0.1)), ("acton", s("keep"))]), none())
        .starts_with("rules[2].acton: unknown field (did you mean \"action\"?)"));
    assert!(error(rule(vec![("rate", Data::Float(0.1)), ("kind", s("serverr"))]), none())
        .starts_with("rules[2].kind: unknown span kind \"serverr\""));
    assert!(error(rule(vec![("rate", Data::Float(0.1)), ("route", map(vec![(">", Data::Int(3))]))]), none())
        .starts_with("rules[2].route: numeric comparison on a string"));
    assert!(error(Data::Map(vec![]), none()).starts_with("rules: expected a list"));
    let dup =
        Data::List(vec![map(vec![("name", s("a")), ("rate", Data::Float(0.1))]), map(vec![("name", s("a")), ("rate", Data::Float(0.2))])]);
    assert_eq!(error(dup, none()), "rules[1].name: \"a\" is already the name of rules[0]; rule names must be unique");
    assert!(parse(&none(), 1.5, &none()).unwrap_err().to_string().starts_with("default_rate: 1.5 is out of range"));
}

#[test]
fn invalid_multipliers_name_where_and_what() {
    let none = Data::List(vec![]);
    let tier =
        |factor: f64| Data::List(vec![map(vec![("attribute", s("user.tier")), ("factors", map(vec![("free", Data::Float(factor))]))])]);
    assert_eq!(error(none.clone(), tier(-0.5)), "multipliers[0].factors.free: -0.5 is negative; expected a multiplier >= 0");
    assert!(parse(&none, 0.1, &tier(0.0)).is_ok());
    assert!(error(none.clone(), Data::List(vec![map(vec![("attribute", s("x"))])])).starts_with("multipliers[0]: missing field factors"));
    assert!(error(none.clone(), Data::List(vec![map(vec![("other", s("x"))])])).starts_with("multipliers[0]: expected either attribute"));
}

#[test]
fn possible_probabilities_cover_every_outcome() {
    let set = parse(&seed_rules(), 0.1, &seed_multipliers()).unwrap();
    let possible = set.possible_probabilities(10_000).unwrap();
    for route in ["/api/payment", "/api/order", "/api/user/login", "/api/health", "/other"] {
        for tier in ["premium", "standard", "free", "gold"] {
            for now in [NOON, NIGHT, NOON + 7.0 * 3600.0, f64::NAN] {
                let span = TestSpan::new(&set, "x", &[("http.route", AttrValue::Str(route)), ("user.tier", AttrValue::Str(tier))]);
                let Action::Rate(p) = evaluate(&set, &span, now).action else { panic!() };
                assert!(possible.contains(&p), "{p} for {route} {tier}");
            }
        }
    }
    assert!(set.possible_probabilities(10).is_none());
}
