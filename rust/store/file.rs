//! The host store's file: a header, a table of named pieces with the settings
//! each was made with, and the pieces' words, which every process that opens
//! the file maps into memory. The file is created whole (written under a
//! temporary name, then hard-linked into place, so two starting processes
//! cannot both initialise it); pieces are added and initialised under an
//! exclusive `flock`, and marked ready only once initialised, so a process
//! killed half-way leaves a piece the next one initialises again.
//!
//! The file is untrusted: one owned by another user or writable by others is
//! refused (unless a group is named to share it with), every offset and size
//! read from it is checked before use, the lock is waited for a bounded time,
//! and a file shortened under its mappings is survived (see `guard`).

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use fs4::FileExt as _;
use memmap2::MmapOptions;

use super::idle;
use super::region::{Mapping, Region};

/// The first bytes of every store file, and the layout they promise.
pub const MAGIC: [u8; 8] = *b"tsieve\0S";
/// Bumped whenever the header's or the table's layout changes (a piece's own
/// layout is part of the settings it is made with, so a record makes a new one).
pub const LAYOUT_VERSION: u32 = 2;

const HEADER_BYTES: u64 = 4096;
const ENTRY_BYTES: u64 = 512;
pub const MAX_PIECES: u64 = 64;
/// Pieces start after the table, each at a multiple of 64 bytes (a cache line).
const DATA_START: u64 = HEADER_BYTES + ENTRY_BYTES * MAX_PIECES;
const ALIGN: u64 = 64;
/// The largest store file tracesieve makes (64 pieces of a few kilobytes
/// each); an offset or size beyond it is corruption, not a store.
const MAX_FILE_BYTES: u64 = 1 << 30;
/// How long placing a piece waits for another process's lock before the
/// piece is kept per process instead (a stopped or stuck holder).
pub const LOCK_WAIT: Duration = Duration::from_secs(1);
/// Opens of a path whose file an idle record's remover took away meanwhile.
const ATTEMPTS: u32 = 8;

// Header fields (byte offsets).
const H_VERSION: u64 = 8;
const H_COUNT: u64 = 16;
const H_NEXT: u64 = 24;
const H_BOOT: u64 = 32;

// Entry fields (byte offsets within an entry) and their sizes.
const NAME: (usize, usize) = (0, 64);
const KIND: (usize, usize) = (64, 16);
const OFFSET: usize = 80;
const WORDS: usize = 88;
const READY: usize = 96;
const BOOT: (usize, usize) = (104, 48);
const HASH: usize = 152;
const SETTINGS_LEN: usize = 168;
const SETTINGS: (usize, usize) = (176, 336);
pub const MAX_NAME: usize = NAME.1;

/// Why a store file cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum FileError {
    /// The user's to fix (a wrong path, a foreign file, other settings): a `ConfigError`.
    Config(String),
    /// The machine's (a full disk, no memory for the mapping): the sampler
    /// falls back to per-process state and says so.
    Unusable(String),
    /// No room for another piece (a host record then tries its next file).
    Full(String),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Config(message) | FileError::Unusable(message) | FileError::Full(message) => f.write_str(message),
        }
    }
}

/// How a piece came to be used by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Made now (or found half-made): initialise it.
    New,
    /// Made by another process (or an earlier run) on this boot: use it as it is.
    Attached,
    /// Made before the host last booted: its monotonic times mean nothing now.
    Rebooted,
}

/// Who besides the file's owner may share a store file: nobody (the
/// default), or the members of one group (files made 0660 for that group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub group: Option<(String, u32)>,
}

impl Access {
    /// Shared with the group `name` (a group name or a numeric id).
    pub fn group(name: &str) -> Result<Access, String> {
        let gid = match name.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_id(name).ok_or_else(|| format!("the group {name:?} does not exist on this host"))?,
        };
        Ok(Access { group: Some((name.to_owned(), gid)) })
    }

    fn mode(&self) -> u32 {
        if self.group.is_some() {
            0o660
        } else {
            0o600
        }
    }

    fn gid(&self) -> Option<u32> {
        self.group.as_ref().map(|(_, gid)| *gid)
    }
}

