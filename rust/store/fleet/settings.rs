//! What a `redis://` or `rediss://` store URL says: where Redis is (given to
//! the client as is, credentials included), the fleet's name (a key prefix,
//! so several fleets share one Redis), and tracesieve's own options, which
//! are taken out of the URL before the client sees it.

use url::Url;

use crate::config::ConfigError;

/// The field named in store errors.
const FIELD: &str = super::super::FIELD;
/// Environment variable read for the password when the URL gives none.
pub const PASSWORD_VARIABLE: &str = "TRACESIEVE_REDIS_PASSWORD";

#[derive(Clone, PartialEq)]
pub struct FleetSettings {
    /// The URL for the Redis client (credentials included: never shown).
    connect: String,
    /// The URL with any password replaced by `***`.
    shown: String,
    /// Keys start with `tracesieve:{name}:`.
    pub name: String,
    /// Seconds between the worker's calls (0: none; the caller syncs by hand).
    pub interval: f64,
    /// The share of the budget and rate limit a process takes while it has
    /// never reached the fleet (afterwards: its share of the fleet's demand).
    pub fallback_share: f64,
}

impl std::fmt::Debug for FleetSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FleetSettings({})", self.shown)
    }
}

/// Query options that carry credentials (redis-py reads `password`,
/// `ssl_password` and others from the query as it does from the userinfo).
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "auth", "credential"].iter().any(|word| key.contains(word))
}

/// `url` with every credential replaced by `***`: the userinfo's password
/// and any query option that carries one. What errors, logs and stats show.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(key, value)| {
                let value = if is_secret(&key) { "***".to_owned() } else { value.into_owned() };
                (key.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// Whether an `@` sits past the authority where a Redis URL never has one
/// (its path is a database number, its fragment a name): the sign of a
/// password holding an unencoded `/`, `?` or `#`, which ended the authority
/// early and left the rest of the password in plain view.
fn holds_split_userinfo(url: &Url) -> bool {
    let has_userinfo = !url.username().is_empty() || url.password().is_some();
    url.path().contains('@')
        || url.fragment().is_some_and(|f| f.contains('@'))
        || (!has_userinfo && url.query().is_some_and(|q| q.contains('@')))
}

fn problem(shown: &str, what: impl std::fmt::Display) -> ConfigError {
    ConfigError::new(FIELD, format!("{shown:?} {what}"))
}

impl FleetSettings {
    /// `redis[s]://[user[:password]@]host[:port][/db][?interval=S&fallback_share=F][#name]`.
    pub fn parse(text: &str) -> Result<FleetSettings, ConfigError> {
        let mut url = Url::parse(text).map_err(|e| {
            // The text may hold a password: name only its scheme.
            let scheme = text.split_once("://").map(|(s, _)| s).unwrap_or("?");
            ConfigError::new(FIELD, format!("a {scheme}:// URL that cannot be read ({e}); expected redis://host:6379/0"))
        })?;
        if holds_split_userinfo(&url) {
            return Err(ConfigError::new(
                FIELD,
                format!(
                    "a {}:// URL with an '@' past its host: a password holding '/', '?' or '#' must be percent-encoded (%2F, %3F, %23), as must an '@' in an option; expected redis://:password@host:6379/0",
                    url.scheme()
                ),
            ));
        }
        let shown = redacted(&url);
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(problem(&shown, "is no Redis URL; expected redis://host:6379/0 or rediss:// for TLS"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(problem(&shown, "names no host; expected redis://host:6379/0"));
        }
        let path = url.path().trim_start_matches('/');
        if !(path.is_empty() || path.parse::<u16>().is_ok()) {
            return Err(problem(&shown, format!("has the path {}; expected a database number such as /0", crate::words::quoted(path))));
        }
        let name = match url.fragment() {
            None | Some("") => "default".to_owned(),
            Some(name) if name.len() <= 40 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) => name.to_owned(),
            Some(name) => {
                return Err(problem(
                    &shown,
                    format!("has the fleet name {}; expected 1 to 40 letters, digits, '_', '-' or '.'", crate::words::quoted(name)),
                ))
            }
        };
        let mut interval = 1.0;
        let mut fallback_share = 0.1;
        let mut passed = Vec::new();
        for (key, value) in url.query_pairs() {
            let number = || value.parse::<f64>().ok().filter(|x| x.is_finite());
            match key.as_ref() {
                "interval" => match number() {
                    Some(x) if x == 0.0 || (0.05..=60.0).contains(&x) => interval = x,
                    _ => {
                        return Err(problem(
                            &shown,
                            format!("has interval={value}; expected seconds from 0.05 to 60 (or 0: synced by hand)"),
                        ))
                    }
                },
                "fallback_share" => match number() {
                    Some(x) if x > 0.0 && x <= 1.0 => fallback_share = x,
                    _ => return Err(problem(&shown, format!("has fallback_share={value}; expected a fraction above 0, at most 1"))),
                },
                _ => passed.push((key.into_owned(), value.into_owned())),
            }
        }
        url.set_fragment(None);
        url.set_query(None);
        if !passed.is_empty() {
            url.query_pairs_mut().extend_pairs(passed);
        }
        Ok(FleetSettings { connect: url.to_string(), shown, name, interval, fallback_share })
    }

    /// The URL for the Redis client, credentials included. Never log it.
    pub fn connect_url(&self) -> &str {
        &self.connect
    }

    /// The URL as shown in errors, logs and stats (password hidden).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The Redis key of a piece: `tracesieve:{name}:{piece}`.
    pub fn key(&self, piece: &str) -> String {
        format!("tracesieve:{}:{piece}", self.name)
    }
}
