//! Rule-based sampling: ordered rules (first match wins) that keep, drop or
//! set a rate, and multipliers (by attribute value, by local time of day)
//! that scale a matched rate. Built from user data, evaluated per span.

pub mod condition;
pub mod schedule;

use crate::config::{self, ConfigError};
use crate::data::{self, Data, Fields, Path};
use condition::{parse_ops, AttrValue, Condition, Literal, Op, Subject};
use schedule::Schedule;

/// Attribute keys that give a span its route, in order of preference.
pub const ROUTE_KEYS: [&str; 3] = ["http.route", "url.path", "http.target"];

/// Span kinds by the SDK's `SpanKind.value`.
pub const KIND_NAMES: [&str; 5] = ["internal", "server", "client", "producer", "consumer"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Always keep (business events); the only action that overrides a parent.
    Keep,
    Drop,
    Rate(f64),
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

#[derive(Debug)]
pub enum Multiplier {
    /// Scale by the value of an attribute (user tier); other values scale by `default`.
    Attribute {
        key: usize,
        factors: Vec<(Literal, f64)>,
        default: f64,
    },
    Schedule(Box<Schedule>),
}

/// What a span looks like to the rules. `attribute(i)` reads key `i` of the
/// rule set's key table.
pub trait SpanView {
    fn name(&self) -> &str;
    /// Index into [`KIND_NAMES`], if known.
    fn kind(&self) -> Option<usize>;
    fn is_root(&self) -> bool;
    fn attribute(&self, key: usize) -> Option<AttrValue<'_>>;
    /// The span's route; views may cache it.
    fn route(&self) -> &str {
        route(self)
    }
    /// Whether some value of attribute `key` (each item of a sequence on its
    /// own), written as Python's `str()` writes it, satisfies `test`.
    fn any_attribute_text(&self, key: usize, test: &mut dyn FnMut(&str) -> bool) -> bool {
        match self.attribute(key) {
            Some(AttrValue::Str(text)) => test(text),
            Some(AttrValue::Int(i)) => test(&i.to_string()),
            Some(AttrValue::Float(f)) => test(&crate::words::py_float(f)),
            Some(AttrValue::Bool(b)) => test(if b { "True" } else { "False" }),
            _ => false,
        }
    }
    /// Call `test` with the value of the attribute named `key` (None: the span
    /// lacks it): for attributes named at run time (X-Ray rules), not in the
    /// key table. A view with no attributes behind it has none.
    fn with_named_attribute(&self, _key: &str, test: &mut dyn FnMut(Option<AttrValue<'_>>) -> bool) -> bool {
        test(None)
    }
    /// A composable predicate written in Python, by its slot (a view with no
    /// Python behind it has none: false).
    fn foreign_predicate(&self, _slot: usize) -> bool {
        false
    }
    /// A composable sampler written in Python, by its slot (a view with no
    /// Python behind it has none: a drop).
    fn foreign_intent(&self, _slot: usize) -> crate::composable::ForeignIntent {
        crate::composable::ForeignIntent::default()
    }
}

#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub default_rate: f64,
    pub multipliers: Vec<Multiplier>,
    /// Attribute keys the rules read, indexed by `Subject::Attribute`.
    /// The first three are always [`ROUTE_KEYS`].
    pub keys: Vec<String>,
}

/// Which rule decided (an index into `rules`, or `rules.len()` for the default)
/// and what it says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleOutcome {
    pub rule: usize,
    pub action: Action,
}

impl RuleSet {
    /// First matching rule, or the default rate. Rates are multiplied and
    /// clamped to [0, 1]; `now` is read only when a schedule needs it.
    pub fn evaluate<S: SpanView + ?Sized>(&self, span: &S, now: &mut dyn FnMut() -> f64) -> RuleOutcome {
        let (rule, action) = self.first_match(span);
        let action = match action {
            Action::Rate(rate) => Action::Rate(self.scale(rate, span, now)),
            other => other,
        };
        RuleOutcome { rule, action }
    }

    /// The first rule whose conditions all hold (index, unscaled action), or the default.
    pub fn first_match<S: SpanView + ?Sized>(&self, span: &S) -> (usize, Action) {
        match self.rules.iter().position(|rule| rule.conditions.iter().all(|c| self.holds(c, span))) {
            Some(index) => (index, self.rules[index].action),
            None => (self.rules.len(), Action::Rate(self.default_rate)),
        }
    }

