//! Host records nobody uses any more: each process that opens a store file
//! holds a shared lock on its first byte for as long as it has it open (an
//! open-file-description lock, so forked children hold it too and it goes
//! when the last of them exits), and a record whose files no process holds
//! and none opened or wrote for `IDLE` (an open sets the file's modification
//! time) is removed, all its files together. Without
//! this, every program that ever ran a budget unnamed (each `python -c`,
//! each retired service) left its record in the state directory for good.
//!
//! A remover takes the lock exclusively before it unlinks, so a process
//! opening the file at that moment waits for it and then finds the path
//! gone (or new), and opens again (see `StoreFile::open_with`). Where such
//! locks cannot be taken (another system, a filesystem without them), an open
//! does not wait for one and nothing is removed.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Twice the longest budget period (a month): a record idle this long holds
/// no count of a period still running.
pub const IDLE: Duration = Duration::from_secs(62 * 86_400);
/// A host record's file names end so; overflow files add `+N` before it.
pub const SUFFIX: &str = ".tracesieve";
/// How long an opener waits for a remover's exclusive lock (held for one unlink).
const HOLD_WAIT: Duration = Duration::from_secs(1);

/// Whether a lock on the first byte could be taken.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Locked {
    Taken,
    /// Another open file description holds a conflicting lock.
    Busy,
    /// No such locks here (another system, a filesystem without them).
    Unsupported,
}

/// Take `lock_type` (F_RDLCK or F_WRLCK) on the first byte of `file`
/// without waiting.
fn lock_first_byte(file: &File, lock_type: libc::c_int) -> Locked {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        let range = first_byte(lock_type);
        // SAFETY: a valid descriptor and a valid flock for the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &range) } == 0 {
            return Locked::Taken;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES) => Locked::Busy,
            _ => Locked::Unsupported,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, lock_type);
        Locked::Unsupported
    }
}

/// A lock of `lock_type` on a file's first byte, as an OFD lock call takes it.
#[cfg(target_os = "linux")]
fn first_byte(lock_type: libc::c_int) -> libc::flock {
    // SAFETY: zeroed is a valid flock; l_pid must be 0 for OFD locks.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = lock_type as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    range.l_start = 0;
    range.l_len = 1;
    range
}

/// Mark `file` as in use by this process (and its forked children) while it
/// stays open, waiting at most `HOLD_WAIT` for a remover; false when not held
/// (the file may then be removed under it, which `StoreFile::check` reports).
pub fn hold(file: &File) -> bool {
    let deadline = Instant::now() + HOLD_WAIT;
    loop {
        match lock_first_byte(file, libc::F_RDLCK) {
            Locked::Taken => return true,
            Locked::Busy if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Locked::Busy | Locked::Unsupported => return false,
        }
    }
}

/// The record a host store file belongs to: its name less `SUFFIX` and any
/// overflow `+N`; None for anything else in the directory.
fn record_of(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(SUFFIX).filter(|s| !s.is_empty() && !s.starts_with('.'))?;
    match stem.rsplit_once('+') {
        Some((record, number)) if !record.is_empty() && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => Some(record),
        Some(_) => None,
        None => Some(stem),
    }
}

/// A record file as found: this user's regular file, idle since before `cutoff`.
fn idle_file(path: &Path, cutoff: SystemTime) -> Option<(u64, u64)> {
    let metadata = fs::symlink_metadata(path).ok()?;
    // SAFETY: geteuid cannot fail.
    let mine = metadata.uid() == unsafe { libc::geteuid() };
    let written = metadata.modified().ok()?;
    (metadata.file_type().is_file() && mine && written < cutoff).then_some((metadata.dev(), metadata.ino()))
}

/// Remove every record in `dir` whose files no process has open and none of
/// which was written for `idle`; returns the files removed. A record with one
/// file in use, or written lately, or not this user's, is left whole.
pub fn remove_idle(dir: &Path, idle: Duration) -> Vec<PathBuf> {
    let Some(cutoff) = SystemTime::now().checked_sub(idle) else { return Vec::new() };
    let mut removed = Vec::new();
    for paths in records_in(dir).values() {
        removed.extend(remove_record(paths, cutoff));
    }
    removed
}

/// The records in `dir` by name, each with its files: the first, then its
/// overflow files in the order the store tries them (none when `dir` cannot
/// be read).
pub fn records_in(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut records: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(record) = record_of(&name) {
            let number = name.strip_suffix(SUFFIX).and_then(|stem| stem.rsplit_once('+')).and_then(|(_, n)| n.parse().ok());
            records.entry(record.to_owned()).or_default().push((number.unwrap_or(1), entry.path()));
        }
    }
    records
        .into_iter()
        .map(|(record, mut files)| {
            files.sort();
            (record, files.into_iter().map(|(_, path)| path).collect())
        })
        .collect()
}

