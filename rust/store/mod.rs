//! Where stateful stages keep their atomics: the local store (this process's
//! heap, the default) or a host store (a file mapped into every process that
//! names it, so workers of one host share one budget, one rate limit and one
//! set of error windows with no server and no system call on the hot path).
//!
//! A stage asks its store for a named piece of words and gets a `Region`; it
//! does not care where the words live. Each piece records the settings it was
//! made with, and a process that asks for it with other settings is refused.
//!
//! A host record (`host:///state/dir#name`, what a budget uses by default) is
//! a host store whose file is `<dir>/<name>.tracesieve` and whose pieces are
//! named by their kind and a hash of their settings, so different budgets of
//! one service never meet; a file it cannot use leaves the stage per process
//! with a warning, never an error. A record whose file is full (a piece for
//! every set of settings the service ever used) goes on in overflow files,
//! `<name>+2.tracesieve` and on, each tried in turn: pieces are never removed,
//! so every process with the same settings finds the same one. A whole record
//! no process has open is removed once idle for two months (see `idle`).

pub mod file;
pub mod fleet;
mod guard;
pub mod idle;
pub mod region;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use crate::config::ConfigError;
use crate::words::thousands;
pub use file::{Access, Change, FileError, Origin, Placement, StoreFile};
pub use fleet::FleetSettings;
pub use region::{words_of, Plain, Region, Shared};

/// The field named in store errors.
pub const FIELD: &str = "store";
/// The longest store URL: a path of the system's longest (4,096 bytes) with
/// room for the scheme, a host, options and a piece name.
const MAX_URL: usize = 8192;
/// Files a host record may take beyond its first: with 64 pieces each, room
/// for a thousand sets of settings (about 1 MB), however often they change.
pub const OVERFLOW_FILES: usize = 15;

#[derive(Debug)]
pub struct Store {
    /// The URL as given (None: the local store).
    url: Option<String>,
    /// The `#name` fragment: prefixes piece names, so one file holds several
    /// budgets (`file:///run/app.tracesieve#checkout`).
    prefix: Option<String>,
    file: Option<StoreFile>,
    /// A host record: pieces named by their settings, and a file it cannot use
    /// is a fallback, not an error.
    record: bool,
    /// A host record's overflow files, each opened when a piece first needs
    /// it (or why it could not be), and the last one a piece was placed in.
    overflow: Vec<OnceLock<Result<StoreFile, String>>>,
    overflowed: Mutex<Option<PathBuf>>,
    /// A Redis fleet: pieces live on the heap and lease from the fleet.
    fleet: Option<FleetSettings>,
    /// Pieces kept in this process's heap because the file was unusable, and why.
    fallbacks: AtomicU64,
    problem: Mutex<Option<String>>,
}

impl Store {
    /// Per-process state (the default).
    pub fn local() -> Store {
        Store {
            url: None,
            prefix: None,
            file: None,
            record: false,
            overflow: Vec::new(),
            overflowed: Mutex::new(None),
            fleet: None,
            fallbacks: AtomicU64::new(0),
            problem: Mutex::new(None),
        }
    }

    /// A store from its URL: `file:///absolute/path[#name]`, or
    /// `redis://` / `rediss://` for a fleet (see `fleet::FleetSettings`).
    pub fn open(url: &str) -> Result<Store, ConfigError> {
        // Refused by its length, not quoted whole (and never quoted: it may hold a password).
        if url.len() > MAX_URL {
            return Err(ConfigError::new(
                FIELD,
                format!("a URL of {} bytes; expected at most {}", thousands(url.len() as u64), thousands(MAX_URL as u64)),
            ));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            let fleet = FleetSettings::parse(url)?;
            let mut store = Store::local();
            store.url = Some(fleet.shown().to_owned());
            store.fleet = Some(fleet);
            return Ok(store);
        }
        if let Some(rest) = url.strip_prefix("host://") {
            return Store::host_record(rest, None);
        }
        Store::open_on_boot(url, None)
    }

    /// A host record: `/state/dir#name` (see the module's notes). The
    /// directory is the caller's to make private; whatever is wrong with the
    /// file, the store is usable (per process, with the problem said).
    pub fn host_record(rest: &str, boot: Option<&str>) -> Result<Store, ConfigError> {
        let expected = "expected host:///absolute/state/dir#name (name: 1 to 64 letters, digits, '_', '-' or '.')";
        let (dir, name) =
            rest.split_once('#').ok_or_else(|| ConfigError::new(FIELD, format!("host://{rest} names no record; {expected}")))?;
        let valid = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !dir.starts_with('/') || !valid || dir.contains('\0') {
            return Err(ConfigError::new(FIELD, format!("host://{rest} is no host record; {expected}")));
        }
        let path = PathBuf::from(dir).join(format!("{name}.tracesieve"));
        let mut store = Store::local();
        store.url = Some(format!("file://{}", path.display()));
        store.record = true;
        store.overflow = (0..OVERFLOW_FILES).map(|_| OnceLock::new()).collect();
        let boot = boot.map_or_else(file::boot_id, str::to_owned);
        match StoreFile::open_with(&path, &boot, &Access::default()) {
            Ok(file) => store.file = Some(file),
            Err(FileError::Config(reason) | FileError::Unusable(reason) | FileError::Full(reason)) => store.fall_back(reason),
        }
        Ok(store)
    }

