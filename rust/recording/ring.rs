//! The retention ring: the records of traces this process dropped, oldest out
//! first within a byte budget, found again by trace id when a keep comes after
//! the fact (an announcement heard late, a capture).
//!
//! Records live back to back in one circular byte buffer of the budget's size
//! (its pages touched only as it fills), each behind a small header, so the
//! memory it holds is the budget, whatever the records' sizes: no allocation
//! per record, nothing for an allocator to fragment. Each record's header
//! points to the trace's record before it, and a small index holds each
//! trace's newest record, so finding a trace costs a few bytes per trace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::tail_buffer::Retention;

/// A record as the engine holds it: its encoded bytes, which begin with the
/// trace id (16 bytes, little-endian).
pub type Record = Box<[u8]>;

/// Each record's header in the buffer: its length (4 bytes), whether it was
/// taken (1), and the position of the trace's record before it (4; NONE: none).
const HEADER: usize = 9;
const NONE: u32 = u32::MAX;

/// Bytes counted for each record besides its own: its header and its share of
/// the trace index, as measured (`benches/retention_memory.py`), so that
/// `retention_bytes` stands for the memory the ring uses.
pub const ENTRY_OVERHEAD: usize = HEADER + 15;

/// The largest ring: positions are kept as 32 bits within the buffer's span.
pub const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;

/// The trace id a record begins with (None: too short to be a record).
fn trace_of(record: &[u8]) -> Option<u128> {
    Some(u128::from_le_bytes(record.get(..16)?.try_into().ok()?))
}

/// The index's key for a trace (its id folded to 64 bits; records are checked
/// against the whole id when taken).
fn key(trace_id: u128) -> u64 {
    (trace_id as u64) ^ ((trace_id >> 64) as u64)
}

#[derive(Default)]
struct Bytes {
    /// The circular buffer (allocated at the first record, zero pages until written).
    buffer: Vec<u8>,
    /// Positions since the start, never wrapping: the oldest record's and the next free byte's.
    head: u64,
    tail: u64,
    /// Each retained trace's newest record (the low 32 bits of its position).
    index: HashMap<u64, u32>,
    /// Records held (not taken) and the bytes counted for them.
    held: usize,
    counted: usize,
}

/// A record's header.
struct Header {
    length: usize,
    taken: bool,
    previous: u32,
}

impl Bytes {
    fn write(&mut self, position: u64, bytes: &[u8]) {
        let size = self.buffer.len();
        let start = (position % size as u64) as usize;
        let first = bytes.len().min(size - start);
        self.buffer[start..start + first].copy_from_slice(&bytes[..first]);
        self.buffer[..bytes.len() - first].copy_from_slice(&bytes[first..]);
    }

    fn read_into(&self, position: u64, out: &mut [u8]) {
        let size = self.buffer.len();
        let start = (position % size as u64) as usize;
        let first = out.len().min(size - start);
        out[..first].copy_from_slice(&self.buffer[start..start + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.buffer[..rest]);
    }

    fn header(&self, position: u64) -> Header {
        let mut bytes = [0u8; HEADER];
        self.read_into(position, &mut bytes);
        Header {
            length: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
            taken: bytes[4] != 0,
            previous: u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]),
        }
    }

    fn record(&self, position: u64, length: usize) -> Record {
        let mut out = vec![0; length];
        self.read_into(position + HEADER as u64, &mut out);
        out.into_boxed_slice()
    }

    fn trace_at(&self, position: u64) -> u128 {
        let mut id = [0u8; 16];
        self.read_into(position + HEADER as u64, &mut id);
        u128::from_le_bytes(id)
    }

    /// The whole position of a record stored as `low`, if it is still held
    /// (at or after the head and before `before`).
    fn position(&self, low: u32, before: u64) -> Option<u64> {
        let position = self.head + u64::from(low.wrapping_sub(self.head as u32));
        (low != NONE && position < before).then_some(position)
    }
}

