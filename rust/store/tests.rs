use std::sync::atomic::Ordering::Relaxed;

use super::*;

/// A private directory of the test's own, removed with everything in it when the test ends.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("tracesieve-store-").tempdir().unwrap()
}

fn url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn the_first_opener_makes_a_piece_and_later_ones_attach_to_the_same_words() {
    let dir = temp_dir();
    let path = dir.path().join("app.tracesieve");
    let first = Store::open(&url(&path)).unwrap();
    let placed = first.place("budget", "budget=10", 4).unwrap();
    assert_eq!(placed.origin, Origin::New);
    placed.region.words()[2].store(41, Relaxed);
    let region = placed.region.clone();
    placed.finish().unwrap();
    let second = Store::open(&url(&path)).unwrap();
    let attached = second.place("budget", "budget=10", 4).unwrap();
    assert_eq!(attached.origin, Origin::Attached);
    attached.region.words()[2].fetch_add(1, Relaxed);
    assert_eq!(region.words()[2].load(Relaxed), 42, "one file, one set of words");
    attached.finish().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(StoreFile::open(&path).unwrap().pieces().unwrap(), vec![("budget".into(), "budget".into(), "budget=10".into())]);
}

#[test]
fn other_settings_are_refused_naming_both() {
    let dir = temp_dir();
    let path = dir.path().join("s.tracesieve");
    Store::open(&url(&path)).unwrap().place("budget", "budget=10000 spans/month", 4).unwrap().finish().unwrap();
    let error = Store::open(&url(&path)).unwrap().place("budget", "budget=20000 spans/month", 4).err().unwrap();
    assert_eq!(error.field, "store");
    assert!(error.message.contains("budget=10000 spans/month") && error.message.contains("budget=20000 spans/month"), "{error}");
    // Another piece name in the same file is fine.
    let named = Store::open(&format!("{}#checkout", url(&path))).unwrap();
    let placed = named.place("budget", "budget=20000 spans/month", 4).unwrap();
    assert_eq!(placed.origin, Origin::New);
    placed.finish().unwrap();
    assert_eq!(named.piece_name("budget"), "checkout.budget");
    let kind = Store::open(&url(&path)).unwrap().place("budget", "budget=10000 spans/month", 5).err().unwrap();
    assert!(kind.message.contains("5 words"), "{kind}");
}

#[test]
fn an_unfinished_piece_is_made_again_and_a_reboot_is_seen() {
    let dir = temp_dir();
    let path = dir.path().join("r.tracesieve");
    let store = Store::open_on_boot(&url(&path), Some("boot-a")).unwrap();
    let placed = store.place("rate_limit", "1/s", 2).unwrap();
    placed.region.words()[0].store(9, Relaxed);
    drop(placed); // killed while initialising
    let again = store.place("rate_limit", "1/s", 2).unwrap();
    assert_eq!(again.origin, Origin::New);
    assert_eq!(again.region.words()[0].load(Relaxed), 0, "a half-made piece starts from zero");
    again.finish().unwrap();
    assert_eq!(store.place("rate_limit", "1/s", 2).unwrap().origin, Origin::Attached);
    let after_boot = Store::open_on_boot(&url(&path), Some("boot-b")).unwrap();
    let placed = after_boot.place("rate_limit", "1/s", 2).unwrap();
    assert_eq!(placed.origin, Origin::Rebooted);
    placed.finish().unwrap();
    assert_eq!(after_boot.place("rate_limit", "1/s", 2).unwrap().origin, Origin::Attached);
}

