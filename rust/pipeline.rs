//! A whole sampling pipeline from one configuration document: settings plus
//! stages (force_keep, adaptive, rules, probability, budget, rate_limit),
//! composed in the order they are written into one plan.

use std::sync::Arc;

use crate::adaptive::{BoostPolicy, Booster, ErrorPolicy, Signals};
use crate::budget::pacer::{Downstream, Pacer};
use crate::budget::period::{Calendar, PeriodKind};
use crate::clock::{Clock, Moment};
use crate::config::{self, ConfigError};
use crate::data::{self, Data, Fields, Path};
use crate::plan::{Plan, Stage};
use crate::rate_limit::TokenBucket;
use crate::remote::{RemoteStrategy, DEFAULT_MAX_OPERATIONS};
use crate::rules;
use crate::store::Store;
use crate::threshold::DEFAULT_PRECISION;
use crate::words::plain;

pub const STAGES: &[&str] = &["force_keep", "adaptive", "rules", "probability", "jaeger_remote", "xray_remote", "budget", "rate_limit"];
pub const SETTINGS: &[&str] =
    &["respect_parent", "trust_incoming", "precision", "record_rule", "defer", "reload", "reload_interval", "store", "tail"];

/// Seconds between checks of a watched configuration file, by default.
pub const DEFAULT_RELOAD_INTERVAL: f64 = 2.0;
/// Seconds between budget state snapshots, by default.
pub const DEFAULT_SAVE_INTERVAL: f64 = 10.0;
/// The shortest reload or save interval accepted: shorter would spin a core.
pub const MIN_INTERVAL: f64 = 0.01;

/// The document's settings, with their defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub respect_parent: bool,
    /// Follow what remote parents send (false: an edge service decides them afresh).
    pub trust_incoming: bool,
    pub precision: u32,
    pub record_rule: bool,
    /// Record the spans the plan drops (RECORD_ONLY) for a tail stage.
    pub defer: bool,
    /// Watch the file and reload it when it changes.
    pub reload: bool,
    pub reload_interval: f64,
    /// Where the budget, rate limit and windows keep their state (None: this process).
    pub store: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            respect_parent: true,
            trust_incoming: true,
            precision: DEFAULT_PRECISION,
            record_rule: false,
            defer: false,
            reload: false,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            store: None,
        }
    }
}

/// A parsed pipeline: the plan, what the Python layer wires around it, and
/// the resolved document (every stage's settings with defaults filled in).
pub struct Pipeline {
    pub plan: Plan,
    pub signals: Option<Arc<Signals>>,
    /// Stage names in order, for descriptions.
    pub stage_names: Vec<String>,
    pub settings: Settings,
    /// `{"settings": {...}, "stages": [{"stage": name, ...}, ...]}`.
    pub resolved: Data,
}

/// What a reload hands over from the pipeline it replaces: the windows an
/// installed processor is feeding, and the stateful stages, so pacing and rate
/// limiting carry on instead of starting cold.
#[derive(Default, Clone)]
pub struct Existing {
    pub signals: Option<Arc<Signals>>,
    pub pacer: Option<Arc<Pacer>>,
    pub bucket: Option<Arc<TokenBucket>>,
    pub remote: Option<Arc<RemoteStrategy>>,
    pub xray: Option<Arc<crate::xray::XRay>>,
}

impl Existing {
    /// The stateful stages of a plan (its pacer and token bucket) and `signals`.
    pub fn from_plan(plan: &Plan, signals: Option<Arc<Signals>>) -> Existing {
        let mut existing = Existing { signals, ..Existing::default() };
        for stage in &plan.stages {
            match stage {
                Stage::Budget(pacer) => existing.pacer = Some(pacer.clone()),
                Stage::RateLimit(bucket) => existing.bucket = Some(bucket.clone()),
                Stage::Remote(remote) => existing.remote = Some(remote.clone()),
                Stage::XRay(xray) => existing.xray = Some(xray.clone()),
                _ => {}
            }
        }
        existing
    }
}

/// Build a pipeline, carrying `existing` state over when it is a reload.
/// `budget_store`: where the budget alone keeps its state when the document
/// names no store (its host record, by default).
pub fn parse(doc: &Data, clock: Arc<dyn Clock>, existing: &Existing, budget_store: Option<&str>) -> Result<Pipeline, ConfigError> {
    parse_in(doc, clock, existing, budget_store, &mut rules::route_keys())
}

