//! Keeps a process alive when a store file is shortened under its mappings.
//!
//! Touching a mapped page past the end of its file raises `SIGBUS`, which
//! kills the process by default: an operator's `: > file` or a clean-up tool
//! would take down every worker of the host. Every mapping of a store file is
//! registered here; a `SIGBUS` inside one replaces that mapping with private
//! zeroed memory (the faulting access then completes on it) and marks it
//! faulted, so the store falls back to per-process state. Any other `SIGBUS`
//! goes to the handler that was installed before ours (by default: the
//! process dies as it would have).
//!
//! The handler only reads atomics and calls `mmap`, both safe in a signal.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::Once;

/// Mappings registered at once, at most (a store holds at most 64 pieces).
const SLOTS: usize = 512;

struct Slot {
    /// Page-aligned start and length (0: a free slot).
    start: AtomicUsize,
    len: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot { start: AtomicUsize::new(0), len: AtomicUsize::new(0), faulted: AtomicBool::new(false) };
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
/// The action in force before ours, written once before ours is installed.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A registered mapping; unregistered when dropped (before it is unmapped).
#[derive(Debug)]
pub struct Guarded {
    slot: Option<usize>,
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// The whole pages that hold `len` bytes from `start`.
fn pages(start: usize, len: usize) -> (usize, usize) {
    let page = page_size();
    let first = start & !(page - 1);
    let end = (start + len).div_ceil(page) * page;
    (first, end - first)
}

/// Register the mapping of `len` bytes at `start` (installing the handler on
/// first use). A full table leaves the mapping unguarded, as before.
pub fn register(start: *const u8, len: usize) -> Guarded {
    install();
    let (first, length) = pages(start as usize, len);
    for (index, slot) in TABLE.iter().enumerate() {
        if slot.len.compare_exchange(0, length, AcqRel, Acquire).is_ok() {
            slot.faulted.store(false, Release);
            slot.start.store(first, Release);
            return Guarded { slot: Some(index) };
        }
    }
    Guarded { slot: None }
}

impl Guarded {
    /// Whether a fault (or `detach`) replaced the mapping with private memory.
    pub fn faulted(&self) -> bool {
        self.slot.is_some_and(|index| TABLE[index].faulted.load(Acquire))
    }

    /// Replace the mapping with private zeroed memory now (the file was
    /// shortened; touching it would fault). Returns whether it was replaced.
    pub fn detach(&self) -> bool {
        let Some(index) = self.slot else { return false };
        let slot = &TABLE[index];
        let (start, len) = (slot.start.load(Acquire), slot.len.load(Acquire));
        // SAFETY: the range is a whole mapping of ours, registered while mapped.
        let replaced = unsafe { zero_over(start, len) };
        if replaced {
            slot.faulted.store(true, Release);
        }
        replaced
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(index) = self.slot.take() {
            TABLE[index].start.store(0, Release);
            TABLE[index].len.store(0, Release);
        }
    }
}

/// Map private zeroed pages over `len` bytes at `start`, in place.
///
/// # Safety
/// `start..start + len` must be page-aligned and wholly one of our mappings.
unsafe fn zero_over(start: usize, len: usize) -> bool {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
    let mapped = libc::mmap(start as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0);
    mapped != libc::MAP_FAILED
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sigaction with a zeroed struct and our handler; PREVIOUS is
        // written once here, before the handler that reads it can run.
        unsafe {
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = on_sigbus as *const () as usize;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut ours.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &ours, &mut previous) == 0 {
                PREVIOUS = Some(previous);
            }
        }
    });
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
    for slot in &TABLE {
        let (start, len) = (slot.start.load(Acquire), slot.len.load(Acquire));
        if len != 0 && address >= start && address < start + len {
            // SAFETY: a registered range is a whole mapping of ours.
            if unsafe { zero_over(start, len) } {
                slot.faulted.store(true, Release);
                return; // the access runs again, on the zeroed pages
            }
        }
    }
    // SAFETY: PREVIOUS was written before this handler was installed.
    unsafe { chain(signal, info, context) }
}

/// Hand a `SIGBUS` that is not ours to the action in force before ours.
unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = (*std::ptr::addr_of!(PREVIOUS)).as_ref();
    match previous {
        Some(action) if action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN => {
            if action.sa_flags & libc::SA_SIGINFO != 0 {
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(action.sa_sigaction);
                handler(signal, info, context);
            } else {
                let handler: extern "C" fn(libc::c_int) = std::mem::transmute(action.sa_sigaction);
                handler(signal);
            }
        }
        _ => {
            // The default action: the faulting access runs again and the
            // process ends with SIGBUS, as it would have without us.
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt as _;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn a_mapping_whose_file_is_truncated_reads_zeros_instead_of_killing_the_process() {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(&[7u8; 8192], 0).unwrap();
        let map = memmap2::MmapOptions::new().offset(4096).len(64).map_raw(&file).unwrap();
        let guarded = register(map.as_ptr(), 64);
        // SAFETY: the mapping is 64 bytes, page-aligned plus 0.
        let word = unsafe { &*(map.as_mut_ptr() as *const AtomicU64) };
        assert_eq!(word.load(Relaxed), u64::from_le_bytes([7; 8]));
        file.set_len(0).unwrap();
        assert_eq!(word.load(Relaxed), 0, "the fault mapped zeros in place");
        assert!(guarded.faulted());
        word.store(5, Relaxed);
        assert_eq!(word.load(Relaxed), 5, "the private pages are writable");
        drop(guarded);
        drop(map);
    }

    #[test]
    fn slots_are_freed_when_a_guard_drops() {
        let data = [0u8; 64];
        let guard = register(data.as_ptr(), 64);
        let index = guard.slot.unwrap();
        assert_ne!(TABLE[index].len.load(Relaxed), 0);
        drop(guard);
        assert_eq!(TABLE[index].len.load(Relaxed), 0);
    }
}