/// Counts of what the ring did.
#[derive(Debug, Default)]
pub struct RingCounts {
    pub retained: AtomicU64,
    /// Records pushed out by newer ones (the horizon passed them).
    pub evicted: AtomicU64,
    /// Records larger than the whole ring (or not beginning with their trace's id), never retained.
    pub too_large: AtomicU64,
    pub taken: AtomicU64,
}

pub struct Ring {
    capacity: usize,
    bytes: Mutex<Bytes>,
    pub counts: RingCounts,
}

impl Ring {
    /// A ring of `capacity` bytes (at most `MAX_CAPACITY`).
    pub fn new(capacity: usize) -> Ring {
        Ring { capacity: capacity.min(MAX_CAPACITY), bytes: Mutex::new(Bytes::default()), counts: RingCounts::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bytes> {
        self.bytes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cost(length: usize) -> usize {
        length + ENTRY_OVERHEAD
    }

    /// Retain a record of `trace_id` (the trace id it begins with).
    pub fn push(&self, trace_id: u128, record: Record) {
        let cost = Ring::cost(record.len());
        if cost > self.capacity || trace_of(&record) != Some(trace_id) {
            self.counts.too_large.fetch_add(1, Relaxed);
            return;
        }
        let mut ring = self.lock();
        if ring.buffer.is_empty() {
            ring.buffer = vec![0; self.capacity];
        }
        let size = HEADER + record.len();
        // Room in the buffer, and within the budget counting each record's overhead.
        while ring.head < ring.tail && (ring.tail - ring.head + size as u64 > self.capacity as u64 || ring.counted + cost > self.capacity) {
            self.evict_oldest(&mut ring);
        }
        let position = ring.tail;
        let previous = ring.index.get(&key(trace_id)).copied().unwrap_or(NONE);
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&(record.len() as u32).to_le_bytes());
        header[5..].copy_from_slice(&previous.to_le_bytes());
        ring.write(position, &header);
        ring.write(position + HEADER as u64, &record);
        ring.tail += size as u64;
        ring.held += 1;
        ring.counted += cost;
        ring.index.insert(key(trace_id), position as u32);
        self.counts.retained.fetch_add(1, Relaxed);
    }

    fn evict_oldest(&self, ring: &mut Bytes) {
        let position = ring.head;
        let header = ring.header(position);
        let trace = (!header.taken).then(|| ring.trace_at(position));
        ring.head += (HEADER + header.length) as u64;
        let Some(trace) = trace else { return };
        ring.held -= 1;
        ring.counted -= Ring::cost(header.length);
        self.counts.evicted.fetch_add(1, Relaxed);
        // The trace's newer records stop at this one (now behind the head); its only record leaves the index.
        if ring.index.get(&key(trace)) == Some(&(position as u32)) {
            ring.index.remove(&key(trace));
        }
    }

    /// Every retained record of the trace, removed, oldest first.
    pub fn take(&self, trace_id: u128) -> Vec<Record> {
        let mut ring = self.lock();
        let Some(newest) = ring.index.remove(&key(trace_id)) else { return Vec::new() };
        let mut taken = Vec::new();
        let mut next = ring.tail;
        let mut low = newest;
        while let Some(position) = ring.position(low, next) {
            let header = ring.header(position);
            if !header.taken && ring.trace_at(position) == trace_id {
                taken.push(ring.record(position, header.length));
                ring.write(position + 4, &[1]);
                ring.held -= 1;
                ring.counted -= Ring::cost(header.length);
            }
            next = position;
            low = header.previous;
        }
        taken.reverse();
        // Taken records at the front are gone for good.
        while ring.head < ring.tail && ring.header(ring.head).taken {
            let length = ring.header(ring.head).length;
            ring.head += (HEADER + length) as u64;
        }
        self.counts.taken.fetch_add(taken.len() as u64, Relaxed);
        taken
    }

    /// (records held, bytes counted for them)
    pub fn sizes(&self) -> (usize, usize) {
        let ring = self.lock();
        (ring.held, ring.counted)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Retention<Record> for Ring {
    fn retain(&self, trace_id: u128, spans: Vec<Record>) {
        for record in spans {
            self.push(trace_id, record);
        }
    }

    fn take(&self, trace_id: u128) -> Vec<Record> {
        Ring::take(self, trace_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `trace`: its id, then `size - 16` bytes of `tag`.
    fn record(trace: u128, size: usize, tag: u8) -> Record {
        let mut bytes = trace.to_le_bytes().to_vec();
        bytes.resize(size, tag);
        bytes.into_boxed_slice()
    }

    #[test]
    fn the_oldest_go_first_within_the_byte_budget() {
        let ring = Ring::new(3 * (100 + ENTRY_OVERHEAD));
        for (trace, tag) in [(1u128, 1u8), (2, 2), (1, 3), (3, 4)] {
            ring.push(trace, record(trace, 100, tag));
        }
        assert_eq!(ring.counts.evicted.load(Relaxed), 1, "the first record made room");
        assert_eq!(ring.take(1).iter().map(|r| r[99]).collect::<Vec<_>>(), vec![3]);
        assert_eq!(ring.take(1), Vec::<Record>::new(), "taken once");
        assert_eq!(ring.take(3).len(), 1);
        assert_eq!(ring.sizes(), (1, 100 + ENTRY_OVERHEAD));
        assert_eq!(ring.take(2).iter().map(|r| r[99]).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn records_wrap_around_the_end_of_the_buffer_intact() {
        let ring = Ring::new(1000);
        for i in 0..200u128 {
            let size = 20 + (i as usize * 37) % 150;
            ring.push(i, record(i, size, i as u8));
            let back = ring.take(i);
            assert_eq!(back, vec![record(i, size, i as u8)], "record {i}");
        }
        assert_eq!(ring.sizes(), (0, 0));
    }

    #[test]
    fn a_record_larger_than_the_ring_is_not_retained() {
        let ring = Ring::new(100);
        ring.push(1, record(1, 200, 0));
        ring.push(2, record(1, 50, 0));
        assert_eq!(ring.counts.too_large.load(Relaxed), 2, "nor one whose id is not its trace's");
        assert!(ring.take(1).is_empty());
    }

    #[test]
    fn memory_stays_bounded_whatever_the_traffic() {
        let ring = Ring::new(10_000);
        for i in 0..100_000u128 {
            ring.push(i % 97, record(i % 97, 50 + (i % 30) as usize, 0));
            if i % 7 == 0 {
                ring.take((i * 13) % 97);
            }
        }
        let (held, counted) = ring.sizes();
        assert!(counted <= 10_000 && held > 0);
        let bytes = ring.lock();
        assert_eq!(bytes.buffer.len(), 10_000);
        assert!(bytes.tail - bytes.head <= 10_000);
        assert!(bytes.index.len() <= 97);
    }
}

#[cfg(test)]
mod chains {
    use super::*;

    fn record(trace: u128, size: usize, tag: u8) -> Record {
        let mut bytes = trace.to_le_bytes().to_vec();
        bytes.resize(size, tag);
        bytes.into_boxed_slice()
    }

    #[test]
    fn a_trace_whose_oldest_records_were_evicted_gives_back_the_rest_in_order() {
        let ring = Ring::new(4 * (60 + ENTRY_OVERHEAD));
        for tag in 0..6u8 {
            ring.push(7, record(7, 60, tag));
        }
        assert_eq!(ring.counts.evicted.load(Relaxed), 2);
        assert_eq!(ring.take(7).iter().map(|r| r[59]).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        assert_eq!(ring.sizes(), (0, 0));
    }

    #[test]
    fn traces_whose_ids_fold_to_the_same_key_keep_their_own_records() {
        let ring = Ring::new(10_000);
        let (a, b) = (1u128 << 64 | 5, 5u128 << 64 | 1);
        assert_eq!(key(a), key(b));
        ring.push(a, record(a, 40, 1));
        ring.push(b, record(b, 40, 2));
        assert_eq!(ring.take(b).iter().map(|r| r[39]).collect::<Vec<_>>(), vec![2]);
        assert!(ring.take(a).is_empty(), "the folded key's newest entry was b's: a's record is out of reach, never b's");
    }
}