/// [`parse`], its rules reading attribute keys from `keys` (shared with the
/// composable tree a pipeline is a node of).
pub fn parse_in(
    doc: &Data,
    clock: Arc<dyn Clock>,
    existing: &Existing,
    budget_store: Option<&str>,
    keys: &mut Vec<String>,
) -> Result<Pipeline, ConfigError> {
    let Data::Map(entries) = doc else {
        return Err(ConfigError::new("(top level)", format!("expected a mapping of settings and stages, got {}", doc.described())));
    };
    if let Some(key) = rules_file_key(entries) {
        return Err(Path::root(key).error(
            "this looks like a rules file (RuleSampler's arguments: rules, default_rate, multipliers), not a pipeline; \
             use it with OTEL_TRACES_SAMPLER=tracesieve_rules or RuleSampler.from_file, or move rules, default_rate and \
             multipliers under a rules section to use it as a pipeline stage",
        ));
    }
    let root = Path::root("");
    let mut settings = Settings::default();
    let mut order: Vec<(&str, &Data)> = Vec::new();
    let (mut has_tail, mut defer_given) = (false, false);
    for (key, value) in entries {
        let path = root.member(key);
        match key.as_str() {
            "respect_parent" => settings.respect_parent = data::boolean(&path, value)?,
            "record_rule" => settings.record_rule = data::boolean(&path, value)?,
            "trust_incoming" => settings.trust_incoming = data::boolean(&path, value)?,
            "defer" => {
                settings.defer = data::boolean(&path, value)?;
                defer_given = true;
            }
            "reload" => settings.reload = data::boolean(&path, value)?,
            "reload_interval" => settings.reload_interval = interval(&path, value)?,
            "store" => {
                settings.store = match value {
                    Data::Null => None,
                    other => Some(data::string(&path, other)?.to_owned()),
                }
            }
            "precision" => match value {
                Data::Int(p) => settings.precision = config::precision(path.as_str(), *p)?,
                other => return Err(path.error(format!("expected a whole number of hex digits, got {}", other.described()))),
            },
            // tracesieve.TracerProvider's tail settings, read (and checked) by the provider.
            "tail" if matches!(value, Data::Map(_)) => has_tail = true,
            "tail" => return Err(path.error(format!("expected a mapping of tail settings, got {}", value.described()))),
            stage if STAGES.contains(&stage) => order.push((stage, value)),
            unknown => {
                let valid: Vec<&str> = STAGES.iter().chain(SETTINGS).copied().collect();
                let hint = data::suggestion(unknown, &valid).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
                return Err(path.error(format!(
                    "unknown stage or setting{hint}; expected stages {} or settings {}",
                    STAGES.join(", "),
                    SETTINGS.join(", ")
                )));
            }
        }
    }
    check_order(&order)?;
    if has_tail && !defer_given {
        // Tail decisions can only keep what the head recorded.
        settings.defer = true;
    }

    let store = Arc::new(match &settings.store {
        Some(url) => Store::open(url)?,
        None => Store::local(),
    });
    // What the resolved document and descriptions show: credentials hidden.
    settings.store = store.url().map(str::to_owned);
    let now = Moment::new(&*clock);
    let mut stages = Vec::new();
    let mut resolved_stages = Vec::new();
    let mut signals_out = None;
    let mut cap_forced = false;
    for (name, spec) in &order {
        let path = Path::root(name);
        let (stage, resolved) = match *name {
            "force_keep" => {
                let mut fields = Fields::new(&path, spec)?;
                let (rules_path, rules_data) = fields
                    .take("rules")
                    .ok_or_else(|| fields.missing(&["rules"], "missing field rules (a list of conditions to always keep)"))?;
                if let Some((p, value)) = fields.take("capped_by_budget") {
                    cap_forced = data::boolean(&p, value)?;
                }
                fields.finish(&["rules", "capped_by_budget"])?;
                let set = rules::parse_force_keep(&rules_path, rules_data, keys)?;
                let resolved = vec![("rules", names(&set)), ("capped_by_budget", Data::Bool(cap_forced))];
                (Stage::ForceKeep(Arc::new(set)), resolved)
            }
            "rules" => {
                let mut fields = Fields::new(&path, spec)?;
                let (rules_path, rules_data) =
                    fields.take("rules").ok_or_else(|| fields.missing(&["rules"], "missing field rules (a list of rules)"))?;
                let default_rate = match fields.take("default_rate") {
                    Some((p, value)) => config::probability(p.as_str(), data::number(&p, value)?)?,
                    None => {
                        return Err(fields.missing(&["default_rate"], "missing field default_rate (the rate for spans no rule matches)"))
                    }
                };
                let empty = Data::List(Vec::new());
                let (multipliers_path, multipliers) = fields.take("multipliers").unwrap_or((path.field("multipliers"), &empty));
                fields.finish(&["rules", "default_rate", "multipliers"])?;
                let set = rules::parse_at(&rules_path, rules_data, default_rate, &multipliers_path, multipliers, keys, false)?;
                let resolved = vec![("rules", names(&set)), ("default_rate", Data::Float(default_rate))];
                (Stage::Rules(Arc::new(set)), resolved)
            }
            "probability" => {
                let mut fields = Fields::new(&path, spec)?;
                let (p, value) = fields.take("rate").ok_or_else(|| fields.missing(&["rate"], "missing field rate"))?;
                let rate = config::probability(p.as_str(), data::number(&p, value)?)?;
                fields.finish(&["rate"])?;
                (Stage::probability(rate, settings.precision), vec![("rate", Data::Float(rate))])
            }
            "adaptive" => {
                let (booster, signals) = parse_adaptive(&path, spec, clock.clone(), existing.signals.clone(), &store)?;
                signals_out = Some(signals);
                let resolved = vec![("window", Data::Float(booster.signals.errors.length()))];
                (Stage::Boost(Arc::new(booster)), resolved)
            }
            "jaeger_remote" => {
                let (remote, resolved) = parse_remote(&path, spec, settings.precision, existing.remote.as_ref())?;
                (Stage::Remote(remote), resolved)
            }
            "xray_remote" => {
                let (xray, resolved) = parse_xray(&path, spec, settings.precision, clock.monotonic(), existing.xray.as_ref())?;
                (Stage::XRay(xray), resolved)
            }
            "budget" => {
                let own = match budget_store {
                    Some(url) if settings.store.is_none() => Some(Arc::new(Store::open(url)?)),
                    _ => None,
                };
                let (pacer, resolved) =
                    parse_budget(&path, spec, cap_forced, &now, existing.pacer.as_ref(), own.as_ref().unwrap_or(&store))?;
                (Stage::Budget(pacer), resolved)
            }
            "rate_limit" => {
                let mut fields = Fields::new(&path, spec)?;
                let (p, value) = fields
                    .take("traces_per_second")
                    .ok_or_else(|| fields.missing(&["traces_per_second"], "missing field traces_per_second"))?;
                let rate = data::number(&p, value)?;
                let burst = match fields.take("burst") {
                    Some((p, value)) => data::number(&p, value)?,
                    None => rate.max(1.0),
                };
                fields.finish(&["traces_per_second", "burst"])?;
                let bucket = match &existing.bucket {
                    // An unchanged limit keeps its tokens: a reload is not a fresh burst.
                    Some(old) if old.rate() == rate && old.burst() == burst && old.store().url() == store.url() => old.clone(),
                    _ => Arc::new(TokenBucket::in_store(&store, rate, burst, now.monotonic())?),
                };
                let resolved = vec![("traces_per_second", Data::Float(rate)), ("burst", Data::Float(burst))];
                (Stage::RateLimit(bucket), resolved)
            }
            _ => unreachable!("checked against STAGES"),
        };
        stages.push(stage);
        let mut entry = vec![("stage".to_owned(), Data::Str((*name).to_owned()))];
        entry.extend(resolved.into_iter().map(|(k, v)| (k.to_owned(), v)));
        resolved_stages.push(Data::Map(entry));
    }
    // Every rule set reads the one key table, complete only now.
    for stage in &mut stages {
        if let Stage::Rules(set) | Stage::ForceKeep(set) = stage {
            if let Some(set) = Arc::get_mut(set) {
                set.keys = keys.clone();
            }
        }
    }
    let mut plan = Plan::new(settings.respect_parent, stages);
    plan.precision = settings.precision;
    plan.record_rule = settings.record_rule;
    plan.trust_incoming = settings.trust_incoming;
    let resolved = Data::Map(vec![("settings".to_owned(), settings_data(&settings)), ("stages".to_owned(), Data::List(resolved_stages))]);
    Ok(Pipeline { plan, signals: signals_out, stage_names: order.iter().map(|(n, _)| n.to_string()).collect(), settings, resolved })
}