    /// The rule name for an outcome index (`default` for the fallback rate).
    pub fn rule_name(&self, index: usize) -> &str {
        self.rules.get(index).map_or("default", |rule| rule.name.as_str())
    }

    #[inline]
    fn holds<S: SpanView + ?Sized>(&self, condition: &Condition, span: &S) -> bool {
        let value = match condition.subject {
            Subject::Attribute(key) => span.attribute(key),
            Subject::SpanName => Some(AttrValue::Str(span.name())),
            Subject::Route => Some(AttrValue::Str(span.route())),
            Subject::Kind => span.kind().map(|k| AttrValue::Str(KIND_NAMES[k])),
            Subject::Root => Some(AttrValue::Bool(span.is_root())),
        };
        condition.op.matches(value.as_ref())
    }

    /// A rate times every multiplier, clamped to [0, 1].
    pub fn scale<S: SpanView + ?Sized>(&self, rate: f64, span: &S, now: &mut dyn FnMut() -> f64) -> f64 {
        let mut product = rate;
        for multiplier in &self.multipliers {
            product *= match multiplier {
                Multiplier::Attribute { key, factors, default } => match span.attribute(*key) {
                    Some(value) => factors.iter().find(|(l, _)| l.equals(&value)).map_or(*default, |(_, f)| *f),
                    None => *default,
                },
                Multiplier::Schedule(schedule) => schedule.factor_at(now()),
            };
        }
        product.clamp(0.0, 1.0)
    }

    /// Every probability a rate outcome can take (rule rates and the default,
    /// times each combination of multiplier factors, clamped), computed exactly
    /// as [`RuleSet::scale`] does, plus 1.0 for keep rules. `None` when there
    /// would be more than `limit`.
    pub fn possible_probabilities(&self, limit: usize) -> Option<Vec<f64>> {
        let mut products: Vec<f64> = self
            .rules
            .iter()
            .filter_map(|rule| match rule.action {
                Action::Rate(rate) => Some(rate),
                _ => None,
            })
            .chain(std::iter::once(self.default_rate))
            .collect();
        for multiplier in &self.multipliers {
            let factors: Vec<f64> = match multiplier {
                Multiplier::Attribute { factors, default, .. } => {
                    factors.iter().map(|(_, f)| *f).chain(std::iter::once(*default)).collect()
                }
                Multiplier::Schedule(schedule) => schedule.windows().iter().map(|w| w.factor).chain(std::iter::once(1.0)).collect(),
            };
            if products.len().saturating_mul(factors.len()) > limit {
                return None;
            }
            products = products.iter().flat_map(|p| factors.iter().map(move |f| p * f)).collect();
        }
        let mut all: Vec<f64> = products.into_iter().map(|p| p.clamp(0.0, 1.0)).collect();
        all.push(1.0);
        all.sort_by(f64::total_cmp);
        all.dedup();
        Some(all)
    }

    pub fn has_schedule(&self) -> bool {
        self.multipliers.iter().any(|m| matches!(m, Multiplier::Schedule(_)))
    }
}

/// The first present string of `http.route`, `url.path`, `http.target`, else the span name.
pub fn route<S: SpanView + ?Sized>(span: &S) -> &str {
    for key in 0..ROUTE_KEYS.len() {
        if let Some(AttrValue::Str(value)) = span.attribute(key) {
            return value;
        }
    }
    span.name()
}

const RULE_FIELDS: &[&str] = &["name", "span_name", "kind", "root", "route", "match", "rate", "action"];

/// Build a rule set from user data: `rules` (a list of rule mappings),
/// `default_rate`, and `multipliers` (a list).
pub fn parse(rules: &Data, default_rate: f64, multipliers: &Data) -> Result<RuleSet, ConfigError> {
    let mut keys = route_keys();
    parse_at(&Path::root("rules"), rules, default_rate, &Path::root("multipliers"), multipliers, &mut keys, false)
}

/// A fresh key table: the route keys always come first.
pub fn route_keys() -> Vec<String> {
    ROUTE_KEYS.iter().map(|k| k.to_string()).collect()
}

/// Rules whose only action is keep (a pipeline's `force_keep` stage): a rule
/// gives conditions and an optional name.
pub fn parse_force_keep(path: &Path, rules: &Data, keys: &mut Vec<String>) -> Result<RuleSet, ConfigError> {
    parse_at(path, rules, 0.0, &Path::root("multipliers"), &Data::List(Vec::new()), keys, true)
}