    /// Whether this is a host record (a budget's default).
    pub fn is_record(&self) -> bool {
        self.record
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
            Err(FileError::Unusable(reason) | FileError::Full(reason)) => store.fall_back(reason),
        }
        Ok(store)
    }

    /// The URL as given (a Redis password shown as `***`): what names the
    /// store, and what another stage's store is compared by.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Where the pieces are, to be shown: the URL, or for a host record that
    /// went on in an overflow file, the last such file.
    pub fn shown_url(&self) -> Option<String> {
        match self.overflowed.lock().ok().and_then(|file| file.clone()) {
            Some(path) => Some(format!("file://{}", path.display())),
            None => self.url.clone(),
        }
    }

    /// The host record's overflow file `index` (0: `<name>+2.tracesieve`).
    fn overflow_file(&self, index: usize) -> Result<&StoreFile, &str> {
        let Some(first) = &self.file else { return Err("no record file") };
        let opened = self.overflow[index].get_or_init(|| {
            StoreFile::open_with(&overflow_path(first.path(), index), first.boot(), &Access::default()).map_err(|e| e.to_string())
        });
        opened.as_ref().map_err(String::as_str)
    }

    /// The settings each piece of `kind` was made with, in every file of a
    /// host record that exists (an overflow file not yet made is not made).
    pub fn settings_of(&self, kind: &str) -> Vec<String> {
        let Some(first) = &self.file else { return Vec::new() };
        let mut files = vec![first];
        for index in 0..self.overflow.len() {
            if !overflow_path(first.path(), index).exists() {
                break;
            }
            match self.overflow_file(index) {
                Ok(file) => files.push(file),
                Err(_) => break,
            }
        }
        let pieces = files.into_iter().flat_map(|file| file.pieces().unwrap_or_default());
        pieces.filter(|(_, piece_kind, _)| piece_kind == kind).map(|(_, _, settings)| settings).collect()
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
        let overflow = self.overflow.iter().filter_map(|file| file.get()?.as_ref().ok());
        // One change a call: the others are found by the next.
        let change = self.file.iter().chain(overflow).find_map(StoreFile::check)?;
        match change {
            Change::Shortened(problem) => {
                self.fall_back(problem.clone());
                Some(problem)
            }
            Change::Replaced(problem) => Some(problem),
        }
    }

    /// Whether the store file's pieces became per process while in use.
    pub fn is_detached(&self) -> bool {
        let overflow = self.overflow.iter().filter_map(|file| file.get()?.as_ref().ok());
        self.file.iter().chain(overflow).any(StoreFile::is_detached)
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

    /// The piece for `kind` made with `settings`: in a host record, named by
    /// a hash of its settings too, so other settings make another piece.
    fn piece_for(&self, kind: &str, settings: &str) -> String {
        if self.record {
            let hash = xxhash_rust::xxh3::xxh3_64(settings.as_bytes());
            format!("{kind}-{hash:016x}")
        } else {
            self.piece_name(kind)
        }
    }

    /// Find or make the piece for `kind` with `words` words, made with
    /// `settings`. The caller initialises a `New` or `Rebooted` piece, then
    /// calls `finish` (until then other processes wait to attach). A file
    /// that cannot hold it (full disk) gives a heap piece, counted.
    pub fn place(&self, kind: &str, settings: &str, words: usize) -> Result<Placement<'_>, ConfigError> {
        let Some(file) = &self.file else { return Ok(Placement::heap(words)) };
        let piece = self.piece_for(kind, settings);
        let mut placed = file.place(&piece, kind, settings, words);
        if self.record {
            for index in 0..self.overflow.len() {
                if !matches!(placed, Err(FileError::Full(_))) {
                    break;
                }
                placed = match self.overflow_file(index) {
                    Ok(next) => {
                        let placed = next.place(&piece, kind, settings, words);
                        if placed.is_ok() {
                            *self.overflowed.lock().unwrap_or_else(|p| p.into_inner()) = Some(next.path().to_owned());
                        }
                        placed
                    }
                    Err(reason) => Err(FileError::Unusable(reason.to_owned())),
                };
            }
        }
        match placed {
            Ok(placement) => Ok(placement),
            Err(FileError::Config(message) | FileError::Full(message)) if !self.record => Err(ConfigError::new(FIELD, message)),
            Err(FileError::Full(_)) => {
                self.fall_back(format!(
                    "the record {} and its {} overflow files hold {} pieces each, one for every set of settings this service used; \
                     stop the service's processes and remove them to start afresh",
                    file.path().display(),
                    self.overflow.len(),
                    file::MAX_PIECES
                ));
                Ok(Placement::heap(words))
            }
            Err(FileError::Config(reason) | FileError::Unusable(reason)) => {
                self.fall_back(reason);
                Ok(Placement::heap(words))
            }
        }
    }
}

/// A host record's overflow file `index` (0: `<name>+2.tracesieve`).
fn overflow_path(first: &Path, index: usize) -> PathBuf {
    let stem = first.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    first.with_file_name(format!("{stem}+{}.tracesieve", index + 2))
}

/// `file:///absolute/path[?group=NAME][#name]` → (path, piece name, who may share it).
fn parse_url(url: &str) -> Result<(PathBuf, Option<String>, Access), ConfigError> {
    let expected = "expected \"memory\" (this process only), \"host\" (this service's record on this host), \
                    file:///absolute/path (a file shared by the processes of this host), optionally with ?group=NAME \
                    to share it with a group and #name to pick a piece name, or redis://host:6379/0 (a fleet)";
    let Some(rest) = url.strip_prefix("file://") else {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        let hint = match url.to_ascii_lowercase().as_str() {
            // The Python layer takes these two words; written otherwise, they arrive here.
            word @ ("memory" | "host") => format!("is not a store (did you mean {word:?}?)"),
            _ if scheme.is_empty() && url.starts_with("file:") => "is not a file URL (file:// then an absolute path)".to_owned(),
            _ if scheme.is_empty() => "has no scheme".to_owned(),
            _ => format!("has the unknown scheme {scheme:?}"),
        };
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