fn group_id(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the result points into `group`.
    let status = unsafe { libc::getgrnam_r(name.as_ptr(), &mut group, buffer.as_mut_ptr(), buffer.len(), &mut found) };
    (status == 0 && !found.is_null()).then_some(group.gr_gid)
}

/// An open store file.
#[derive(Debug)]
pub struct StoreFile {
    path: PathBuf,
    file: File,
    boot: String,
    /// Serialises this process's placements (a `flock` is per open file, so
    /// it does not keep this process's own threads apart).
    placing: Mutex<()>,
    /// (device, inode) of the file opened: a path that names another file
    /// later was replaced or removed.
    identity: (u64, u64),
    /// The pieces mapped by this process and where each ends in the file.
    mappings: Mutex<Vec<(Weak<Mapping>, u64)>>,
    /// Set once the mappings were replaced by private memory (the file was shortened).
    detached: AtomicBool,
    replaced_reported: AtomicBool,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapping(faulted: {})", self.faulted())
    }
}

/// What `StoreFile::check` found, once each.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The file was shortened under the mappings: they are private memory now.
    Shortened(String),
    /// The path names another file (or none): this process goes on sharing the
    /// file it opened with the processes that opened it too.
    Replaced(String),
}

/// A piece placed in the file, still under the file's lock until `finish`.
pub struct Placement<'a> {
    pub region: Region,
    pub origin: Origin,
    ready: Option<(&'a StoreFile, u64)>,
    _serial: Option<MutexGuard<'a, ()>>,
}

impl Placement<'_> {
    pub fn heap(words: usize) -> Placement<'static> {
        Placement { region: Region::heap(words), origin: Origin::New, ready: None, _serial: None }
    }

    /// `finish`, its failure as the store's configuration error.
    pub fn ready(self) -> Result<(), crate::config::ConfigError> {
        self.finish().map_err(|e| crate::config::ConfigError::new(super::FIELD, e.to_string()))
    }

    /// The piece is initialised: mark it ready (made on this boot) and let
    /// other processes at it.
    pub fn finish(mut self) -> Result<(), FileError> {
        if let Some((store, entry)) = self.ready.take() {
            let mut boot = [0u8; BOOT.1];
            put_text(&mut boot, &store.boot);
            store.write(entry + BOOT.0 as u64, &boot)?;
            store.write(entry + READY as u64, &1u64.to_le_bytes())?;
            let _ = store.file.unlock();
        }
        Ok(())
    }
}

impl Drop for Placement<'_> {
    fn drop(&mut self) {
        // Dropped unfinished (an error while initialising): unlocked, not ready.
        if let Some((store, _)) = self.ready.take() {
            let _ = store.file.unlock();
        }
    }
}

/// This boot of the host: monotonic clocks restart at each boot.
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|id| id.trim().to_owned()).unwrap_or_else(|_| "unknown".to_owned())
}

impl StoreFile {
    /// Open the store at `path`, creating it when missing, private to this user.
    pub fn open(path: &Path) -> Result<StoreFile, FileError> {
        StoreFile::open_with(path, &boot_id(), &Access::default())
    }

    /// `open`, as if the host's boot were `boot` (tests of a reboot).
    pub fn open_on_boot(path: &Path, boot: &str) -> Result<StoreFile, FileError> {
        StoreFile::open_with(path, boot, &Access::default())
    }

