//! A composable tree from plain data: the `composite/development` section of
//! an OpenTelemetry configuration file (always_on, always_off, probability,
//! parent_threshold, rule_based), tracesieve's additions (annotating, any_of,
//! rate_limited, and `tracesieve`: a whole pipeline as one node), and the
//! predicates the Python API builds (`predicate`, `foreign`).

use std::sync::Arc;

use super::pattern::Glob;
use super::predicate::{Predicate, PARENT_NAMES};
use super::{exact_threshold, Composite, Mark, Node, MAX_MARKS};
use crate::clock::{Clock, Moment};
use crate::config::{self, ConfigError};
use crate::data::{self, Data, Fields, Path};
use crate::pipeline;
use crate::rate_limit::TokenBucket;
use crate::rules::condition::Literal;
use crate::rules::{self, KIND_NAMES};
use crate::store::Store;
use crate::threshold::NEVER;

/// A pipeline node's name, as configuration files spell it.
const PIPELINE: &str = "tracesieve";
/// Node names, as configuration files spell them.
pub const NODES: &[&str] =
    &["always_on", "always_off", "probability", "parent_threshold", "rule_based", "annotating", "any_of", "rate_limited", "tracesieve"];
/// Conditions of a rule, as configuration files spell them.
const RULE_FIELDS: &[&str] = &["sampler", "attribute_values", "attribute_patterns", "span_kinds", "parent", "predicate"];
const PREDICATES: &[&str] =
    &["always", "attribute_values", "attribute_patterns", "attribute_equals", "span_kinds", "parent", "all", "foreign"];
/// Pipeline settings that belong to the composite sampler, not to a node inside it.
const TOP_LEVEL_ONLY: &[&str] = &["respect_parent", "trust_incoming", "defer", "reload", "reload_interval", "record_rule"];

/// What a tree is parsed with.
struct Builder<'c> {
    keys: Vec<String>,
    marks: Vec<Mark>,
    foreign_composables: usize,
    foreign_predicates: usize,
    pipelines: Vec<super::PipelineParts>,
    clock: &'c Arc<dyn Clock>,
    budget_store: Option<&'c str>,
}

/// Parse a composable tree. `clock` runs its rate limits and pipelines;
/// `budget_store`: where a pipeline's budget keeps its record by default.
pub fn composite(doc: &Data, path: &Path, clock: &Arc<dyn Clock>, budget_store: Option<&str>) -> Result<Composite, ConfigError> {
    let mut builder = Builder {
        keys: rules::route_keys(),
        marks: Vec::new(),
        foreign_composables: 0,
        foreign_predicates: 0,
        pipelines: Vec::new(),
        clock,
        budget_store,
    };
    let root = builder.node(path, doc)?;
    Ok(Composite {
        root,
        keys: builder.keys,
        marks: builder.marks,
        foreign_composables: builder.foreign_composables,
        foreign_predicates: builder.foreign_predicates,
        pipelines: builder.pipelines,
    })
}

