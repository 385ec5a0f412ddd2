//! A compiled plan in plain words: what `tracesieve check` prints, read from
//! the plan itself so the description cannot drift from what decides.

use crate::adaptive::{Booster, ErrorPolicy};
use crate::pipeline::Settings;
use crate::plan::{Plan, Stage};
use crate::rules::condition::{Condition, Literal, Op, Subject};
use crate::rules::{Action, Multiplier, RuleSet};
use crate::words::{plain, py_float, py_str, thousands};

/// One line per fact, in stage order; indented lines belong to the stage above.
pub fn describe(plan: &Plan, settings: &Settings, stage_names: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let stages = if stage_names.is_empty() { "(none: keep everything)".to_owned() } else { stage_names.join(", ") };
    lines.push(format!("stages, in order: {stages}"));
    if plan.composite().is_none() {
        lines.push(if plan.respect_parent {
            "children follow their parent's decision".to_owned()
        } else {
            "every span is decided afresh".to_owned()
        });
    }
    for stage in &plan.stages {
        match stage {
            Stage::ForceKeep(set) => {
                let capped = if plan.pacer().is_some_and(|p| p.caps_forced_keeps()) { "capped" } else { "never capped" };
                lines.push(format!("force_keep ({capped} by the budget): always keep a span when"));
                for rule in &set.rules {
                    lines.push(format!("  - {}: {}", rule.name, conditions(set, &rule.conditions)));
                }
            }
            Stage::Boost(booster) => describe_boost(booster, &mut lines),
            Stage::Rules(set) => describe_rules(set, &mut lines),
            Stage::Probability { probability, .. } => {
                lines.push(format!("probability: keep {:.2}% of traces, consistently", probability * 100.0));
            }
            Stage::TraceIdRatio { rate, .. } => {
                lines.push(format!("trace id ratio: keep {:.2}% of traces by the SDK's legacy rule", rate * 100.0));
            }
            Stage::Budget(pacer) => {
                let calendar = pacer.calendar();
                lines.push(format!(
                    "budget: {} spans per {} ({}), paced evenly, never exceeded",
                    thousands(pacer.budget()),
                    calendar.kind.name(),
                    calendar.zone_name
                ));
            }
            Stage::Remote(remote) => {
                lines.push(format!(
                    "jaeger_remote: the strategy for service {} from its strategy source, now {}",
                    py_str(&remote.service_name),
                    remote.describe()
                ));
            }
            Stage::XRay(xray) => {
                lines.push(format!(
                    "xray_remote: AWS X-Ray's sampling rules for service {} (each rule's reservoir, then its fixed rate), now {}",
                    py_str(&xray.resource.service_name),
                    xray.describe(None)
                ));
            }
            Stage::Composite(tree) => lines.extend(tree.describe()),
            Stage::RateLimit(bucket) => {
                lines.push(format!(
                    "rate_limit: at most {} new traces per second (bursts of {})",
                    plain(bucket.rate()),
                    plain(bucket.burst())
                ));
            }
        }
    }
    describe_state(plan, &mut lines);
    if settings.record_rule {
        lines.push("kept spans carry tracesieve.rule naming the rule that decided".to_owned());
    }
    if settings.defer {
        lines.push("dropped spans are recorded (RECORD_ONLY) for tail decisions".to_owned());
    }
    if !settings.trust_incoming {
        lines.push(
            "spans with a remote parent are decided afresh, as roots: what callers send (their sampled flag, th and rv) is ignored"
                .to_owned(),
        );
    }
    if settings.reload {
        lines.push(format!("the file is re-read when it changes (checked every {} s)", plain(settings.reload_interval)));
    }
    lines
}

/// Where the stateful stages keep their state.
fn describe_state(plan: &Plan, lines: &mut Vec<String>) {
    let mut pieces = Vec::new();
    if let Some(booster) = plan.booster() {
        pieces.push(("adaptive windows", booster.signals.store(), booster.signals.is_shared()));
    }
    if let Some(pacer) = plan.pacer() {
        pieces.push(("budget", pacer.store(), pacer.is_shared()));
    }
    if let Some(bucket) = plan.rate_limit() {
        pieces.push(("rate limit", bucket.store(), bucket.is_shared()));
    }
    // One line per place, in the order the pieces first name it.
    let mut places: Vec<(Option<String>, bool, bool, Vec<&str>)> = Vec::new();
    for (name, store, shared) in &pieces {
        let place = (store.shown_url(), *shared, store.is_record());
        match places.iter_mut().find(|p| (&p.0, p.1, p.2) == (&place.0, place.1, place.2)) {
            Some(p) => p.3.push(name),
            None => places.push((place.0, place.1, place.2, vec![name])),
        }
    }
    for (url, shared, record, names) in places {
        let names = names.join(", ");
        lines.push(match (url, shared) {
            (Some(url), true) if url.starts_with("redis") => {
                format!("state ({names}) leased from Redis by every process, on any host, naming {url}")
            }
            (Some(url), true) if record => format!(
                "state ({names}) recorded on this host in {}: shared by every process of this service here, kept across restarts",
                url.trim_start_matches("file://")
            ),
            (Some(url), true) => format!("state ({names}) shared by every process of this host naming {url}"),
            (Some(url), false) => format!("state ({names}) kept in this process only: the store {url} could not be used"),
            (None, _) => format!("state ({names}) kept per process: each worker of a pre-fork server has its own (see the store setting)"),
        });
    }
}