/// A stage's resolved settings, in order.
type Resolved = Vec<(&'static str, Data)>;

/// The key that gives a rules file away: a top-level `default_rate` or
/// `multipliers`, or `rules` as a list (a pipeline's rules stage is a mapping).
fn rules_file_key(entries: &[(String, Data)]) -> Option<&'static str> {
    entries.iter().find_map(|(key, value)| match (key.as_str(), value) {
        ("default_rate", _) => Some("default_rate"),
        ("multipliers", _) => Some("multipliers"),
        ("rules", Data::List(_)) => Some("rules"),
        _ => None,
    })
}

fn names(set: &rules::RuleSet) -> Data {
    Data::List(set.rules.iter().map(|r| Data::Str(r.name.clone())).collect())
}

fn settings_data(settings: &Settings) -> Data {
    Data::Map(vec![
        ("respect_parent".to_owned(), Data::Bool(settings.respect_parent)),
        ("precision".to_owned(), Data::Int(i64::from(settings.precision))),
        ("record_rule".to_owned(), Data::Bool(settings.record_rule)),
        ("trust_incoming".to_owned(), Data::Bool(settings.trust_incoming)),
        ("defer".to_owned(), Data::Bool(settings.defer)),
        ("reload".to_owned(), Data::Bool(settings.reload)),
        ("reload_interval".to_owned(), Data::Float(settings.reload_interval)),
        ("store".to_owned(), settings.store.clone().map(Data::Str).unwrap_or(Data::Null)),
    ])
}