impl Builder<'_> {
    fn node(&mut self, path: &Path, doc: &Data) -> Result<Node, ConfigError> {
        // A composable written in Python, by its slot (the Python API's own entry).
        if let Data::Map(entries) = doc {
            if let [(name, spec)] = entries.as_slice() {
                if name == "foreign" {
                    let index = slot(&path.member(name), spec)?;
                    self.foreign_composables = self.foreign_composables.max(index + 1);
                    let mark = self.mark(path, Mark::Foreign(index))?;
                    return Ok(Node::Foreign { index, mark });
                }
                // A `tracesieve` node whose stores the Python layer resolved:
                // `{document, budget_store}`.
                if name == "pipeline" {
                    let mut fields = Fields::new(path, spec)?;
                    let (_, document) = fields.take("document").ok_or_else(|| fields.missing(&["document"], "missing field document"))?;
                    let budget_store = match fields.take("budget_store") {
                        Some((_, Data::Str(url))) => Some(url.clone()),
                        Some((_, Data::Null)) | None => None,
                        Some((p, other)) => return Err(p.error(format!("expected a store URL, got {}", other.described()))),
                    };
                    fields.finish(&["document", "budget_store"])?;
                    return self.pipeline(&path.member(PIPELINE), document, budget_store.as_deref().or(self.budget_store));
                }
            }
        }
        let (name, spec) = single(path, doc, NODES, "a composable sampler")?;
        let path = path.member(name);
        Ok(match name {
            "always_on" => {
                empty(&path, spec)?;
                Node::AlwaysOn
            }
            "always_off" => {
                empty(&path, spec)?;
                Node::AlwaysOff
            }
            "probability" => {
                let mut fields = optional_fields(&path, spec)?;
                let ratio = match fields.as_mut().and_then(|f| f.take("ratio")) {
                    Some((_, Data::Null)) | None => 1.0,
                    Some((p, value)) => config::probability(p.as_str(), data::number(&p, value)?)?,
                };
                if let Some(fields) = fields {
                    fields.finish(&["ratio"])?;
                }
                // A ratio too small for 56 bits is no probability: always off, as the spec asks for 0.
                match exact_threshold(ratio) {
                    NEVER => Node::AlwaysOff,
                    threshold => Node::Probability { threshold },
                }
            }
            "parent_threshold" => {
                let mut fields = Fields::new(&path, spec)?;
                let (root_path, root) = fields
                    .take("root")
                    .ok_or_else(|| fields.missing(&["root"], "missing field root (the sampler for spans with no parent)"))?;
                fields.finish(&["root"])?;
                Node::ParentThreshold(Box::new(self.node(&root_path, root)?))
            }
            "rule_based" => {
                let mut fields = optional_fields(&path, spec)?;
                let rules = match fields.as_mut().and_then(|f| f.take("rules")) {
                    Some((_, Data::Null)) | None => Vec::new(),
                    Some((rules_path, rules)) => data::list(&rules_path, rules)?
                        .iter()
                        .enumerate()
                        .map(|(i, rule)| self.rule(&rules_path.index(i), rule))
                        .collect::<Result<_, _>>()?,
                };
                if let Some(fields) = fields {
                    fields.finish(&["rules"])?;
                }
                Node::RuleBased(rules)
            }
            "annotating" => {
                let mut fields = Fields::new(&path, spec)?;
                let (attributes_path, attributes) = fields
                    .take("attributes")
                    .ok_or_else(|| fields.missing(&["attributes"], "missing field attributes (added to the spans kept)"))?;
                let (delegate_path, delegate) = fields
                    .take("delegate")
                    .ok_or_else(|| fields.missing(&["delegate"], "missing field delegate (the sampler that decides)"))?;
                fields.finish(&["attributes", "delegate"])?;
                check_attributes(&attributes_path, attributes)?;
                let delegate = Box::new(self.node(&delegate_path, delegate)?);
                let mark = self.mark(&path, Mark::Attributes(attributes.clone()))?;
                Node::Annotating { delegate, mark }
            }
            "any_of" => {
                let delegates = data::list(&path, spec)?;
                if delegates.is_empty() {
                    return Err(path.error("expected at least one sampler"));
                }
                Node::AnyOf(delegates.iter().enumerate().map(|(i, d)| self.node(&path.index(i), d)).collect::<Result<_, _>>()?)
            }
            "rate_limited" => {
                let mut fields = Fields::new(&path, spec)?;
                let (delegate_path, delegate) = fields
                    .take("delegate")
                    .ok_or_else(|| fields.missing(&["delegate"], "missing field delegate (the sampler whose keeps are limited)"))?;
                let (rate_path, rate) = fields
                    .take("traces_per_second")
                    .ok_or_else(|| fields.missing(&["traces_per_second"], "missing field traces_per_second"))?;
                let rate = data::number(&rate_path, rate)?;
                let burst = match fields.take("burst") {
                    Some((p, value)) => data::number(&p, value)?,
                    None => rate.max(1.0),
                };
                fields.finish(&["delegate", "traces_per_second", "burst"])?;
                let delegate = Box::new(self.node(&delegate_path, delegate)?);
                let now = Moment::new(&**self.clock);
                let bucket = TokenBucket::in_store(&Arc::new(Store::local()), rate, burst, now.monotonic())
                    .map_err(|e| ConfigError::new(path.field(e.field.trim_start_matches("rate_limit.")).as_str(), e.message))?;
                Node::RateLimited { delegate, bucket: Arc::new(bucket) }
            }
            "tracesieve" => self.pipeline(&path, spec, self.budget_store)?,
            _ => unreachable!("checked against NODES"),
        })
    }

    /// A tracesieve pipeline document as one node. Parents are the
    /// composite's business (`parent_threshold`), so it decides as for a root.
    fn pipeline(&mut self, path: &Path, spec: &Data, budget_store: Option<&str>) -> Result<Node, ConfigError> {
        if let Data::Map(entries) = spec {
            if let Some((key, _)) = entries.iter().find(|(key, _)| TOP_LEVEL_ONLY.contains(&key.as_str())) {
                return Err(path
                    .member(key)
                    .error("belongs to the composite sampler, not to a node inside it (parents are decided by parent_threshold)"));
            }
            // Read by tracesieve.TracerProvider from a whole document: inside a node it would do nothing.
            if entries.iter().any(|(key, _)| key == "tail") {
                return Err(path.member("tail").error(
                    "is read by tracesieve.TracerProvider from a whole tracesieve document, not by a node inside a composite sampler",
                ));
            }
            // State files are written by PipelineSampler, which a node inside a composite is not.
            let budget = entries.iter().find(|(key, _)| key == "budget").map(|(_, budget)| budget);
            if let Some(Data::Map(settings)) = budget {
                if settings.iter().any(|(key, value)| key == "state_path" && *value != Data::Null) {
                    return Err(path.member("budget").member("state_path").error(
                        "is not kept for a pipeline inside a composite sampler; its budget keeps its record on the host \
                         by default (or in the store= you give it)",
                    ));
                }
            }
            // X-Ray's rules read the span's HTTP attributes from a key table of their own.
            if entries.iter().any(|(key, _)| key == "xray_remote") {
                return Err(path.member("xray_remote").error(
                    "is not supported inside a composite sampler; use XRayRemoteSampler, or a pipeline document with an xray_remote stage",
                ));
            }
        }
        let mut doc = spec.clone();
        if let Data::Map(entries) = &mut doc {
            entries.push(("respect_parent".to_owned(), Data::Bool(false)));
        }
        let parsed = pipeline::parse_in(&doc, self.clock.clone(), &Default::default(), budget_store, &mut self.keys)
            .map_err(|e| ConfigError::new(path.field(&e.field).as_str().trim_end_matches('.'), e.message))?;
        let plan = Arc::new(parsed.plan);
        self.pipelines.push(super::PipelineParts {
            path: path.as_str().to_owned(),
            plan: plan.clone(),
            signals: parsed.signals,
            resolved: parsed.resolved,
        });
        Ok(Node::Pipeline(plan))
    }

    fn rule(&mut self, path: &Path, rule: &Data) -> Result<(Predicate, Node), ConfigError> {
        let mut fields = Fields::new(path, rule)?;
        let (sampler_path, sampler) = fields
            .take("sampler")
            .ok_or_else(|| fields.missing(&["sampler"], "missing field sampler (what decides the spans this rule matches)"))?;
        let mut conditions = Vec::new();
        for name in &RULE_FIELDS[1..] {
            if let Some((p, value)) = fields.take(name) {
                conditions.push(if *name == "predicate" { self.predicate(&p, value)? } else { self.condition(&p, name, value)? });
            }
        }
        fields.finish(RULE_FIELDS)?;
        let predicate = match conditions.len() {
            0 => Predicate::Always,
            1 => conditions.pop().expect("one condition"),
            _ => Predicate::All(conditions),
        };
        Ok((predicate, self.node(&sampler_path, sampler)?))
    }

    /// A predicate as the Python API writes one (a mapping with one key).
    fn predicate(&mut self, path: &Path, doc: &Data) -> Result<Predicate, ConfigError> {
        let (name, spec) = single(path, doc, PREDICATES, "a predicate")?;
        let path = path.member(name);
        Ok(match name {
            "always" => {
                empty(&path, spec)?;
                Predicate::Always
            }
            "all" => Predicate::All(
                data::list(&path, spec)?.iter().enumerate().map(|(i, p)| self.predicate(&path.index(i), p)).collect::<Result<_, _>>()?,
            ),
            "attribute_equals" => {
                let mut fields = Fields::new(&path, spec)?;
                let (key_path, key) = fields.take("key").ok_or_else(|| fields.missing(&["key"], "missing field key"))?;
                let (value_path, value) = fields.take("value").ok_or_else(|| fields.missing(&["value"], "missing field value"))?;
                fields.finish(&["key", "value"])?;
                let value = match value {
                    Data::Str(s) => Literal::Str(s.clone()),
                    Data::Int(i) => Literal::Int(*i),
                    Data::Float(f) => Literal::Float(*f),
                    Data::Bool(b) => Literal::Bool(*b),
                    other => return Err(value_path.error(format!("expected a string, number or boolean, got {}", other.described()))),
                };
                Predicate::AttributeEquals { key: self.key(data::string(&key_path, key)?), value }
            }
            "foreign" => {
                let index = slot(&path, spec)?;
                self.foreign_predicates = self.foreign_predicates.max(index + 1);
                Predicate::Foreign(index)
            }
            other => self.condition(&path, other, spec)?,
        })
    }

    /// A condition a configuration file writes in a rule.
    fn condition(&mut self, path: &Path, name: &str, spec: &Data) -> Result<Predicate, ConfigError> {
        Ok(match name {
            "attribute_values" => {
                let mut fields = Fields::new(path, spec)?;
                let (key_path, key) = fields.take("key").ok_or_else(|| fields.missing(&["key"], "missing field key"))?;
                let (values_path, values) =
                    fields.take("values").ok_or_else(|| fields.missing(&["values"], "missing field values (a list of strings)"))?;
                fields.finish(&["key", "values"])?;
                let values = strings(&values_path, values)?.into_iter().collect();
                Predicate::AttributeValues { key: self.key(data::string(&key_path, key)?), values }
            }
            "attribute_patterns" => {
                let mut fields = Fields::new(path, spec)?;
                let (key_path, key) = fields.take("key").ok_or_else(|| fields.missing(&["key"], "missing field key"))?;
                let globs = |fields: &mut Fields<'_>, name: &str| -> Result<Vec<Glob>, ConfigError> {
                    match fields.take(name) {
                        Some((_, Data::Null)) | None => Ok(Vec::new()),
                        Some((p, value)) => strings(&p, value)?
                            .iter()
                            .enumerate()
                            .map(|(i, pattern)| Glob::new(pattern).map_err(|e| p.index(i).error(e)))
                            .collect(),
                    }
                };
                let included = globs(&mut fields, "included")?;
                let excluded = globs(&mut fields, "excluded")?;
                fields.finish(&["key", "included", "excluded"])?;
                Predicate::AttributePatterns { key: self.key(data::string(&key_path, key)?), included, excluded }
            }
            "span_kinds" => Predicate::SpanKinds(bits(path, spec, &KIND_NAMES, "span kinds")?),
            "parent" => Predicate::Parent(bits(path, spec, &PARENT_NAMES, "parents")?),
            _ => return Err(path.error("unknown condition")),
        })
    }

    fn key(&mut self, key: &str) -> usize {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key.to_owned());
                self.keys.len() - 1
            }
        }
    }

    /// The next mark: where a kept span's attributes come from.
    fn mark(&mut self, path: &Path, mark: Mark) -> Result<usize, ConfigError> {
        if self.marks.len() >= MAX_MARKS {
            return Err(path.error(format!("more than {MAX_MARKS} annotating and Python samplers in one tree")));
        }
        self.marks.push(mark);
        Ok(self.marks.len() - 1)
    }
}

