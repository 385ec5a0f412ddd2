use super::document::tests::{json, rule};
use super::*;
use crate::clock::{Clock, FixedClock};
use crate::rules::condition::AttrValue;

/// A span with attributes by name (the plan's key table is ROUTE_KEYS then XRAY_KEYS).
struct Span(Vec<(&'static str, &'static str)>);

impl SpanView for Span {
    fn name(&self) -> &str {
        "span"
    }
    fn kind(&self) -> Option<usize> {
        None
    }
    fn is_root(&self) -> bool {
        true
    }
    fn attribute(&self, key: usize) -> Option<AttrValue<'_>> {
        let name = crate::rules::ROUTE_KEYS.iter().chain(XRAY_KEYS.iter()).nth(key)?;
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| AttrValue::Str(v))
    }
    fn with_named_attribute(&self, key: &str, test: &mut dyn FnMut(Option<AttrValue<'_>>) -> bool) -> bool {
        test(self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| AttrValue::Str(v)))
    }
}

fn xray(service: &str, rules: &[String]) -> XRay {
    let facts = ResourceFacts { service_name: service.to_owned(), cloud_platform: Some("aws_ec2".to_owned()), ..Default::default() };
    let state = XRay::new(facts, 5, 0.0);
    state.update_rules(&[json(&format!(r#"{{"SamplingRuleRecords": [{}]}}"#, rules.join(",")))], 1000.0, 0.0).unwrap();
    state
}

fn chosen(state: &XRay, span: &Span, clock: &dyn Clock) -> Option<String> {
    let table = state.table();
    state.choose(&table, span, &Moment::new(clock), crate::rules::ROUTE_KEYS.len()).map(|i| table.rules[i].spec.name.clone())
}

#[test]
fn each_field_decides_a_match() {
    let state = xray(
        "shop",
        &[
            rule("method", 1, "").replace(r#""HTTPMethod": "*""#, r#""HTTPMethod": "POST""#),
            rule("path", 2, "").replace(r#""URLPath": "*""#, r#""URLPath": "/pay/*""#),
            rule("host", 3, "").replace(r#""Host": "*""#, r#""Host": "api.?.example""#),
            rule("attr", 4, r#", "Attributes": {"tier": "gold"}"#),
            rule("other-service", 5, "").replace(r#""ServiceName": "*""#, r#""ServiceName": "billing""#),
            rule("other-type", 6, "").replace(r#""ServiceType": "*""#, r#""ServiceType": "AWS::Lambda::Function""#),
            rule("Default", 10000, ""),
        ],
    );
    let clock = FixedClock(0.0);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("http.request.method", "POST")], "method"),
        (&[("http.method", "POST")], "method"),
        (&[("url.path", "/pay/now")], "path"),
        (&[("http.target", "/pay/")], "path"),
        (&[("url.full", "https://x.example/pay/x?q=1")], "path"),
        (&[("url.path", "/pay"), ("url.full", "https://x/pay/x")], "Default"),
        (&[("server.address", "api.1.example")], "host"),
        (&[("http.host", "api.12.example")], "Default"),
        (&[("tier", "gold")], "attr"),
        (&[("tier", "golden")], "Default"),
        (&[], "Default"),
    ];
    for (attributes, expected) in cases {
        assert_eq!(chosen(&state, &Span(attributes.to_vec()), &clock).as_deref(), Some(*expected), "{attributes:?}");
    }
}

#[test]
fn reservoir_borrows_until_targets_then_follows_the_quota_until_its_ttl() {
    let state = xray("shop", &[rule("Default", 10000, "")]);
    let kept_in = |from: f64, seconds: f64, per_second: u32| {
        let table = state.table();
        let mut reservoir = 0;
        for step in 0..(seconds as u32 * per_second) {
            let t = from + f64::from(step) / f64::from(per_second);
            let clock = FixedClock(t);
            let moment = Moment::new(&clock);
            match state.verdict(&table, Some(0), true, &moment) {
                Verdict::Reservoir => reservoir += 1,
                Verdict::Rate { .. } => XRay::count(&table, Some(0), true, false),
            }
        }
        reservoir
    };
    // Borrowing: one a second (plus the first second's token).
    assert!((30..=31).contains(&kept_in(0.0, 30.0, 100)));
    let stats = state.take_statistics();
    assert_eq!(stats[0].borrowed, stats[0].sampled);
    assert_eq!(stats[0].requests, 3000);
    // A quota of 20/s until t=1000 + 100.
    let targets = json(
        r#"{"SamplingTargetDocuments": [{"RuleName": "Default", "FixedRate": 0.0, "ReservoirQuota": 20,
            "ReservoirQuotaTTL": 1100, "Interval": 7}], "LastRuleModification": 10}"#,
    );
    let applied = state.apply_targets(&targets, 1000.0, 30.0).unwrap();
    assert_eq!((applied.applied, applied.interval, applied.refresh_rules), (1, 7.0, false));
    let kept = kept_in(1000.0, 30.0, 100);
    assert!((570..=630).contains(&kept), "{kept}");
    assert_eq!(state.take_statistics()[0].borrowed, 0);
    // After the TTL, the fixed rate (0) alone.
    assert_eq!(kept_in(1100.0, 10.0, 100), 0);
}

#[test]
fn stale_or_missing_rules_give_the_fallback_and_new_rule_modifications_ask_for_a_refresh() {
    let facts = ResourceFacts { service_name: "shop".to_owned(), ..Default::default() };
    let state = XRay::new(facts, 5, 0.0);
    let span = Span(vec![]);
    assert_eq!(chosen(&state, &span, &FixedClock(0.0)), None);
    state.update_rules(&[json(&format!(r#"{{"SamplingRuleRecords": [{}]}}"#, rule("Default", 10000, "")))], 500.0, 0.0).unwrap();
    assert_eq!(chosen(&state, &span, &FixedClock(RULES_TTL)).as_deref(), Some("Default"));
    assert_eq!(chosen(&state, &span, &FixedClock(RULES_TTL + 1.0)), None);
    let newer = json(r#"{"SamplingTargetDocuments": [], "LastRuleModification": 501}"#);
    assert!(state.apply_targets(&newer, 600.0, 1.0).unwrap().refresh_rules);
}

#[test]
fn unchanged_rules_keep_their_state_and_a_bad_document_keeps_the_rules() {
    let state = xray("shop", &[rule("a", 1, ""), rule("Default", 10000, "")]);
    let before = state.table().rules[0].clone();
    let same = json(&format!(r#"{{"SamplingRuleRecords": [{}, {}]}}"#, rule("Default", 10000, ""), rule("a", 1, "")));
    assert!(!state.update_rules(&[same], 1001.0, 1.0).unwrap());
    assert!(Arc::ptr_eq(&before, &state.table().rules[0]));
    assert!(state.update_rules(&[json(r#"{"SamplingRuleRecords": 3}"#)], 1002.0, 2.0).is_err());
    assert_eq!(state.rejected.load(Relaxed), 1);
    assert_eq!(state.table().rules.len(), 2);
}

#[test]
fn statistics_given_back_are_reported_next_time() {
    let state = xray("shop", &[rule("Default", 10000, "")]);
    let table = state.table();
    for sampled in [true, false, false] {
        XRay::count(&table, Some(0), true, sampled);
    }
    XRay::count(&table, Some(0), false, true);
    let taken = state.take_statistics();
    assert_eq!((taken[0].requests, taken[0].sampled), (3, 1));
    assert!(state.take_statistics().is_empty());
    state.restore_statistics(&taken);
    assert_eq!(state.take_statistics(), taken);
}