/// A polling interval in seconds: at least [`MIN_INTERVAL`].
fn interval(path: &Path, value: &Data) -> Result<f64, ConfigError> {
    let seconds = data::number(path, value)?;
    if seconds < MIN_INTERVAL {
        return Err(path.error(format!("{} is too short; expected a number of seconds >= {MIN_INTERVAL}", plain(seconds))));
    }
    Ok(seconds)
}

/// Orders that cannot work: force_keep after other stages, probability stages
/// after the budget, anything after the rate limit, rules with probability.
fn check_order(order: &[(&str, &Data)]) -> Result<(), ConfigError> {
    let position = |name: &str| order.iter().position(|(n, _)| *n == name);
    if let Some(i) = position("force_keep") {
        if i != 0 {
            return Err(ConfigError::new("force_keep", format!("comes after {}; force_keep must be the first stage", order[i - 1].0)));
        }
    }
    if let (Some(_), Some(_)) = (position("rules"), position("probability")) {
        return Err(ConfigError::new("probability", "give either rules (with its default_rate) or probability, not both"));
    }
    if let (Some(_), Some(other)) = (position("jaeger_remote"), position("rules").or(position("probability"))) {
        return Err(ConfigError::new(
            "jaeger_remote",
            format!("give either {} or jaeger_remote (whose strategy sets the probability), not both", order[other].0),
        ));
    }
    if let (Some(_), Some(other)) = (position("xray_remote"), ["rules", "probability", "jaeger_remote"].into_iter().find_map(position)) {
        return Err(ConfigError::new(
            "xray_remote",
            format!("give either {} or xray_remote (whose rules set the probability), not both", order[other].0),
        ));
    }
    if let Some(budget) = position("budget") {
        for later in &order[budget + 1..] {
            if matches!(later.0, "rules" | "probability" | "adaptive" | "jaeger_remote" | "xray_remote") {
                return Err(ConfigError::new(
                    later.0,
                    "comes after budget; the budget paces the final probability, so it must follow rules, probability and adaptive",
                ));
            }
        }
    }
    if let Some(limit) = position("rate_limit") {
        if let Some(later) = order.get(limit + 1) {
            return Err(ConfigError::new(later.0, "comes after rate_limit; rate_limit must be the last stage"));
        }
    }
    Ok(())
}

