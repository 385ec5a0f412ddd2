//! Memory that a stage keeps its atomics in: a zeroed heap block of one
//! process, or a region of a mapped file that every process naming the file
//! sees. Either way a stage reads it through the same reference, so its hot
//! path does not care where the words live.

use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use memmap2::MmapRaw;

use super::guard::{self, Guarded};

/// A type that may live in shared memory: `#[repr(C)]`, made only of 8-byte
/// atomics (`AtomicU64`, `AtomicF64`), valid when all zero, holding no pointer.
///
/// # Safety
/// Implement only for types meeting every condition above: another process
/// (or a zeroed file) decides the bytes.
pub unsafe trait Plain: Send + Sync + 'static {}

/// How many 8-byte words a plain type takes.
pub const fn words_of<T: Plain>() -> usize {
    std::mem::size_of::<T>().div_ceil(8)
}

/// A file mapping, guarded so that a file shortened under it faults into
/// private zeroed memory instead of killing the process (see `guard`).
pub struct Mapping {
    // Unregistered before the mapping goes (fields drop in this order).
    guard: Guarded,
    map: MmapRaw,
}

impl Mapping {
    pub fn new(map: MmapRaw) -> Mapping {
        Mapping { guard: guard::register(map.as_ptr(), map.len()), map }
    }

    /// Whether the mapping was replaced by private memory (a fault, or `detach`).
    pub fn faulted(&self) -> bool {
        self.guard.faulted()
    }

    /// Replace the mapping by private zeroed memory now.
    pub fn detach(&self) -> bool {
        self.guard.detach()
    }
}

/// What keeps a region's memory alive.
#[derive(Clone)]
enum Owner {
    Heap(#[allow(dead_code)] Arc<[AtomicU64]>),
    Mapped(#[allow(dead_code)] Arc<Mapping>),
}

/// Words of memory, owned by the heap or by a file mapping.
#[derive(Clone)]
pub struct Region {
    start: NonNull<AtomicU64>,
    len: usize,
    owner: Owner,
}

// SAFETY: the words are atomics, and the owner keeps the memory alive.
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Region({} words, {})", self.len, if self.is_mapped() { "mapped" } else { "heap" })
    }
}

impl Region {
    /// `len` zeroed words on the heap (the local store).
    pub fn heap(len: usize) -> Region {
        let words: Arc<[AtomicU64]> = (0..len.max(1)).map(|_| AtomicU64::new(0)).collect();
        let start = NonNull::from(&words[0]);
        Region { start, len, owner: Owner::Heap(words) }
    }

    /// The whole of a mapping of `len` words.
    ///
    /// # Safety
    /// The mapping must be at least `len * 8` bytes and 8-byte aligned. A
    /// file shortened under it is survived by the mapping's guard.
    pub(crate) unsafe fn mapped(mapping: Arc<Mapping>, len: usize) -> Region {
        let map = &mapping.map;
        assert!(map.len() >= len * 8 && (map.as_mut_ptr() as usize).is_multiple_of(8), "a mapping too small or misaligned for its words");
        let start = NonNull::new(map.as_mut_ptr().cast::<AtomicU64>()).expect("a mapping is never at address 0");
        Region { start, len, owner: Owner::Mapped(mapping) }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self.owner, Owner::Mapped(_))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `len` atomics from `start` are owned by `owner`, which we hold.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }

    /// Set every word to zero (a piece initialised afresh).
    pub fn clear(&self) {
        for word in self.words() {
            word.store(0, std::sync::atomic::Ordering::Release);
        }
    }

    /// `len` words from word `start`, kept alive by the same owner.
    pub fn part(&self, start: usize, len: usize) -> Region {
        assert!(start + len <= self.len, "part {start}+{len} of a region of {} words", self.len);
        // SAFETY: in bounds, checked above.
        let begin = unsafe { NonNull::new_unchecked(self.start.as_ptr().add(start)) };
        Region { start: begin, len, owner: self.owner.clone() }
    }

    /// The region seen as one plain value.
    pub fn view<T: Plain>(&self) -> Shared<T> {
        assert!(self.len >= words_of::<T>(), "a region of {} words holds no {}", self.len, std::any::type_name::<T>());
        Shared { value: self.start.cast::<T>(), _owner: self.owner.clone() }
    }
}

/// A plain value in a region: dereferences to it with no more cost than a box.
pub struct Shared<T: Plain> {
    value: NonNull<T>,
    _owner: Owner,
}

// SAFETY: `T` is plain (atomics only) and the owner keeps it alive.
unsafe impl<T: Plain> Send for Shared<T> {}
unsafe impl<T: Plain> Sync for Shared<T> {}

impl<T: Plain> Deref for Shared<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: aligned, in bounds and alive (checked by `view`); any bytes
        // are a valid `T` (the `Plain` contract).
        unsafe { self.value.as_ref() }
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[repr(C)]
    #[derive(Debug, Default)]
    struct Pair {
        a: AtomicU64,
        b: AtomicU64,
    }
    unsafe impl Plain for Pair {}

    #[test]
    fn views_and_parts_share_the_words() {
        let region = Region::heap(6);
        let pair = region.part(2, 2).view::<Pair>();
        pair.b.store(7, Relaxed);
        assert_eq!(region.words()[3].load(Relaxed), 7);
        drop(region);
        assert_eq!(pair.b.load(Relaxed), 7, "a view keeps its memory alive");
        assert_eq!(words_of::<Pair>(), 2);
    }

    #[test]
    #[should_panic(expected = "holds no")]
    fn a_view_needs_room() {
        Region::heap(1).view::<Pair>();
    }
}