/// The one `name: spec` pair of a node or predicate mapping.
fn single<'d>(path: &Path, doc: &'d Data, valid: &[&str], what: &str) -> Result<(&'d str, &'d Data), ConfigError> {
    let Data::Map(entries) = doc else {
        return Err(path.error(format!("expected {what}: a mapping with one of {}, got {}", valid.join(", "), doc.described())));
    };
    match entries.as_slice() {
        [(name, spec)] if valid.contains(&name.as_str()) => Ok((name, spec)),
        [(name, _)] => {
            let hint = data::suggestion(name, valid).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
            Err(path.member(name).error(format!("not {what}{hint}; expected one of {}", valid.join(", "))))
        }
        [] => Err(path.error(format!("expected {what}: one of {}, got an empty mapping", valid.join(", ")))),
        _ => Err(path.error(format!(
            "expected {what}: exactly one of {}, got {}",
            valid.join(", "),
            entries.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A node with no settings: `{}` or null.
fn empty(path: &Path, spec: &Data) -> Result<(), ConfigError> {
    match spec {
        Data::Null => Ok(()),
        Data::Map(entries) if entries.is_empty() => Ok(()),
        Data::Map(entries) => Err(path.member(&entries[0].0).error("unknown field; this sampler has no settings")),
        other => Err(path.error(format!("expected an empty mapping, got {}", other.described()))),
    }
}

/// Settings that may be omitted entirely (null).
fn optional_fields<'d>(path: &Path, spec: &'d Data) -> Result<Option<Fields<'d>>, ConfigError> {
    match spec {
        Data::Null => Ok(None),
        other => Fields::new(path, other).map(Some),
    }
}

fn strings(path: &Path, value: &Data) -> Result<Vec<String>, ConfigError> {
    data::list(path, value)?.iter().enumerate().map(|(i, v)| data::string(&path.index(i), v).map(str::to_owned)).collect()
}

/// A set of names from `valid`, as bits.
fn bits(path: &Path, value: &Data, valid: &[&str], what: &str) -> Result<u8, ConfigError> {
    let mut bits = 0u8;
    for (i, item) in data::list(path, value)?.iter().enumerate() {
        let name = data::string(&path.index(i), item)?;
        let Some(position) = valid.iter().position(|v| *v == name) else {
            return Err(path.index(i).error(format!("unknown {what} {}; expected {}", crate::words::quoted(name), valid.join(", "))));
        };
        bits |= 1 << position;
    }
    Ok(bits)
}

/// A slot number the Python layer gave.
fn slot(path: &Path, value: &Data) -> Result<usize, ConfigError> {
    match value {
        Data::Int(i) if *i >= 0 => Ok(*i as usize),
        other => Err(path.error(format!("expected a slot number, got {}", other.show()))),
    }
}

/// Attributes for spans: a mapping of names to strings, numbers, booleans or
/// lists of one of those.
fn check_attributes(path: &Path, value: &Data) -> Result<(), ConfigError> {
    let Data::Map(entries) = value else {
        return Err(path.error(format!("expected a mapping of attribute names to values, got {}", value.described())));
    };
    for (key, value) in entries {
        let scalar = |v: &Data| matches!(v, Data::Str(_) | Data::Int(_) | Data::Float(_) | Data::Bool(_));
        let ok = scalar(value) || matches!(value, Data::List(items) if items.iter().all(scalar));
        if !ok {
            return Err(path.member(key).error(format!("expected a string, number, boolean or a list of them, got {}", value.described())));
        }
    }
    Ok(())
}