fn parse_adaptive(
    path: &Path,
    spec: &Data,
    clock: Arc<dyn Clock>,
    existing: Option<Arc<Signals>>,
    store: &Arc<Store>,
) -> Result<(Booster, Arc<Signals>), ConfigError> {
    let mut fields = Fields::new(path, spec)?;
    let mut number = |name: &str, default: f64| -> Result<f64, ConfigError> {
        match fields.take(name) {
            Some((p, value)) => data::number(&p, value),
            None => Ok(default),
        }
    };
    let window = number("window", 300.0)?;
    let resolution = number("resolution", 1.0)?;
    let slow_threshold = number("slow_threshold", 2.0)?;
    let latency_boost = number("latency_boost", 2.0)?;
    let slow_ratio = number("slow_ratio", 0.1)?;
    let max_boost = number("max_boost", 10.0)?;
    let min_spans = number("min_spans", 20.0)?;
    let target = match fields.take("error_rate_target") {
        Some((p, value)) => Some(data::number(&p, value)?),
        None => None,
    };
    let steps = match fields.take("error_steps") {
        Some((p, value)) => Some(crate::adaptive::steps_from_data(&p, value)?),
        None => None,
    };
    let route_thresholds = match fields.take("route_thresholds") {
        Some((p, Data::Map(entries))) => entries
            .iter()
            .map(|(route, t)| Ok((route.clone(), data::number(&p.member(route), t)?)))
            .collect::<Result<Vec<_>, ConfigError>>()?,
        Some((p, other)) => return Err(p.error(format!("expected a mapping of route to seconds, got {}", other.described()))),
        None => Vec::new(),
    };
    fields.finish(&[
        "error_steps",
        "error_rate_target",
        "min_spans",
        "latency_boost",
        "slow_ratio",
        "max_boost",
        "window",
        "resolution",
        "slow_threshold",
        "route_thresholds",
    ])?;
    if min_spans < 0.0 || min_spans.fract() != 0.0 {
        return Err(path.field("min_spans").error(format!("{min_spans} is not a count; expected a whole number >= 0")));
    }
    let errors = match (target, steps) {
        (Some(_), Some(_)) => return Err(path.field("error_rate_target").error("give either error_steps or error_rate_target, not both")),
        (Some(target), None) => ErrorPolicy::Rate { target, min_spans: min_spans as u64 },
        (None, Some(steps)) => ErrorPolicy::Steps(steps),
        (None, None) => BoostPolicy::seed().errors,
    };
    let policy = BoostPolicy { errors, latency_boost, slow_ratio, min_spans: min_spans as u64, max_boost };
    let prefix = |e: ConfigError| ConfigError::new(path.field(&e.field).as_str(), e.message);
    let signals = match existing {
        Some(signals) if signals.store().url() == store.url() => signals,
        _ => Arc::new(Signals::in_store(store, clock, window, resolution, slow_threshold, &route_thresholds).map_err(|e| {
            if e.field == crate::store::FIELD {
                e
            } else {
                prefix(e)
            }
        })?),
    };
    let booster = Booster::new(signals.clone(), policy).map_err(prefix)?;
    Ok((booster, signals))
}

/// A remote stage's optional number of seconds, at least `minimum`.
fn seconds(fields: &mut Fields, name: &str, default: f64, minimum: f64) -> Result<f64, ConfigError> {
    match fields.take(name) {
        Some((p, value)) => {
            let value = data::number(&p, value)?;
            if value < minimum {
                return Err(p.error(format!("{} is too short; expected a number of seconds >= {minimum}", plain(value))));
            }
            Ok(value)
        }
        None => Ok(default),
    }
}