    /// `open` on boot `boot`, shared as `access` says.
    pub fn open_with(path: &Path, boot: &str, access: &Access) -> Result<StoreFile, FileError> {
        let shown = path.display();
        if path.is_dir() {
            return Err(FileError::Config(format!("{shown} is a directory; expected the path of a store file inside it")));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            return Err(FileError::Config(format!(
                "the directory {} does not exist; expected a path in an existing, writable directory (such as /run/<app>, created at deploy)",
                parent.display()
            )));
        }
        check_directory(parent)?;
        let mut attempts = 0;
        let (file, metadata) = loop {
            attempts += 1;
            if fs::symlink_metadata(path).is_err() {
                create(path, boot, access)?;
            }
            let file = match open_existing(path) {
                // Removed as idle between the look and the open: make it again.
                Err(_) if attempts < ATTEMPTS && fs::symlink_metadata(path).is_err() => continue,
                opened => opened?,
            };
            let metadata = file.metadata().map_err(|e| FileError::Config(format!("{shown}: {e}")))?;
            // Held while open, so an idle record's remover passes this one over; a
            // remover that was unlinking it just now leaves the path to open again.
            let held = idle::hold(&file);
            let current = fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == (metadata.dev(), metadata.ino()));
            if current || !held || attempts >= ATTEMPTS {
                break (file, metadata);
            }
        };
        check_owner(path, &metadata, access)?;
        // Opened now: a record's idle time counts from its last open, also where
        // writes through a mapping leave the time alone (tmpfs).
        let _ = file.set_modified(std::time::SystemTime::now());
        let store = StoreFile {
            path: path.to_owned(),
            file,
            boot: boot.to_owned(),
            placing: Mutex::new(()),
            identity: (metadata.dev(), metadata.ino()),
            mappings: Mutex::new(Vec::new()),
            detached: AtomicBool::new(false),
            replaced_reported: AtomicBool::new(false),
        };
        if metadata.len() == 0 {
            // Emptied by hand (`: > file`): nothing is lost by making it afresh.
            store.initialise_empty(boot)?;
        }
        store.check_header()?;
        Ok(store)
    }

    /// Write a fresh header into a file found empty, under its lock.
    fn initialise_empty(&self, boot: &str) -> Result<(), FileError> {
        let _serial = self.placing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.lock_bounded()?;
        let result = (|| {
            let length = self.file.metadata().map_err(|e| FileError::Config(format!("{}: {e}", self.path.display())))?.len();
            if length == 0 {
                write_header(&self.file, boot).map_err(|e| FileError::Unusable(format!("{}: cannot write: {e}", self.path.display())))?;
            }
            Ok(())
        })();
        let _ = self.file.unlock();
        result
    }

    /// Take the file's lock, waiting at most `LOCK_WAIT` for another process.
    fn lock_bounded(&self) -> Result<(), FileError> {
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_micros(200);
        loop {
            match self.file.try_lock() {
                Ok(()) => return Ok(()),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(FileError::Unusable(format!(
                        "{}: another process has held its lock for over {} s (a stopped or stuck process?)",
                        self.path.display(),
                        LOCK_WAIT.as_secs_f64()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(FileError::Unusable(format!("{}: cannot lock: {e}", self.path.display())))
                }
            }
        }
    }

    /// Whether the file changed under this process since it was opened
    /// (shortened, replaced or removed); each change is reported once. A
    /// shortened file's mappings become private zeroed memory, which the
    /// stages start afresh from.
    pub fn check(&self) -> Option<Change> {
        if self.detached.load(Acquire) {
            return None;
        }
        let live: Vec<(Arc<Mapping>, u64)> = {
            let mut mappings = self.mappings.lock().unwrap_or_else(|p| p.into_inner());
            mappings.retain(|(weak, _)| weak.strong_count() > 0);
            mappings.iter().filter_map(|(weak, end)| Some((weak.upgrade()?, *end))).collect()
        };
        let needed = live.iter().map(|(_, end)| *end).max().unwrap_or(0);
        let length = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        let faulted = live.iter().any(|(mapping, _)| mapping.faulted());
        if faulted || length < needed {
            for (mapping, _) in &live {
                mapping.detach();
            }
            if self.detached.swap(true, AcqRel) {
                return None;
            }
            return Some(Change::Shortened(format!(
                "{} was shortened to {length} bytes while in use (its pieces need {needed}); this process keeps its own state \
                 from now on, started afresh; remove the file and restart the processes to share again",
                self.path.display()
            )));
        }
        let now = fs::symlink_metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        if now != Some(self.identity) && !self.replaced_reported.swap(true, AcqRel) {
            let what = if now.is_none() { "was removed" } else { "now names another file" };
            return Some(Change::Replaced(format!(
                "{} {what} while in use; this process goes on sharing the file it opened with the processes that \
                 opened it, and processes started from now on use the new one",
                self.path.display()
            )));
        }
        None
    }

    /// Whether the mappings were replaced by private memory.
    pub fn is_detached(&self) -> bool {
        self.detached.load(Acquire)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The boot this file's pieces are judged by.
    pub fn boot(&self) -> &str {
        &self.boot
    }

    fn check_header(&self) -> Result<(), FileError> {
        let shown = self.path.display();
        let length = self.file.metadata().map_err(|e| FileError::Config(format!("{shown}: {e}")))?.len();
        let mut magic = [0u8; 8];
        let read = self.file.read_at(&mut magic, 0).unwrap_or(0);
        if read < 8 || magic != MAGIC {
            let start = String::from_utf8_lossy(&magic[..read]).escape_debug().to_string();
            return Err(FileError::Config(format!(
                "{shown} is not a tracesieve store ({length} bytes beginning \"{start}\"); expected a file made by tracesieve, or a path where none exists yet"
            )));
        }
        let version = u32::from_le_bytes(self.read::<4>(H_VERSION)?);
        if version != LAYOUT_VERSION {
            return Err(FileError::Config(format!(
                "{shown} has store layout {version}, but this tracesieve uses layout {LAYOUT_VERSION}; stop the processes using it and remove the file, or use another path"
            )));
        }
        if length < DATA_START {
            return Err(FileError::Config(format!(
                "{shown} is truncated ({length} bytes, its table alone takes {DATA_START}); remove it and restart the processes that use it"
            )));
        }
        self.check_table(length)
    }

    /// Every count, offset and size in the header and table, checked against
    /// the file's length with arithmetic that cannot wrap: a corrupt file is
    /// reported and never written through.
    fn check_table(&self, length: u64) -> Result<(), FileError> {
        let corrupt = |what: String| {
            FileError::Config(format!(
                "{} is truncated or corrupt ({what}); stop the processes using it and remove the file, or use another path",
                self.path.display()
            ))
        };
        let count = self.read_u64(H_COUNT)?;
        if count > MAX_PIECES {
            return Err(corrupt(format!("it claims {count} pieces; at most {MAX_PIECES} fit")));
        }
        let next = self.read_u64(H_NEXT)?;
        // A creator grows the file before it moves the next free offset, so a
        // length read before `next` may predate both: read it again after.
        let length = if next > length { self.file.metadata().map_or(length, |m| m.len().max(length)) } else { length };
        if !(DATA_START..=length.min(MAX_FILE_BYTES)).contains(&next) {
            return Err(corrupt(format!("its next free offset is {next}, outside {DATA_START}..={length}")));
        }
        for index in 0..count {
            let bytes = self.read::<{ ENTRY_BYTES as usize }>(HEADER_BYTES + index * ENTRY_BYTES)?;
            let (offset, words) = (le(&bytes, OFFSET), le(&bytes, WORDS));
            let end = words.checked_mul(8).and_then(|size| offset.checked_add(size));
            match end {
                Some(end) if offset >= DATA_START && end <= next => {}
                _ => {
                    let name = text(&bytes[NAME.0..NAME.0 + NAME.1]);
                    return Err(corrupt(format!("piece {name:?} claims {words} words at byte {offset}, outside {DATA_START}..{next}")));
                }
            }
        }
        Ok(())
    }

    fn read<const N: usize>(&self, at: u64) -> Result<[u8; N], FileError> {
        let mut bytes = [0u8; N];
        self.file.read_exact_at(&mut bytes, at).map_err(|e| FileError::Config(format!("{}: cannot read: {e}", self.path.display())))?;
        Ok(bytes)
    }

    fn read_u64(&self, at: u64) -> Result<u64, FileError> {
        Ok(u64::from_le_bytes(self.read::<8>(at)?))
    }

    fn write(&self, at: u64, bytes: &[u8]) -> Result<(), FileError> {
        self.file.write_all_at(bytes, at).map_err(|e| FileError::Unusable(format!("{}: cannot write: {e}", self.path.display())))
    }

    /// Find or add the piece `name` of `kind` with `words` words, made with
    /// `settings` (plain words, compared whole). The file stays locked until
    /// the placement is finished (or dropped).
    pub fn place(&self, name: &str, kind: &str, settings: &str, words: usize) -> Result<Placement<'_>, FileError> {
        let shown = self.path.display();
        if name.is_empty() || name.len() > MAX_NAME || name.contains('\0') {
            return Err(FileError::Config(format!("piece name {} must be 1 to {MAX_NAME} bytes", crate::words::quoted(name))));
        }
        if self.is_detached() {
            return Err(FileError::Unusable(format!("{shown} was shortened while in use")));
        }
        let serial = self.placing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.lock_bounded()?;
        // Unlocks if anything below fails.
        let mut placement = Placement { region: Region::heap(0), origin: Origin::New, ready: Some((self, 0)), _serial: Some(serial) };
        // Another process may have changed the table since it was checked at open.
        let file_length = self.file.metadata().map_err(|e| FileError::Unusable(format!("{shown}: {e}")))?.len();
        self.check_table(file_length)?;
        let count = self.read_u64(H_COUNT)?;
        let size = (words as u64)
            .checked_mul(8)
            .filter(|size| *size <= MAX_FILE_BYTES)
            .ok_or_else(|| FileError::Config(format!("a piece of {words} words is larger than a store file may be")))?;
        let hash = xxhash_rust::xxh3::xxh3_128(settings.as_bytes()).to_le_bytes();
        let mut found = None;
        for index in 0..count {
            let entry = HEADER_BYTES + index * ENTRY_BYTES;
            let bytes = self.read::<{ ENTRY_BYTES as usize }>(entry)?;
            if text(&bytes[NAME.0..NAME.0 + NAME.1]) == name {
                found = Some((entry, bytes));
                break;
            }
        }
        let (entry, offset, origin) = match found {
            Some((entry, bytes)) => {
                let recorded_kind = text(&bytes[KIND.0..KIND.0 + KIND.1]);
                let recorded_words = le(&bytes, WORDS);
                if bytes[HASH..HASH + 16] != hash {
                    let length = le(&bytes, SETTINGS_LEN) as usize;
                    let recorded = text(&bytes[SETTINGS.0..SETTINGS.0 + SETTINGS.1.min(length)]);
                    let more = if length > SETTINGS.1 { "…" } else { "" };
                    let theirs: Vec<&str> = recorded.split(", ").collect();
                    let differs: Vec<String> = settings
                        .split(", ")
                        .filter(|ours| !theirs.contains(ours))
                        .map(|ours| {
                            let key = ours.split('=').next().unwrap_or(ours);
                            let there = theirs.iter().find(|t| t.split('=').next() == Some(key)).copied().unwrap_or("?");
                            format!("{key}: {} in the file, {} here", value_of(there), value_of(ours))
                        })
                        .collect();
                    return Err(FileError::Config(format!(
                        "{shown} holds the {kind} {name:?} made with other settings ({}): {recorded}{more}, but this one has {settings}; \
                         use the same settings everywhere that names it, give this one another name (file://{}#name), \
                         or stop every process using it and remove the file",
                        differs.join("; "),
                        self.path.display()
                    )));
                }
                if recorded_kind != kind || recorded_words != words as u64 {
                    return Err(FileError::Config(format!(
                        "{shown} holds a piece {name:?} of kind {recorded_kind} ({recorded_words} words), but this is a {kind} of {words} words; \
                         give this one another name (file://{}#name)",
                        self.path.display()
                    )));
                }
                let offset = le(&bytes, OFFSET);
                if offset < DATA_START || offset.checked_add(size).is_none_or(|end| end > file_length) {
                    return Err(FileError::Config(format!(
                        "{shown} is truncated or corrupt (piece {name:?} at byte {offset} of {file_length}); remove it and restart the processes that use it"
                    )));
                }
                let origin = if le(&bytes, READY) != 1 {
                    Origin::New
                } else if text(&bytes[BOOT.0..BOOT.0 + BOOT.1]) != self.boot {
                    Origin::Rebooted
                } else {
                    Origin::Attached
                };
                (entry, offset, origin)
            }
            None => {
                if count >= MAX_PIECES {
                    return Err(FileError::Full(format!("{shown} holds {MAX_PIECES} pieces already; use another file for more")));
                }
                // `check_table` bounded the next offset by the file's length.
                let offset = self.read_u64(H_NEXT)?.max(DATA_START).next_multiple_of(ALIGN);
                let end = offset + size;
                if end > MAX_FILE_BYTES {
                    return Err(FileError::Full(format!("{shown} has no room for another piece of {words} words")));
                }
                // Blocks reserved now, so a full disk shows here and not as a
                // fault when a page is first touched.
                self.grow(end)?;
                let entry = HEADER_BYTES + count * ENTRY_BYTES;
                let mut bytes = [0u8; ENTRY_BYTES as usize];
                put_text(&mut bytes[NAME.0..NAME.0 + NAME.1], name);
                put_text(&mut bytes[KIND.0..KIND.0 + KIND.1], kind);
                bytes[OFFSET..OFFSET + 8].copy_from_slice(&offset.to_le_bytes());
                bytes[WORDS..WORDS + 8].copy_from_slice(&(words as u64).to_le_bytes());
                bytes[HASH..HASH + 16].copy_from_slice(&hash);
                bytes[SETTINGS_LEN..SETTINGS_LEN + 8].copy_from_slice(&(settings.len() as u64).to_le_bytes());
                put_text(&mut bytes[SETTINGS.0..SETTINGS.0 + SETTINGS.1], settings);
                self.write(entry, &bytes)?;
                self.write(H_NEXT, &end.to_le_bytes())?;
                self.write(H_COUNT, &(count + 1).to_le_bytes())?;
                (entry, offset, Origin::New)
            }
        };
        let map = MmapOptions::new()
            .offset(offset)
            .len(words * 8)
            .map_raw(&self.file)
            .map_err(|e| FileError::Unusable(format!("{shown}: cannot map {} bytes: {e}", words * 8)))?;
        let mapping = Arc::new(Mapping::new(map));
        self.mappings.lock().unwrap_or_else(|p| p.into_inner()).push((Arc::downgrade(&mapping), offset + size));
        // SAFETY: the mapping is `words * 8` bytes of the file, page-aligned
        // plus a multiple of 64; a file shortened under it is survived by its guard.
        let region = unsafe { Region::mapped(mapping, words) };
        if origin == Origin::New {
            region.clear();
        }
        placement.region = region;
        placement.origin = origin;
        placement.ready = Some((self, entry));
        Ok(placement)
    }

    /// Make the file at least `end` bytes, its blocks reserved (`allocate`
    /// alone may leave the length short when the last block has room).
    fn grow(&self, end: u64) -> Result<(), FileError> {
        let unusable = |e: std::io::Error| FileError::Unusable(format!("{}: cannot grow to {end} bytes: {e}", self.path.display()));
        self.file.allocate(end).map_err(unusable)?;
        if self.file.metadata().map_err(unusable)?.len() < end {
            self.file.set_len(end).map_err(unusable)?;
        }
        Ok(())
    }

    /// The pieces in the file: (name, kind, settings), for `tracesieve` tools and tests.
    pub fn pieces(&self) -> Result<Vec<(String, String, String)>, FileError> {
        let count = self.read_u64(H_COUNT)?.min(MAX_PIECES);
        (0..count)
            .map(|index| {
                let bytes = self.read::<{ ENTRY_BYTES as usize }>(HEADER_BYTES + index * ENTRY_BYTES)?;
                let length = (le(&bytes, SETTINGS_LEN) as usize).min(SETTINGS.1);
                Ok((
                    text(&bytes[NAME.0..NAME.0 + NAME.1]),
                    text(&bytes[KIND.0..KIND.0 + KIND.1]),
                    text(&bytes[SETTINGS.0..SETTINGS.0 + length]),
                ))
            })
            .collect()
    }
}

/// Write a new store file under a temporary name and link it into place: the
/// file appears whole or not at all, and of two processes creating it at once
/// one links and the other opens the winner's.
fn create(path: &Path, boot: &str, access: &Access) -> Result<(), FileError> {
    let shown = path.display();
    remove_stale_temporaries(path);
    let temporary = temporary_name(path);
    let written = (|| -> std::io::Result<()> {
        // Exclusive and not following links; the mode is set again below, as the umask may have narrowed it.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(access.mode())
            .open(&temporary)?;
        if let Some(gid) = access.gid() {
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
        }
        file.set_permissions(fs::Permissions::from_mode(access.mode()))?;
        write_header(&file, boot)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| match fs::hard_link(&temporary, path) {
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = fs::remove_file(&temporary);
    linked.map_err(|error| match error.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => FileError::Config(format!(
            "{shown} cannot be created in {} ({error}); expected a directory this user may write",
            path.parent().map(|p| p.display().to_string()).unwrap_or_default()
        )),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            FileError::Unusable(format!("{shown} cannot be created: {error}"))
        }
        _ => FileError::Config(format!("{shown} cannot be created: {error}")),
    })
}

/// Open the store file at `path` for reading and writing, refusing a symbolic link.
fn open_existing(path: &Path) -> Result<File, FileError> {
    let shown = path.display();
    // O_NOFOLLOW: a symbolic link planted at the path is refused, not followed.
    OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(|error| {
        match (error.kind(), error.raw_os_error()) {
            (_, Some(libc::ELOOP)) => {
                FileError::Config(format!("{shown} is a symbolic link; expected the store file itself (give the path it points to)"))
            }
            (ErrorKind::PermissionDenied, _) => FileError::Config(format!(
                "{shown} cannot be opened for reading and writing (permission denied); expected a file this user may write"
            )),
            _ => FileError::Config(format!("{shown} cannot be opened: {error}")),
        }
    })
}

/// A fresh header and an empty table, their blocks reserved.
fn write_header(file: &File, boot: &str) -> std::io::Result<()> {
    file.allocate(DATA_START)?;
    let mut header = [0u8; 80];
    header[..8].copy_from_slice(&MAGIC);
    header[H_VERSION as usize..H_VERSION as usize + 4].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    header[H_NEXT as usize..H_NEXT as usize + 8].copy_from_slice(&DATA_START.to_le_bytes());
    put_text(&mut header[H_BOOT as usize..], boot);
    file.write_all_at(&header, 0)
}

/// A store file is refused unless this user owns it (or it belongs to the
/// group named to share it with) and nobody else may write it: a file
/// another user planted could set this service's budget to nothing.
fn check_owner(path: &Path, metadata: &fs::Metadata, access: &Access) -> Result<(), FileError> {
    let shown = path.display();
    if !metadata.file_type().is_file() {
        return Err(FileError::Config(format!("{shown} is not a regular file; expected a store file made by tracesieve")));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mode = metadata.mode() & 0o777;
    let group_ok = access.gid() == Some(metadata.gid());
    let share = "give ?group=NAME in the store URL to share it with a group on purpose";
    if metadata.uid() != me && !group_ok {
        return Err(FileError::Config(format!(
            "{shown} belongs to user {}, not to this user ({me}): a store file made by another user is not trusted; \
             remove it (or use a path in a directory only this user may write), or {share}",
            metadata.uid()
        )));
    }
    if mode & 0o002 != 0 {
        return Err(FileError::Config(format!(
            "{shown} is writable by every user (mode {mode:03o}); expected 600 (or 660 with ?group=NAME): chmod 600 it or remove it"
        )));
    }
    if mode & 0o020 != 0 && !group_ok {
        return Err(FileError::Config(format!(
            "{shown} is writable by its group {} (mode {mode:03o}); expected 600: chmod 600 it, or {share}",
            metadata.gid()
        )));
    }
    Ok(())
}

/// A directory every user may write, without the sticky bit, lets any of
/// them replace the store file: refused.
fn check_directory(dir: &Path) -> Result<(), FileError> {
    let Ok(metadata) = fs::metadata(dir) else { return Ok(()) };
    let mode = metadata.mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(FileError::Config(format!(
            "the directory {} is writable by every user (mode {:03o}) without the sticky bit, so anyone could replace the store file; \
             expected a directory private to this user (such as /run/<app>, mode 700)",
            dir.display(),
            mode & 0o7777
        )));
    }
    Ok(())
}

fn temporary_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per process and call (threads of one process may race to create
    // it too), and unpredictable, so nobody can plant a file at the name first.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let random = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), (call, std::time::Instant::now()));
    path.with_file_name(format!(".{name}.{}.{call}.{random:016x}.tmp", std::process::id()))
}

/// Temporaries of processes that died while creating the file.
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.split('.').next()?.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = pid != std::process::id() as i32
            && unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The value of a `key=value` setting.
fn value_of(setting: &str) -> &str {
    setting.split_once('=').map_or(setting, |(_, value)| value)
}

fn le(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `value` into `field`, NUL-padded, cut at a character boundary if too long.
fn put_text(field: &mut [u8], value: &str) {
    let mut end = value.len().min(field.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    field[..end].copy_from_slice(&value.as_bytes()[..end]);
    field[end..].fill(0);
}
