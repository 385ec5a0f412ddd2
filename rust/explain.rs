//! Why a plan would decide a span as it does: the stages walked in order, in
//! plain words, with the live boost and pace. Reads state, changes none (no
//! demand is counted, no budget reserved, no token taken).

use crate::clock::Moment;
use crate::plan::{ParentFacts, Plan, SpanFacts, Stage};
use crate::remote::Compiled;
use crate::rules::{Action, SpanView};
use crate::threshold::{self, NEVER};
use crate::words::{plain, py_float, py_str};

/// The walk's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// One line per stage that spoke.
    pub lines: Vec<String>,
    /// The probability a span like this is kept with (1 for a forced keep,
    /// None when the parent decides).
    pub probability: Option<f64>,
    /// The `th` a kept span would carry, at the plan's precision.
    pub th: Option<String>,
    /// A keep rule decides (budget pacing does not apply unless it caps keep rules).
    pub forced: bool,
}

/// Explain the decision for `span` (`parent`: whether it has a valid parent) at `now`.
pub fn explain<S: SpanView + ?Sized>(plan: &Plan, span: &S, parent: bool, now: &Moment) -> Explanation {
    let mut lines = Vec::new();
    let forced = |lines: Vec<String>| Explanation { lines, probability: Some(1.0), th: Some("0".to_owned()), forced: true };
    let parent_decides = parent && plan.respect_parent;
    let mut probability = 1.0f64;
    let mut rated = false;
    for stage in &plan.stages {
        match stage {
            Stage::Composite(tree) => {
                let parent_facts = ParentFacts { sampled: true, remote: true, ot: Default::default() };
                let facts = SpanFacts { trace_id_low64: 0, parent: parent.then_some(parent_facts) };
                let (lines, probability) = tree.explain(&facts, span);
                let th = probability.filter(|p| *p > 0.0).map(|p| threshold::encode_th(crate::composable::exact_threshold(p)));
                return Explanation { lines, probability, th, forced: false };
            }
            Stage::ForceKeep(set) => {
                let (index, _) = set.first_match(span);
                if index < set.rules.len() {
                    lines.push(format!(
                        "force_keep rule {} keeps it: probability 1 (th:0), even under a parent that was not sampled",
                        py_str(set.rule_name(index))
                    ));
                    return forced(lines);
                }
            }
            Stage::Rules(set) => {
                let (index, action) = set.first_match(span);
                let name = set.rule_name(index);
                match action {
                    Action::Keep => {
                        lines.push(format!(
                            "rule {} keeps it: probability 1 (th:0), even under a parent that was not sampled",
                            py_str(name)
                        ));
                        return forced(lines);
                    }
                    _ if parent_decides => break,
                    Action::Drop => {
                        lines.push(format!("rule {} drops it (route {})", py_str(name), py_str(span.route())));
                        return Explanation { lines, probability: Some(0.0), th: None, forced: false };
                    }
                    Action::Rate(rate) => {
                        let scaled = set.scale(rate, span, &mut || now.wall());
                        let who = if index < set.rules.len() {
                            format!("rule {}", py_str(name))
                        } else {
                            "no rule matches: the default rate".to_owned()
                        };
                        lines.push(format!("{who} (route {}): probability {}", py_str(span.route()), short(scaled)));
                        probability *= scaled;
                        rated = true;
                    }
                }
            }
            Stage::Probability { probability: p, .. } => {
                if parent_decides {
                    break;
                }
                lines.push(format!("probability {}", short(*p)));
                probability *= p;
                rated = true;
            }
            Stage::TraceIdRatio { rate, .. } => {
                if parent_decides {
                    break;
                }
                lines.push(format!("the SDK's legacy trace id ratio {} (no th is written)", short(*rate)));
                return Explanation { lines, probability: Some(*rate), th: None, forced: false };
            }
            Stage::Boost(booster) => {
                if parent_decides {
                    break;
                }
                let route = (booster.signals.routes.len() > 1).then(|| span.route());
                let multiplier = booster.multiplier(route, now.monotonic());
                lines.push(format!("times the adaptive boost in force: x{}", short(multiplier)));
                probability = (probability * multiplier).min(1.0);
            }
            Stage::Budget(pacer) => {
                if parent_decides {
                    break;
                }
                let pace = pacer.explained_multiplier(now, probability);
                lines.push(format!("times the budget's pacing probability: {}", short(pace)));
                probability *= pace;
            }
            Stage::RateLimit(bucket) => {
                if parent_decides {
                    break;
                }
                lines.push(format!("subject to the rate limit of {} new traces per second", plain(bucket.rate())));
            }
            Stage::XRay(xray) => {
                if parent_decides {
                    break;
                }
                rated = true;
                let table = xray.table();
                let (line, p) = xray.explain(&table, xray.choose(&table, span, now, plan.xray_keys_at()), now);
                lines.push(line);
                probability *= p;
            }
            Stage::Remote(remote) => {
                if parent_decides {
                    break;
                }
                rated = true;
                let compiled = remote.current();
                match &**compiled {
                    Compiled::RateLimiting { rate, .. } => {
                        lines.push(format!("the remote strategy keeps at most {} traces per second (no th)", plain(*rate)));
                    }
                    _ => {
                        let (index, p) = match &**compiled {
                            Compiled::PerOperation { by_name, operations, default, .. } => {
                                let index = by_name.get(span.name()).copied();
                                (index, index.map_or(default.probability, |i| operations[i].probability))
                            }
                            Compiled::Probabilistic(rule) => (None, rule.probability),
                            Compiled::RateLimiting { .. } => unreachable!(),
                        };
                        let whose = match index {
                            Some(_) => format!("operation {}", py_str(span.name())),
                            None => "the default".to_owned(),
                        };
                        lines.push(format!("the remote strategy ({}) gives {whose} probability {}", remote.describe(), short(p)));
                        probability *= p;
                    }
                }
            }
        }
    }
    if parent_decides {
        lines.push("it has a parent: it follows the parent's decision (only force_keep rules override)".to_owned());
        return Explanation { lines, probability: None, th: None, forced: false };
    }
    if !rated {
        lines.insert(0, "no rate stage: probability 1".to_owned());
    }
    let probability = probability.clamp(0.0, 1.0);
    let t = threshold::threshold_for_probability(probability, plan.precision);
    let th = (t < NEVER).then(|| threshold::encode_th(t));
    lines.push(format!(
        "so: kept with probability {}{}",
        short(probability),
        th.as_ref()
            .map(|th| format!(", th:{th} (kept spans carry it in tracestate as ot=th:{th}; th and rv: see the docs' index)"))
            .unwrap_or_default()
    ));
    Explanation { lines, probability: Some(probability), th, forced: false }
}

/// A probability in at most four significant digits, as Python's `:.4g` gives.
fn short(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return py_float(value);
    }
    let digits = 4 - 1 - value.abs().log10().floor() as i32;
    let rounded = if digits > 0 { format!("{value:.*}", digits as usize) } else { format!("{value:.0}") };
    let trimmed = if rounded.contains('.') { rounded.trim_end_matches('0').trim_end_matches('.').to_owned() } else { rounded };
    trimmed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        assert_eq!(short(0.225), "0.225");
        assert_eq!(short(0.123456), "0.1235");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(0.0), "0.0");
    }
}