/// The `jaeger_remote` stage: the strategy of a service from a Jaeger strategy
/// source (the Python layer polls `endpoint`; its settings are checked here).
fn parse_remote(
    path: &Path,
    spec: &Data,
    precision: u32,
    existing: Option<&Arc<RemoteStrategy>>,
) -> Result<(Arc<RemoteStrategy>, Resolved), ConfigError> {
    let mut fields = Fields::new(path, spec)?;
    let service = match fields.take("service_name") {
        Some((p, value)) => data::string(&p, value)?.to_owned(),
        None => return Err(fields.missing(&["service_name"], "missing field service_name (the service whose strategy is fetched)")),
    };
    let endpoint = match fields.take("endpoint") {
        Some((p, value)) => {
            let text = data::string(&p, value)?;
            if !(text.starts_with("http://") || text.starts_with("https://") || text.starts_with("file:///")) {
                return Err(p.error(format!(
                    "{} is not a strategy source; expected http://host:5778 (Jaeger or the Collector's extension) or file:///path.json",
                    crate::words::quoted(text)
                )));
            }
            text.to_owned()
        }
        None => "http://localhost:5778".to_owned(),
    };
    let polling_interval = seconds(&mut fields, "polling_interval", 60.0, MIN_INTERVAL)?;
    let timeout = seconds(&mut fields, "timeout", 5.0, 0.001)?;
    let initial_rate = match fields.take("initial_rate") {
        Some((p, value)) => config::probability(p.as_str(), data::number(&p, value)?)?,
        None => 0.001,
    };
    let max_operations = match fields.take("max_operations") {
        Some((_, Data::Int(n))) if *n >= 1 => *n as usize,
        Some((p, other)) => return Err(p.error(format!("expected a whole number >= 1, got {}", other.described()))),
        None => DEFAULT_MAX_OPERATIONS,
    };
    fields.finish(&["service_name", "endpoint", "polling_interval", "timeout", "initial_rate", "max_operations"])?;
    let remote = match existing {
        // The same service and limits: the strategy in force carries on through a reload.
        Some(old) if old.service_name == service && old.max_operations == max_operations && old.initial_rate == initial_rate => old.clone(),
        _ => Arc::new(
            RemoteStrategy::new(&service, initial_rate, max_operations, precision).map_err(|e| path.field(&e.field).error(e.message))?,
        ),
    };
    let resolved = vec![
        ("service_name", Data::Str(service)),
        ("endpoint", Data::Str(endpoint)),
        ("polling_interval", Data::Float(polling_interval)),
        ("timeout", Data::Float(timeout)),
        ("initial_rate", Data::Float(initial_rate)),
        ("max_operations", Data::Int(max_operations as i64)),
    ];
    Ok((remote, resolved))
}

/// The `xray_remote` stage: AWS X-Ray's sampling rules for this service (the
/// Python layer polls `endpoint`; its settings are checked here). The service
/// and platform come from the OpenTelemetry environment unless given.
fn parse_xray(
    path: &Path,
    spec: &Data,
    precision: u32,
    now: f64,
    existing: Option<&Arc<crate::xray::XRay>>,
) -> Result<(Arc<crate::xray::XRay>, Resolved), ConfigError> {
    let mut fields = Fields::new(path, spec)?;
    let mut facts = crate::xray::ResourceFacts::from_environment();
    if let Some((p, value)) = fields.take("service_name") {
        facts.service_name = data::string(&p, value)?.to_owned();
    }
    if let Some((p, value)) = fields.take("cloud_platform") {
        facts.cloud_platform = Some(data::string(&p, value)?.to_owned());
    }
    let endpoint = match fields.take("endpoint") {
        Some((p, value)) => {
            let text = data::string(&p, value)?;
            if !(text.starts_with("http://") || text.starts_with("https://")) {
                return Err(p.error(format!(
                    "{} is not an X-Ray sampling endpoint; expected http://host:2000 (the X-Ray daemon or the Collector's awsproxy)",
                    crate::words::quoted(text)
                )));
            }
            text.to_owned()
        }
        None => crate::xray::DEFAULT_ENDPOINT.to_owned(),
    };
    let polling_interval = seconds(&mut fields, "polling_interval", crate::xray::DEFAULT_RULES_INTERVAL, MIN_INTERVAL)?;
    let timeout = seconds(&mut fields, "timeout", 5.0, 0.001)?;
    fields.finish(&["endpoint", "polling_interval", "timeout", "service_name", "cloud_platform"])?;
    let xray = match existing {
        // The same service: the rules, targets and counts in force carry on through a reload.
        Some(old) if old.resource == facts => old.clone(),
        _ => Arc::new(crate::xray::XRay::new(facts.clone(), precision, now)),
    };
    let resolved = vec![
        ("endpoint", Data::Str(endpoint)),
        ("polling_interval", Data::Float(polling_interval)),
        ("timeout", Data::Float(timeout)),
        ("service_name", Data::Str(facts.service_name)),
        ("cloud_platform", facts.cloud_platform.map_or(Data::Null, Data::Str)),
    ];
    Ok((xray, resolved))
}

