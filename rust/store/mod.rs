//! Where stateful stages keep their atomics: the local store (this process's
//! heap, the default) or a host store (a file mapped into every process that
//! names it, so workers of one host share one budget, one rate limit and one
//! set of error windows with no server and no system call on the hot path).
//!
//! A stage asks its store for a named piece of words and gets a `Region`; it
//! does not care where the words live. Each piece records the settings it was
//! made with, and a process that asks for it with other settings is refused.

pub mod file;
pub mod fleet;
mod guard;
pub mod region;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::config::ConfigError;
pub use file::{Access, Change, FileError, Origin, Placement, StoreFile};
pub use fleet::FleetSettings;
pub use region::{words_of, Plain, Region, Shared};

/// The field named in store errors.
pub const FIELD: &str = "store";

#[derive(Debug)]
pub struct Store {
    /// The URL as given (None: the local store).
    url: Option<String>,
    /// The `#name` fragment: prefixes piece names, so one file holds several
    /// budgets (`file:///run/app.tracesieve#checkout`).
    prefix: Option<String>,
    file: Option<StoreFile>,
    /// A Redis fleet: pieces live on the heap and lease from the fleet.
    fleet: Option<FleetSettings>,
    /// Pieces kept in this process's heap because the file was unusable, and why.
    fallbacks: AtomicU64,
    problem: Mutex<Option<String>>,
}

impl Store {
    /// Per-process state (the default).
    pub fn local() -> Store {
        Store { url: None, prefix: None, file: None, fleet: None, fallbacks: AtomicU64::new(0), problem: Mutex::new(None) }
    }

    /// A store from its URL: `file:///absolute/path[#name]`, or
    /// `redis://` / `rediss://` for a fleet (see `fleet::FleetSettings`).
    pub fn open(url: &str) -> Result<Store, ConfigError> {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            let fleet = FleetSettings::parse(url)?;
            let mut store = Store::local();
            store.url = Some(fleet.shown().to_owned());
            store.fleet = Some(fleet);
            return Ok(store);
        }
        Store::open_on_boot(url, None)
    }

    /// `open`, as if the host's boot were `boot` (tests of a reboot).
    pub fn open_on_boot(url: &str, boot: Option<&str>) -> Result<Store, ConfigError> {
        let (path, prefix, access) = parse_url(url)?;
        let mut store = Store::local();
        store.url = Some(url.to_owned());
        store.prefix = prefix;
        let boot = boot.map_or_else(file::boot_id, str::to_owned);
        let opened = StoreFile::open_with(&path, &boot, &access);
        match opened {
            Ok(file) => store.file = Some(file),
            Err(FileError::Config(message)) => return Err(ConfigError::new(FIELD, message)),
            Err(FileError::Unusable(reason)) => store.fall_back(reason),
        }
        Ok(store)
    }

    /// The URL as given (a Redis password shown as `***`).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Whether pieces are shared with other processes (a usable file, or a fleet).
    pub fn is_shared(&self) -> bool {
        self.file.is_some() || self.fleet.is_some()
    }

    /// The fleet's settings, for a Redis store.
    pub fn fleet(&self) -> Option<&FleetSettings> {
        self.fleet.as_ref()
    }

    /// Pieces kept per process because the file was unusable.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Relaxed)
    }

    /// Why the file could not be used, if it could not.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().map(|p| p.clone()).unwrap_or(None)
    }

    /// Whether the file changed under this process (shortened, replaced or
    /// removed), each change once: the problem to report. A shortened file's
    /// pieces are per process from then on, counted as fallbacks.
    pub fn check(&self) -> Option<String> {
        match self.file.as_ref()?.check()? {
            Change::Shortened(problem) => {
                self.fall_back(problem.clone());
                Some(problem)
            }
            Change::Replaced(problem) => Some(problem),
        }
    }

    /// Whether the store file's pieces became per process while in use.
    pub fn is_detached(&self) -> bool {
        self.file.as_ref().is_some_and(StoreFile::is_detached)
    }

    fn fall_back(&self, reason: String) {
        self.fallbacks.fetch_add(1, Relaxed);
        if let Ok(mut problem) = self.problem.lock() {
            *problem = Some(reason);
        }
    }

    /// The piece named for `kind` (prefixed by the URL's `#name`).
    pub fn piece_name(&self, kind: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}.{kind}"),
            None => kind.to_owned(),
        }
    }

    /// Find or make the piece for `kind` with `words` words, made with
    /// `settings`. The caller initialises a `New` or `Rebooted` piece, then
    /// calls `finish` (until then other processes wait to attach). A file
    /// that cannot hold it (full disk) gives a heap piece, counted.
    pub fn place(&self, kind: &str, settings: &str, words: usize) -> Result<Placement<'_>, ConfigError> {
        let Some(file) = &self.file else { return Ok(Placement::heap(words)) };
        match file.place(&self.piece_name(kind), kind, settings, words) {
            Ok(placement) => Ok(placement),
            Err(FileError::Config(message)) => Err(ConfigError::new(FIELD, message)),
            Err(FileError::Unusable(reason)) => {
                self.fall_back(reason);
                Ok(Placement::heap(words))
            }
        }
    }
}

/// `file:///absolute/path[?group=NAME][#name]` → (path, piece name, who may share it).
fn parse_url(url: &str) -> Result<(PathBuf, Option<String>, Access), ConfigError> {
    let expected = "expected file:///absolute/path (a file shared by the processes of this host), optionally with ?group=NAME \
                    to share it with a group and #name to pick a piece name, or redis://host:6379/0 (a fleet)";
    let Some(rest) = url.strip_prefix("file://") else {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        let hint = if scheme.is_empty() { "has no scheme".to_owned() } else { format!("has the unknown scheme {scheme:?}") };
        return Err(ConfigError::new(FIELD, format!("{url:?} {hint}; {expected}")));
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, name)) => (rest, Some(name)),
        None => (rest, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if !path.starts_with('/') {
        return Err(ConfigError::new(FIELD, format!("{url:?} names no absolute path (file://host/... is not supported); {expected}")));
    }
    if path.ends_with('/') {
        return Err(ConfigError::new(FIELD, format!("{url:?} names a directory; expected the path of a store file inside it")));
    }
    if path.contains('\0') || path.contains('%') {
        return Err(ConfigError::new(FIELD, format!("{url:?} has characters tracesieve does not decode (%, NUL); {expected}")));
    }
    let mut access = Access::default();
    for option in query.into_iter().flat_map(|q| q.split('&')) {
        match option.split_once('=') {
            Some(("group", name)) if !name.is_empty() => {
                access = Access::group(name).map_err(|e| ConfigError::new(FIELD, format!("{url:?} has group={name}: {e}")))?;
            }
            _ => {
                return Err(ConfigError::new(
                    FIELD,
                    format!("{url:?} has the option {option:?}; the only option is group=NAME (share the file with a group)"),
                ))
            }
        }
    }
    let prefix = match fragment {
        None => None,
        Some(name) if !name.is_empty() && name.len() <= 40 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) => {
            Some(name.to_owned())
        }
        Some(name) => {
            return Err(ConfigError::new(
                FIELD,
                format!("{url:?} has the piece name {name:?}; expected 1 to 40 letters, digits, '_', '-' or '.'"),
            ))
        }
    };
    Ok((PathBuf::from(path), prefix, access))
}

#[cfg(test)]
mod tests;