/// Whether some process has the store file at `path` open (holds the shared
/// lock on its first byte), seen without taking a lock; None where such locks
/// cannot be seen (another system, a filesystem without them, a file that
/// cannot be opened, or is no regular file: a pipe, a device).
pub fn in_use(path: &Path) -> Option<bool> {
    // Non-blocking: opening a named pipe to read would wait for a writer forever.
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).ok()?;
    if !file.metadata().ok()?.file_type().is_file() {
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        let mut range = first_byte(libc::F_WRLCK);
        // SAFETY: a valid descriptor and a valid flock for the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut range) } != 0 {
            return None;
        }
        Some(range.l_type != libc::F_UNLCK as libc::c_short)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// Remove one record's files, all or none.
fn remove_record(paths: &[PathBuf], cutoff: SystemTime) -> Vec<PathBuf> {
    let mut locked: Vec<(&PathBuf, File, (u64, u64))> = Vec::new();
    for path in paths {
        let Some(identity) = idle_file(path, cutoff) else { return Vec::new() };
        let Ok(file) = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(path) else { return Vec::new() };
        let same = file.metadata().is_ok_and(|m| (m.dev(), m.ino()) == identity);
        if !same || lock_first_byte(&file, libc::F_WRLCK) != Locked::Taken {
            return Vec::new(); // replaced meanwhile, or some process has it open
        }
        locked.push((path, file, identity));
    }
    // Under every lock: no process can start using these files until they are gone.
    let still_idle = locked.iter().all(|(path, file, identity)| {
        file.metadata().is_ok_and(|m| m.modified().is_ok_and(|t| t < cutoff)) && idle_file(path, cutoff) == Some(*identity)
    });
    if !still_idle {
        return Vec::new();
    }
    locked.iter().filter(|(path, _, _)| fs::remove_file(path).is_ok()).map(|(path, _, _)| (*path).clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_waits_at_most_a_second_for_a_lock_nobody_releases() {
        let dir = tempfile::Builder::new().prefix("tracesieve-idle-").tempdir().unwrap();
        let path = dir.path().join("svc.tracesieve");
        drop(crate::store::StoreFile::open(&path).unwrap());
        // A process stuck holding the remover's lock (or one that never lets go).
        let stuck = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        assert_eq!(lock_first_byte(&stuck, libc::F_WRLCK), Locked::Taken);
        let started = Instant::now();
        let store = crate::store::StoreFile::open(&path).unwrap();
        let waited = started.elapsed();
        assert!(waited >= HOLD_WAIT && waited < 3 * HOLD_WAIT, "waited {waited:?}");
        store.place("budget", "budget", "budget=10", 4).unwrap().finish().unwrap();
        // Not held, so a remover could take it; with the stuck lock gone, the next open holds it.
        drop(stuck);
        let held = crate::store::StoreFile::open(&path).unwrap();
        assert!(remove_idle(dir.path(), Duration::ZERO).is_empty(), "held by {held:?}");
    }

    #[test]
    fn a_record_is_seen_in_use_while_a_process_has_it_open_and_listed_with_its_overflow_files() {
        let dir = tempfile::Builder::new().prefix("tracesieve-idle-").tempdir().unwrap();
        let path = dir.path().join("svc.tracesieve");
        let store = crate::store::StoreFile::open(&path).unwrap();
        assert_eq!(in_use(&path), Some(true));
        // Looking takes no lock: the holder is still the only one, and a remover still cannot remove it.
        assert_eq!(in_use(&path), Some(true));
        assert!(remove_idle(dir.path(), Duration::ZERO).is_empty());
        drop(store);
        assert_eq!(in_use(&path), Some(false));
        assert_eq!(in_use(&dir.path().join("none.tracesieve")), None);
        for name in ["svc+10.tracesieve", "svc+2.tracesieve", "api.tracesieve", "notes.txt"] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        let records = records_in(dir.path());
        let names = |record: &str| -> Vec<String> {
            records[record].iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        assert_eq!(records.keys().collect::<Vec<_>>(), ["api", "svc"]);
        assert_eq!(names("svc"), ["svc.tracesieve", "svc+2.tracesieve", "svc+10.tracesieve"]);
    }

    #[test]
    fn a_named_pipe_among_the_records_is_not_waited_on() {
        let dir = tempfile::Builder::new().prefix("tracesieve-idle-").tempdir().unwrap();
        let path = dir.path().join("svc.tracesieve");
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Opened to read without a writer, a pipe would block this call forever.
        assert_eq!(in_use(&path), None);
        assert!(remove_idle(dir.path(), Duration::ZERO).is_empty());
        assert!(path.exists());
    }

    #[test]
    fn a_records_files_are_told_from_anything_else() {
        assert_eq!(record_of("api.tracesieve"), Some("api"));
        assert_eq!(record_of("api+2.tracesieve"), Some("api"));
        assert_eq!(record_of("python-1a2b3c4d+16.tracesieve"), Some("python-1a2b3c4d"));
        assert_eq!(record_of(".api.tracesieve.123.0.ff.tmp"), None);
        assert_eq!(record_of(".tracesieve"), None);
        assert_eq!(record_of("api+x.tracesieve"), None);
        assert_eq!(record_of("+2.tracesieve"), None);
        assert_eq!(record_of("state.json"), None);
    }
}