fn describe_boost(booster: &Booster, lines: &mut Vec<String>) {
    let policy = &booster.policy;
    let window = plain(booster.signals.errors.length());
    match &policy.errors {
        ErrorPolicy::Steps(steps) => {
            let steps: Vec<String> =
                steps.iter().map(|(count, m)| format!("more than {count} errors in {window} s gives x{}", py_float(*m))).collect();
            lines.push(format!("adaptive: {}", steps.join(", ")));
        }
        ErrorPolicy::Rate { target, .. } => {
            lines.push(format!("adaptive: boost by error fraction / {} (at most x{})", plain(*target), py_float(policy.max_boost)));
        }
    }
    lines.push(format!(
        "  slow spans (>= {} s) boost their route x{}",
        py_float(booster.signals.routes[0].slow_threshold),
        py_float(policy.latency_boost)
    ));
}

fn describe_rules(set: &RuleSet, lines: &mut Vec<String>) {
    lines.push("rules, first match wins:".to_owned());
    for rule in &set.rules {
        let action = match rule.action {
            Action::Rate(rate) => format!("rate {}", py_float(rate)),
            Action::Keep => "keep".to_owned(),
            Action::Drop => "drop".to_owned(),
        };
        lines.push(format!("  - {}: {action} when {}", rule.name, conditions(set, &rule.conditions)));
    }
    lines.push(format!("  - default: rate {}", py_float(set.default_rate)));
    for multiplier in &set.multipliers {
        match multiplier {
            Multiplier::Attribute { key, factors, default } => {
                let factors: Vec<String> =
                    factors.iter().map(|(value, factor)| format!("{} x{}", literal(value, false), py_float(*factor))).collect();
                lines.push(format!(
                    "  rates are multiplied by {}: {} (others x{})",
                    set.keys[*key],
                    factors.join(", "),
                    py_float(*default)
                ));
            }
            Multiplier::Schedule(schedule) => {
                let windows: Vec<String> =
                    schedule.windows().iter().map(|w| format!("{:02}-{:02} x{}", w.start, w.end, py_float(w.factor))).collect();
                lines.push(format!("  rates are multiplied by the hour in {}: {}", schedule.zone_name(), windows.join(", ")));
            }
        }
    }
    lines.push("  products are capped at 1; the result goes into the decision and th".to_owned());
}

/// A rule's conditions joined by "and"; "always" for none.
pub fn conditions(set: &RuleSet, conditions: &[Condition]) -> String {
    if conditions.is_empty() {
        return "always".to_owned();
    }
    let parts: Vec<String> = conditions
        .iter()
        .map(|condition| match condition.subject {
            Subject::Root => match condition.op {
                Op::Eq(Literal::Bool(false)) => "the span has a parent".to_owned(),
                _ => "the span is a root".to_owned(),
            },
            Subject::SpanName => format!("the span name {}", op_words(&condition.op)),
            Subject::Route => format!("the route {}", op_words(&condition.op)),
            Subject::Kind => format!("the kind {}", op_words(&condition.op)),
            Subject::Attribute(key) => format!("{} {}", set.keys[key], op_words(&condition.op)),
        })
        .collect();
    parts.join(" and ")
}

fn literal(value: &Literal, quoted: bool) -> String {
    match value {
        Literal::Str(s) if quoted => py_str(s),
        Literal::Str(s) => s.clone(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => py_float(*f),
        Literal::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
    }
}

fn op_words(op: &Op) -> String {
    match op {
        Op::Eq(value) => format!("is {}", literal(value, true)),
        Op::In(values) => format!("is one of [{}]", values.iter().map(|v| literal(v, true)).collect::<Vec<_>>().join(", ")),
        Op::Lt(bound) => format!("is below {}", plain(*bound)),
        Op::Le(bound) => format!("is at most {}", plain(*bound)),
        Op::Gt(bound) => format!("is above {}", plain(*bound)),
        Op::Ge(bound) => format!("is at least {}", plain(*bound)),
        Op::Exists(true) => "is present".to_owned(),
        Op::Exists(false) => "is absent".to_owned(),
        Op::Glob(_, pattern) => format!("matches {}", py_str(pattern)),
        Op::Prefix(prefix) => format!("starts with {}", py_str(prefix)),
    }
}