/// `parse` with paths under `rules_path` / `multipliers_path` and a shared key table.
pub fn parse_at(
    rules_path: &Path,
    rules: &Data,
    default_rate: f64,
    multipliers_path: &Path,
    multipliers: &Data,
    keys: &mut Vec<String>,
    keep_only: bool,
) -> Result<RuleSet, ConfigError> {
    let default_rate = config::probability("default_rate", default_rate)?;
    let mut parsed = Vec::new();
    for (i, rule) in data::list(rules_path, rules)?.iter().enumerate() {
        parsed.push(parse_rule(&rules_path.index(i), rule, keys, keep_only)?);
    }
    // One pass with a map: linear in the number of rules, however many there are.
    let mut first_by_name: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(parsed.len());
    for (i, rule) in parsed.iter().enumerate() {
        if rule.name == "default" {
            return Err(rules_path.index(i).field("name").error("\"default\" is reserved for the default rate; choose another name"));
        }
        if let Some(&first) = first_by_name.get(rule.name.as_str()) {
            return Err(rules_path
                .index(i)
                .field("name")
                .error(format!("{} is already the name of rules[{first}]; rule names must be unique", crate::words::quoted(&rule.name))));
        }
        first_by_name.insert(rule.name.as_str(), i);
    }
    let mut parsed_multipliers = Vec::new();
    for (i, multiplier) in data::list(multipliers_path, multipliers)?.iter().enumerate() {
        parsed_multipliers.push(parse_multiplier(&multipliers_path.index(i), multiplier, keys)?);
    }
    Ok(RuleSet { rules: parsed, default_rate, multipliers: parsed_multipliers, keys: keys.clone() })
}

fn key_index(keys: &mut Vec<String>, key: &str) -> usize {
    match keys.iter().position(|k| k == key) {
        Some(index) => index,
        None => {
            keys.push(key.to_owned());
            keys.len() - 1
        }
    }
}

fn parse_rule(path: &Path, rule: &Data, keys: &mut Vec<String>, keep_only: bool) -> Result<Rule, ConfigError> {
    let mut fields = Fields::new(path, rule)?;
    let name = match fields.take("name") {
        Some((p, value)) => {
            let name = data::string(&p, value)?;
            if name.is_empty() {
                return Err(p.error("a rule name cannot be empty"));
            }
            name.to_owned()
        }
        None => path.as_str().to_owned(),
    };
    let mut conditions = Vec::new();
    if let Some((p, value)) = fields.take("span_name") {
        conditions.extend(string_ops(&p, value)?.into_iter().map(|op| Condition { subject: Subject::SpanName, op }));
    }
    if let Some((p, value)) = fields.take("route") {
        conditions.extend(string_ops(&p, value)?.into_iter().map(|op| Condition { subject: Subject::Route, op }));
    }
    if let Some((p, value)) = fields.take("kind") {
        conditions.push(Condition { subject: Subject::Kind, op: kind_op(&p, value)? });
    }
    if let Some((p, value)) = fields.take("root") {
        conditions.push(Condition { subject: Subject::Root, op: Op::Eq(Literal::Bool(data::boolean(&p, value)?)) });
    }
    if let Some((p, value)) = fields.take("match") {
        let Data::Map(entries) = value else {
            return Err(p.error(format!("expected a mapping of attribute names to conditions, got {}", value.described())));
        };
        for (key, spec) in entries {
            let key_path = p.member(key);
            if key.is_empty() {
                return Err(key_path.error("an attribute name cannot be empty"));
            }
            let subject = Subject::Attribute(key_index(keys, key));
            conditions.extend(parse_ops(&key_path, spec)?.into_iter().map(|op| Condition { subject, op }));
        }
    }
    let rate = fields.take("rate");
    let action = fields.take("action");
    if keep_only {
        if let Some((p, _)) = rate {
            return Err(p.error("force_keep rules always keep; remove the rate (put rated rules in the rules stage)"));
        }
        if let Some((p, value)) = action.filter(|(_, v)| **v != Data::Str("keep".into())) {
            return Err(p.error(format!("force_keep rules always keep, got action {}; put other actions in the rules stage", value.show())));
        }
        fields.finish(RULE_FIELDS)?;
        return Ok(Rule { name, conditions, action: Action::Keep });
    }
    let action = match (rate, action) {
        (Some((p, value)), None) => {
            let rate = data::number(&p, value).map_err(|_| p.error(format!("expected a number in [0, 1], got {}", value.show())))?;
            Action::Rate(config::probability(p.as_str(), rate)?)
        }
        (None, Some((p, value))) => match value {
            Data::Str(s) if s == "keep" => Action::Keep,
            Data::Str(s) if s == "drop" => Action::Drop,
            other => {
                return Err(p.error(format!("unknown action {}; expected \"keep\" or \"drop\" (or give a rate instead)", other.show())))
            }
        },
        (Some(_), Some(_)) => return Err(path.error("give either rate or action, not both")),
        // A field nobody took is likelier the rate or action misnamed (`sample_rate`) than absent.
        (None, None) => {
            // (Every field taken: no typo left for a "did you mean" to point at.)
            return Err(fields.unknown(RULE_FIELDS).unwrap_or_else(|| {
                path.error("missing rate or action; expected rate: a number in [0, 1], or action: \"keep\" / \"drop\"")
            }));
        }
    };
    fields.finish(RULE_FIELDS)?;
    Ok(Rule { name, conditions, action })
}