#[test]
fn racing_creators_make_one_piece() {
    let dir = temp_dir();
    let path = dir.path().join("race.tracesieve");
    let origins: Vec<Origin> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let u = url(&path);
                scope.spawn(move || {
                    let store = Store::open(&u).unwrap();
                    let placed = store.place("budget", "b", 8).unwrap();
                    let origin = placed.origin;
                    if origin == Origin::New {
                        placed.region.words()[0].store(1, Relaxed);
                    }
                    placed.region.words()[1].fetch_add(1, Relaxed);
                    placed.finish().unwrap();
                    origin
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(origins.iter().filter(|o| **o == Origin::New).count(), 1, "{origins:?}");
    let store = Store::open(&url(&path)).unwrap();
    let placed = store.place("budget", "b", 8).unwrap();
    assert_eq!(placed.region.words()[1].load(Relaxed), 8);
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
}

#[test]
fn bad_urls_and_paths_are_config_errors() {
    let dir = temp_dir();
    let cases = [
        ("memcached://localhost:11211".to_owned(), "unknown scheme \"memcached\""),
        ("/run/app.tracesieve".to_owned(), "has no scheme"),
        ("file:run/app.tracesieve".to_owned(), "is not a file URL (file:// then an absolute path)"),
        ("Memory".to_owned(), "is not a store (did you mean \"memory\"?); expected \"memory\" (this process only), \"host\""),
        ("HOST".to_owned(), "(did you mean \"host\"?)"),
        ("file://host/run/x".to_owned(), "absolute path"),
        (format!("file://{}/", dir.path().display()), "names a directory"),
        (url(dir.path()), "is a directory"),
        (format!("file://{}/missing/x.tracesieve", dir.path().display()), "does not exist"),
        (format!("file://{}/x#bad name", dir.path().display()), "piece name"),
    ];
    for (given, expected) in cases {
        let error = Store::open(&given).err().unwrap_or_else(|| panic!("{given} was accepted"));
        assert_eq!(error.field, "store");
        assert!(error.message.contains(expected), "{given}: {error}");
    }
    let foreign = dir.path().join("foreign");
    std::fs::write(&foreign, b"#!/bin/sh\necho hello\n").unwrap();
    let error = Store::open(&url(&foreign)).err().unwrap();
    assert!(error.message.contains(r##"is not a tracesieve store (21 bytes beginning "#!/bin/s"); "##), "{error}");
    assert_eq!(std::fs::read(&foreign).unwrap(), b"#!/bin/sh\necho hello\n", "a foreign file is never written");
    // An emptied file (`: > file`) holds nothing to lose: it is made a store afresh.
    std::fs::write(&foreign, b"").unwrap();
    let emptied = Store::open(&url(&foreign)).unwrap();
    assert_eq!(emptied.place("budget", "b", 4).unwrap().origin, Origin::New);
}

#[test]
fn a_truncated_file_is_refused() {
    let dir = temp_dir();
    let path = dir.path().join("t.tracesieve");
    Store::open(&url(&path)).unwrap().place("budget", "b", 512).unwrap().finish().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(40_000).unwrap();
    let error = Store::open(&url(&path)).err().unwrap();
    assert!(error.message.contains("truncated"), "{error}");
    file.set_len(100).unwrap();
    assert!(Store::open(&url(&path)).err().unwrap().message.contains("truncated"));
}

#[test]
fn small_pieces_after_large_ones_fit_the_file() {
    // A piece ending inside the last allocated block still lengthens the file.
    let dir = temp_dir();
    let path = dir.path().join("g.tracesieve");
    let store = Store::open(&url(&path)).unwrap();
    for (kind, words) in [("signals", 361), ("budget", 30), ("rate_limit", 3)] {
        store.place(kind, "s", words).unwrap().finish().unwrap();
    }
    let again = Store::open(&url(&path)).unwrap();
    for (kind, words) in [("signals", 361), ("budget", 30), ("rate_limit", 3)] {
        assert_eq!(again.place(kind, "s", words).unwrap().origin, Origin::Attached);
    }
}

#[test]
fn the_local_store_gives_fresh_heap_words() {
    let store = Store::local();
    let placed = store.place("budget", "b", 3).unwrap();
    assert_eq!(placed.origin, Origin::New);
    assert!(!placed.region.is_mapped() && !store.is_shared());
    placed.finish().unwrap();
}

#[test]
fn a_shared_bucket_and_shared_windows_are_one_across_opens_and_fresh_after_a_reboot() {
    use crate::adaptive::Signals;
    use crate::clock::FixedClock;
    use crate::rate_limit::TokenBucket;
    use std::sync::Arc;

    let dir = temp_dir();
    let shared = url(&dir.path().join("pieces.tracesieve"));
    let open = |boot: &str| Arc::new(Store::open_on_boot(&shared, Some(boot)).unwrap());
    let first = TokenBucket::in_store(&open("a"), 10.0, 3.0, 100.0).unwrap();
    let second = TokenBucket::in_store(&open("a"), 10.0, 3.0, 100.0).unwrap();
    assert!(first.is_shared() && second.is_shared());
    let taken = (0..5).filter(|i| if i % 2 == 0 { first.try_take(100.0) } else { second.try_take(100.0) }).count();
    assert_eq!(taken, 3, "one burst of 3 for both");
    assert_eq!(first.refused() + second.refused(), 4, "refusals counted once, in the shared words");
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(FixedClock(500.0));
    let windows = Signals::in_store(&open("a"), clock.clone(), 60.0, 1.0, 2.0, &[]).unwrap();
    let others = Signals::in_store(&open("a"), clock.clone(), 60.0, 1.0, 2.0, &[]).unwrap();
    windows.record_error(4);
    assert_eq!(others.counts().errors, 4, "an error in one is seen by the other");
    // After a reboot the monotonic times in the file mean nothing: the bucket
    // starts full and the windows empty.
    let rebooted = TokenBucket::in_store(&open("b"), 10.0, 3.0, 5.0).unwrap();
    assert_eq!((0..5).filter(|_| rebooted.try_take(5.0)).count(), 3);
    let rebooted_windows = Signals::in_store(&open("b"), clock, 60.0, 1.0, 2.0, &[]).unwrap();
    assert_eq!(rebooted_windows.counts().errors, 0);
}

#[test]
fn a_corrupt_next_offset_is_reported_and_never_written_through() {
    use std::os::unix::fs::FileExt;
    let dir = temp_dir();
    let path = dir.path().join("c.tracesieve");
    Store::open(&url(&path)).unwrap().place("budget", "b", 4).unwrap().finish().unwrap();
    let before = std::fs::read(&path).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // "next free offset" near 2^64: it used to wrap to 0 and map a piece over the header.
    file.write_all_at(&(u64::MAX - 40).to_le_bytes(), 24).unwrap();
    let error = Store::open(&url(&path)).err().unwrap();
    assert!(error.message.contains("next free offset"), "{error}");
    // A count beyond the table, and a piece whose size overflows, are refused too.
    file.write_all_at(&before[24..32], 24).unwrap();
    file.write_all_at(&1000u64.to_le_bytes(), 16).unwrap();
    assert!(Store::open(&url(&path)).err().unwrap().message.contains("1000 pieces"));
    file.write_all_at(&before[16..24], 16).unwrap();
    file.write_all_at(&(u64::MAX / 4).to_le_bytes(), 4096 + 88).unwrap();
    assert!(Store::open(&url(&path)).err().unwrap().message.contains("claims"));
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after[..16], before[..16], "the magic and layout were never overwritten");
}

#[test]
fn a_file_another_user_owns_or_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let path = dir.path().join("p.tracesieve");
    Store::open(&url(&path)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(Store::open(&url(&path)).err().unwrap().message.contains("writable by every user"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
    let error = Store::open(&url(&path)).err().unwrap();
    assert!(error.message.contains("writable by its group") && error.message.contains("?group="), "{error}");
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    Store::open(&format!("{}?group={gid}", url(&path))).expect("shared with its group on purpose");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let error = Store::open(&url(&path)).err().unwrap();
        assert!(error.message.contains("belongs to user 65534"), "{error}");
    }
    let link = dir.path().join("link.tracesieve");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(Store::open(&url(&link)).err().unwrap().message.contains("symbolic link"));
    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = Store::open(&url(&open_dir.join("s.tracesieve"))).err().unwrap();
    assert!(error.message.contains("sticky"), "{error}");
    assert!(Store::open(&format!("{}?group=no-such-group-here", url(&path))).err().unwrap().message.contains("does not exist"));
    assert!(Store::open(&format!("{}?mode=777", url(&path))).err().unwrap().message.contains("the only option"));
}

#[test]
fn a_new_store_file_for_a_group_is_made_0660_in_that_group() {
    use std::os::unix::fs::MetadataExt;
    let dir = temp_dir();
    let path = dir.path().join("g.tracesieve");
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    Store::open(&format!("{}?group={gid}", url(&path))).unwrap();
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!((metadata.mode() & 0o777, metadata.gid()), (0o660, gid));
}

#[test]
fn a_held_lock_is_waited_for_a_bounded_time_then_the_piece_is_kept_per_process() {
    let dir = temp_dir();
    let path = dir.path().join("l.tracesieve");
    let store = Store::open(&url(&path)).unwrap();
    // A lock on another open file description, as another process would hold it.
    let holder = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    holder.lock().unwrap();
    let started = std::time::Instant::now();
    let placed = store.place("budget", "b", 4).unwrap();
    let waited = started.elapsed();
    assert!(!placed.region.is_mapped(), "kept per process");
    assert!(waited >= file::LOCK_WAIT && waited < file::LOCK_WAIT * 3, "{waited:?}");
    assert_eq!(store.fallbacks(), 1);
    assert!(store.problem().unwrap().contains("held its lock"), "{:?}", store.problem());
    drop(placed);
    holder.unlock().unwrap();
    assert!(store.place("budget", "b", 4).unwrap().region.is_mapped(), "shared again once the lock is free");
}

#[test]
fn a_file_shortened_under_its_mappings_turns_them_private_and_is_reported_once() {
    let dir = temp_dir();
    let path = dir.path().join("s.tracesieve");
    let store = Store::open(&url(&path)).unwrap();
    let placed = store.place("budget", "b", 4).unwrap();
    let region = placed.region.clone();
    placed.finish().unwrap();
    region.words()[0].store(7, Relaxed);
    assert_eq!(store.check(), None);
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    // Touching the words now would fault: the fault maps zeros instead.
    assert_eq!(region.words()[0].load(Relaxed), 0);
    region.words()[0].store(9, Relaxed);
    let problem = store.check().expect("the shortened file is noticed");
    assert!(problem.contains("shortened to 0 bytes"), "{problem}");
    assert_eq!(store.check(), None, "reported once");
    assert_eq!(store.fallbacks(), 1);
    assert!(store.is_detached());
    assert_eq!(region.words()[0].load(Relaxed), 0, "detached to fresh private memory");
    region.words()[0].store(3, Relaxed);
    assert_eq!(region.words()[0].load(Relaxed), 3);
    // A second store at the path makes the emptied file afresh.
    let again = Store::open(&url(&path)).unwrap();
    assert_eq!(again.place("budget", "b", 4).unwrap().origin, Origin::New);
}

#[test]
fn a_shortened_file_is_noticed_before_any_fault_and_a_replaced_one_is_reported() {
    let dir = temp_dir();
    let path = dir.path().join("r.tracesieve");
    let store = Store::open(&url(&path)).unwrap();
    let placed = store.place("budget", "b", 4).unwrap();
    let region = placed.region.clone();
    placed.finish().unwrap();
    let moved = dir.path().join("moved.tracesieve");
    std::fs::rename(&path, &moved).unwrap();
    let problem = store.check().unwrap();
    assert!(problem.contains("was removed"), "{problem}");
    assert!(!store.is_detached(), "still shared with the processes that opened it");
    Store::open(&url(&path)).unwrap();
    assert_eq!(store.check(), None, "reported once");
    region.words()[1].store(5, Relaxed);
    std::fs::OpenOptions::new().write(true).open(&moved).unwrap().set_len(4096).unwrap();
    assert!(store.check().unwrap().contains("shortened to 4096 bytes"));
    assert_eq!(region.words()[1].load(Relaxed), 0);
}

#[test]
fn a_full_record_goes_on_in_overflow_files_that_every_process_finds_alike() {
    let dir = temp_dir();
    let record = |dir: &std::path::Path| Store::host_record(&format!("{}#svc", dir.display()), None).unwrap();
    let settings = |n: usize| format!("budget={n} spans/month");
    // A service whose budget changed 64 times fills its record's table.
    let filler = record(dir.path());
    for n in 0..file::MAX_PIECES as usize {
        filler.place("budget", &settings(n), 4).unwrap().finish().unwrap();
    }
    assert!(!dir.path().join("svc+2.tracesieve").exists());
    // The 65th set of settings goes on in the first overflow file, shared by every process that has it.
    let first = record(dir.path());
    let placed = first.place("budget", &settings(1000), 4).unwrap();
    assert_eq!(placed.origin, Origin::New);
    placed.region.words()[1].store(41, Relaxed);
    let region = placed.region.clone();
    placed.finish().unwrap();
    let overflow = dir.path().join("svc+2.tracesieve");
    assert_eq!(first.shown_url(), Some(url(&overflow)));
    assert_eq!(first.fallbacks(), 0);
    let second = record(dir.path());
    let attached = second.place("budget", &settings(1000), 4).unwrap();
    assert_eq!(attached.origin, Origin::Attached);
    attached.region.words()[1].fetch_add(1, Relaxed);
    assert_eq!(region.words()[1].load(Relaxed), 42, "one piece in the overflow file");
    attached.finish().unwrap();
    // Settings the first file holds are still found there.
    let old = record(dir.path());
    assert_eq!(old.place("budget", &settings(3), 4).unwrap().origin, Origin::Attached);
    assert_eq!(old.shown_url(), old.url().map(str::to_owned));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&overflow).unwrap().permissions().mode() & 0o777, 0o600);
    // Every overflow file full: the budget is kept per process, saying why.
    for index in 0..OVERFLOW_FILES {
        for n in 0..file::MAX_PIECES as usize {
            let placed = filler.place("budget", &settings(10_000 * (index + 1) + n), 4).unwrap();
            placed.finish().unwrap();
        }
    }
    assert_eq!(filler.fallbacks(), 1, "{:?}", filler.problem());
    assert!(filler.problem().unwrap().contains("overflow files hold 64 pieces each"), "{:?}", filler.problem());
    assert!(!dir.path().join(format!("svc+{}.tracesieve", OVERFLOW_FILES + 2)).exists());
    // A store file of the user's own choosing is refused when full, as before.
    let full = Store::open(&url(&dir.path().join("svc.tracesieve"))).unwrap();
    let error = full.place("another", "x=1", 4).err().unwrap();
    assert!(error.to_string().contains("holds 64 pieces already"), "{error}");
}

/// Set `path`'s modification time `days` back.
fn backdate(path: &std::path::Path, days: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
}

#[test]
fn a_record_no_process_has_open_and_nobody_wrote_for_two_months_is_removed_whole() {
    let dir = temp_dir();
    let at = |name: &str| dir.path().join(name);
    let record = |name: &str| Store::host_record(&format!("{}#{name}", dir.path().display()), None).unwrap();
    for name in ["old.tracesieve", "old+2.tracesieve", "half.tracesieve", "half+2.tracesieve", "recent.tracesieve"] {
        drop(StoreFile::open(&at(name)).unwrap());
    }
    let busy = record("busy");
    let placed = busy.place("budget", "budget=10", 4).unwrap();
    let region = placed.region.clone();
    placed.finish().unwrap();
    std::fs::write(at("notes.txt"), "not a record").unwrap();
    std::os::unix::fs::symlink(at("old.tracesieve"), at("link.tracesieve")).unwrap();
    for name in ["old.tracesieve", "old+2.tracesieve", "half.tracesieve", "busy.tracesieve", "recent.tracesieve", "notes.txt"] {
        backdate(&at(name), 63);
    }
    backdate(&at("half+2.tracesieve"), 61);
    // Opened again today (by a process that has since stopped): not idle.
    drop(StoreFile::open(&at("recent.tracesieve")).unwrap());
    let mut removed = idle::remove_idle(dir.path(), idle::IDLE);
    removed.sort();
    assert_eq!(removed, vec![at("old+2.tracesieve"), at("old.tracesieve")], "only the record idle in every file");
    for name in ["half.tracesieve", "half+2.tracesieve", "busy.tracesieve", "recent.tracesieve", "notes.txt", "link.tracesieve"] {
        assert!(std::fs::symlink_metadata(at(name)).is_ok(), "{name} is kept");
    }
    assert_eq!(busy.check(), None, "the record in use was never touched");
    // Its process gone (the last open description closed), it is idle like any other.
    drop((busy, region));
    assert_eq!(idle::remove_idle(dir.path(), idle::IDLE), vec![at("busy.tracesieve")]);
    // A service that starts again makes its record afresh.
    assert_eq!(record("old").place("budget", "budget=10", 4).unwrap().origin, Origin::New);
}

#[test]
fn a_record_opened_while_a_remover_sweeps_is_never_left_unlinked_under_it() {
    let dir = temp_dir();
    let file = dir.path().join("svc.tracesieve");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let removed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let remover = {
        let (dir, stop, removed) = (dir.path().to_owned(), stop.clone(), removed.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                removed.fetch_add(idle::remove_idle(&dir, idle::IDLE).len(), Relaxed);
            }
        })
    };
    use std::os::unix::fs::MetadataExt;
    // At least 300 rounds, and on until the remover has removed the record between two of them
    // (on a loaded machine its thread may miss the short windows of the first 300).
    let mut round = 0u64;
    while round < 300 || (removed.load(Relaxed) == 0 && round < 30_000) {
        // The record left idle for two months, then opened as the remover sweeps.
        if file.exists() {
            backdate(&file, 63);
            if round % 10 == 9 {
                std::thread::sleep(std::time::Duration::from_millis(1)); // a wider window for the remover now and then
            }
        }
        let store = Store::host_record(&format!("{}#svc", dir.path().display()), None).unwrap();
        let placed = store.place("budget", "budget=10", 4).unwrap();
        placed.finish().unwrap();
        assert_eq!(store.problem(), None, "round {round}");
        let named = std::fs::metadata(&file).unwrap_or_else(|e| panic!("round {round}: {e}"));
        std::thread::sleep(std::time::Duration::from_micros(200));
        assert_eq!(store.check(), None, "round {round}: the file was removed while in use");
        assert!(std::fs::metadata(&file).is_ok_and(|m| m.ino() == named.ino()), "round {round}");
        round += 1;
    }
    stop.store(true, Relaxed);
    remover.join().unwrap();
    assert!(removed.load(Relaxed) > 0, "the remover did remove records between rounds");
}
