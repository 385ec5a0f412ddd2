//! A composable tree in plain words: the whole tree (`tracesieve check`), and
//! the path one span takes through it (`tracesieve explain`). Reads the tree
//! only: no demand counted, no token taken, no Python composable called.

use super::predicate::{Predicate, PARENT_NAMES};
use super::{Composite, Mark, Node};
use crate::plan::SpanFacts;
use crate::rules::{SpanView, KIND_NAMES};
use crate::threshold::{encode_th, NEVER};
use crate::words::{plain, py_str};

impl Composite {
    /// One line per node, indented by depth.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec!["composite (OpenTelemetry's CompositeSampler): the tree decides every span, parents included".to_owned()];
        self.describe_node(&self.root, 1, &mut lines);
        lines
    }

    fn describe_node(&self, node: &Node, depth: usize, lines: &mut Vec<String>) {
        let pad = "  ".repeat(depth);
        match node {
            Node::AlwaysOn => lines.push(format!("{pad}always_on: keep (th:0)")),
            Node::AlwaysOff => lines.push(format!("{pad}always_off: drop")),
            Node::Probability { threshold } => {
                lines.push(format!("{pad}probability {}: keep, th:{}", probability(*threshold), encode_th(*threshold)))
            }
            Node::ParentThreshold(root) => {
                lines.push(format!("{pad}parent_threshold: a child keeps its parent's th (or follows its sampled flag); a root goes to"));
                self.describe_node(root, depth + 1, lines);
            }
            Node::RuleBased(rules) => {
                lines.push(format!("{pad}rule_based: the first rule that matches decides; no match: drop"));
                for (predicate, node) in rules {
                    lines.push(format!("{pad}  when {}:", self.predicate_words(predicate)));
                    self.describe_node(node, depth + 2, lines);
                }
            }
            Node::Annotating { delegate, mark } => {
                let attributes = match &self.marks[*mark] {
                    Mark::Attributes(data) => crate::words::data_text(data),
                    Mark::Foreign(_) => String::new(),
                };
                lines.push(format!("{pad}annotating: kept spans get {attributes}; deciding:"));
                self.describe_node(delegate, depth + 1, lines);
            }
            Node::AnyOf(nodes) => {
                lines.push(format!("{pad}any_of: kept when any of these would keep it (the lowest threshold)"));
                for node in nodes {
                    self.describe_node(node, depth + 1, lines);
                }
            }
            Node::RateLimited { delegate, bucket } => {
                lines.push(format!(
                    "{pad}rate_limited: at most {} traces per second (bursts of {}), of what this keeps:",
                    plain(bucket.rate()),
                    plain(bucket.burst())
                ));
                self.describe_node(delegate, depth + 1, lines);
            }
            Node::Pipeline(plan) => {
                lines.push(format!("{pad}tracesieve pipeline: {}", plan.stage_names().join(", ")));
            }
            Node::Foreign { index, .. } => lines.push(format!("{pad}a composable sampler written in Python (#{index})")),
        }
    }

    fn predicate_words(&self, predicate: &Predicate) -> String {
        let key = |k: &usize| py_str(&self.keys[*k]);
        match predicate {
            Predicate::Always => "always".to_owned(),
            Predicate::AttributeValues { key: k, values } => {
                let mut values: Vec<&String> = values.iter().collect();
                values.sort();
                format!("{} in [{}]", key(k), values.iter().map(|v| py_str(v)).collect::<Vec<_>>().join(", "))
            }
            Predicate::AttributePatterns { key: k, included, excluded } => {
                let list = |globs: &[super::pattern::Glob]| globs.iter().map(|g| py_str(g.pattern())).collect::<Vec<_>>().join(", ");
                let mut text = format!("{} matches", key(k));
                text.push_str(&if included.is_empty() { " anything".to_owned() } else { format!(" [{}]", list(included)) });
                if !excluded.is_empty() {
                    text.push_str(&format!(" but not [{}]", list(excluded)));
                }
                text
            }
            Predicate::AttributeEquals { key: k, value } => format!("{} == {value:?}", key(k)),
            Predicate::SpanKinds(bits) => format!("span kind in [{}]", names(*bits, &KIND_NAMES)),
            Predicate::Parent(bits) => format!("parent in [{}]", names(*bits, &PARENT_NAMES)),
            Predicate::All(all) => all.iter().map(|p| self.predicate_words(p)).collect::<Vec<_>>().join(" and "),
            Predicate::Foreign(index) => format!("a predicate written in Python (#{index})"),
        }
    }

    /// The path `span` takes, and the probability it is kept with where the
    /// path ends at a fixed threshold (None where it depends on live state,
    /// the parent, or Python code).
    pub fn explain<S: SpanView + ?Sized>(&self, facts: &SpanFacts, span: &S) -> (Vec<String>, Option<f64>) {
        let mut lines = Vec::new();
        let mut node = &self.root;
        loop {
            match node {
                Node::AlwaysOn => {
                    lines.push("always_on keeps it: probability 1 (th:0)".to_owned());
                    return (lines, Some(1.0));
                }
                Node::AlwaysOff => {
                    lines.push("always_off drops it".to_owned());
                    return (lines, Some(0.0));
                }
                Node::Probability { threshold } => {
                    lines.push(format!("probability {}: th:{}", probability(*threshold), encode_th(*threshold)));
                    return (lines, Some(probability(*threshold)));
                }
                Node::ParentThreshold(root) => match facts.parent {
                    None => {
                        lines.push("parent_threshold: no parent, so its root sampler decides".to_owned());
                        node = root;
                    }
                    Some(_) => {
                        lines.push("parent_threshold: it has a parent, whose th (or sampled flag) it follows".to_owned());
                        return (lines, None);
                    }
                },
                Node::RuleBased(rules) => match rules.iter().position(|(p, _)| p.matches(facts, span)) {
                    Some(index) => {
                        // Counted from 1, as a reader counts the rules of the file.
                        let (number, count) = (index + 1, rules.len());
                        lines.push(format!("rule_based: rule {number} of {count} matches ({})", self.predicate_words(&rules[index].0)));
                        node = &rules[index].1;
                    }
                    None => {
                        lines.push("rule_based: no rule matches, so it is dropped".to_owned());
                        return (lines, Some(0.0));
                    }
                },
                Node::Annotating { delegate, .. } => {
                    lines.push("annotating: a kept span gets its attributes".to_owned());
                    node = delegate;
                }
                Node::AnyOf(_) => {
                    lines.push("any_of: kept when any of its samplers would keep it".to_owned());
                    return (lines, None);
                }
                Node::RateLimited { delegate, bucket } => {
                    lines.push(format!("rate_limited to {} traces per second, of:", plain(bucket.rate())));
                    node = delegate;
                }
                Node::Pipeline(plan) => {
                    lines.push(format!("a tracesieve pipeline decides: {}", plan.stage_names().join(", ")));
                    return (lines, None);
                }
                Node::Foreign { .. } => {
                    lines.push("a composable sampler written in Python decides".to_owned());
                    return (lines, None);
                }
            }
        }
    }
}

fn probability(threshold: u64) -> f64 {
    (NEVER - threshold) as f64 / NEVER as f64
}

fn names(bits: u8, all: &[&str]) -> String {
    all.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}