fn parse_budget(
    path: &Path,
    spec: &Data,
    cap_forced: bool,
    now: &Moment,
    existing: Option<&Arc<Pacer>>,
    store: &Arc<Store>,
) -> Result<(Arc<Pacer>, Resolved), ConfigError> {
    let mut fields = Fields::new(path, spec)?;
    let (budget_path, budget) =
        fields.take("budget").ok_or_else(|| fields.missing(&["budget"], "missing field budget (in spans, or money with cost_per_span)"))?;
    let budget = data::number(&budget_path, budget)?;
    let cost = match fields.take("cost_per_span") {
        Some((p, value)) => {
            let cost = data::number(&p, value)?;
            if cost <= 0.0 {
                return Err(p.error(format!("{} is not a positive price", plain(cost))));
            }
            cost
        }
        None => 1.0,
    };
    if budget <= 0.0 {
        return Err(budget_path.error(format!("{} is not a positive budget", plain(budget))));
    }
    let spans = (budget / cost + 1e-9).floor();
    if spans < 1.0 {
        return Err(budget_path.error(format!(
            "{} at cost_per_span {} buys no span; expected enough for at least one",
            plain(budget),
            plain(cost)
        )));
    }
    let period = match fields.take("period") {
        Some((p, value)) => PeriodKind::parse(data::string(&p, value)?).map_err(|e| p.error(e.message))?,
        None => PeriodKind::Month,
    };
    let zone = match fields.take("timezone") {
        Some((p, value)) => (p.clone(), data::string(&p, value)?.to_owned()),
        None => (path.field("timezone"), "UTC".to_owned()),
    };
    // Saving snapshots is the Python layer's; the settings are checked here.
    let state_path = match fields.take("state_path") {
        Some((p, value)) => {
            let text = data::string(&p, value)?;
            if text.is_empty() {
                return Err(p.error("an empty path; expected the path of a state file"));
            }
            Data::Str(text.to_owned())
        }
        None => Data::Null,
    };
    let save_interval = match fields.take("save_interval") {
        Some((p, value)) => interval(&p, value)?,
        None => DEFAULT_SAVE_INTERVAL,
    };
    let downstream = match fields.take("downstream") {
        Some((p, value)) => Downstream::parse(data::string(&p, value)?).map_err(|e| p.error(e))?,
        None => Downstream::Pace,
    };
    // The service the budget is for (its host record's name): the Python layer files it.
    let name = match fields.take("name") {
        Some((p, value)) => {
            let text = data::string(&p, value)?;
            if text.is_empty() {
                return Err(p.error("an empty name; expected the service the budget is for"));
            }
            Data::Str(text.to_owned())
        }
        None => Data::Null,
    };
    fields.finish(&["budget", "cost_per_span", "period", "timezone", "state_path", "save_interval", "downstream", "name"])?;
    let calendar = Calendar::new(period, &zone.1).map_err(|e| zone.0.error(e.message))?;
    let pacer = match existing {
        // The same budget: the same pacer, its whole state carried over.
        Some(old)
            if old.budget() == spans as u64
                && old.calendar().kind == period
                && old.calendar().zone_name == zone.1
                && old.caps_forced_keeps() == cap_forced
                && old.downstream() == downstream
                && old.store().url() == store.url() =>
        {
            old.clone()
        }
        _ => {
            let pacer = Pacer::in_store(store, calendar, spans as u64, cap_forced, downstream, now)?;
            if let Some(old) = existing {
                pacer.carry_over(old, now);
            }
            Arc::new(pacer)
        }
    };
    let resolved = vec![
        ("budget", Data::Float(budget)),
        ("cost_per_span", Data::Float(cost)),
        ("budget_spans", Data::Int(spans as i64)),
        ("period", Data::Str(period.name().to_owned())),
        ("timezone", Data::Str(zone.1)),
        ("state_path", state_path),
        ("save_interval", Data::Float(save_interval)),
        ("downstream", Data::Str(downstream.name().to_owned())),
        ("name", name),
        ("record", pacer.store().shown_url().map_or(Data::Null, Data::Str)),
    ];
    Ok((pacer, resolved))
}

#[cfg(test)]
mod tests;