/// Conditions on a string subject (span name, route): equality, in, glob, prefix, exists.
fn string_ops(path: &Path, value: &Data) -> Result<Vec<Op>, ConfigError> {
    let ops = parse_ops(path, value)?;
    for op in &ops {
        if matches!(op, Op::Lt(_) | Op::Le(_) | Op::Gt(_) | Op::Ge(_)) {
            return Err(path.error("numeric comparison on a string; expected one of ==, in, glob, prefix"));
        }
    }
    Ok(ops)
}

fn kind_op(path: &Path, value: &Data) -> Result<Op, ConfigError> {
    let names: Vec<&Data> = match value {
        Data::Str(_) => vec![value],
        Data::List(items) if !items.is_empty() => items.iter().collect(),
        other => return Err(path.error(format!("expected a span kind or a list of them, got {}", other.show()))),
    };
    let mut literals = Vec::new();
    for name in names {
        let text = match name {
            Data::Str(s) => s.to_ascii_lowercase(),
            other => return Err(path.error(format!("expected a span kind, got {}", other.show()))),
        };
        if !KIND_NAMES.contains(&text.as_str()) {
            return Err(path.error(format!(
                "unknown span kind {}; expected one of {}",
                crate::words::quoted(&text),
                KIND_NAMES.join(", ")
            )));
        }
        literals.push(Literal::Str(text));
    }
    Ok(Op::In(literals))
}

fn parse_multiplier(path: &Path, spec: &Data, keys: &mut Vec<String>) -> Result<Multiplier, ConfigError> {
    let mut fields = Fields::new(path, spec)?;
    if let Some((p, schedule)) = fields.take("schedule") {
        fields.finish(&["schedule"])?;
        return Ok(Multiplier::Schedule(Box::new(schedule::parse(&p, schedule)?)));
    }
    let Some((attribute_path, attribute)) = fields.take("attribute") else {
        return Err(path.error("expected either attribute (with factors) or schedule"));
    };
    let key = data::string(&attribute_path, attribute)?;
    let (factors_path, factors_data) =
        fields.take("factors").ok_or_else(|| path.error("missing field factors (a mapping of attribute value to multiplier)"))?;
    let default = match fields.take("default") {
        Some((p, value)) => non_negative(&p, value)?,
        None => 1.0,
    };
    fields.finish(&["attribute", "factors", "default"])?;
    let Data::Map(entries) = factors_data else {
        return Err(factors_path.error(format!("expected a mapping of attribute value to multiplier, got {}", factors_data.described())));
    };
    let mut factors = Vec::new();
    for (value, factor) in entries {
        factors.push((Literal::Str(value.clone()), non_negative(&factors_path.member(value), factor)?));
    }
    Ok(Multiplier::Attribute { key: key_index(keys, key), factors, default })
}

fn non_negative(path: &Path, value: &Data) -> Result<f64, ConfigError> {
    let factor = data::number(path, value)?;
    if factor < 0.0 {
        return Err(path.error(format!("{} is negative; expected a multiplier >= 0", crate::words::plain(factor))));
    }
    Ok(factor)
}

#[cfg(test)]
mod tests;
