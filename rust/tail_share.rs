//! Tail decisions shared between services: the wire format of an
//! announcement batch, the bounded outbox of this process's announcements,
//! and the bounded, expiring set of what the other processes announced.
//! No I/O here: the Python transport moves the bytes.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// Why the announcing service kept the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Error = 0,
    Latency = 1,
    Rule = 2,
}

impl Kind {
    pub fn from_reason(reason: &str) -> Kind {
        if reason == "error" {
            Kind::Error
        } else if reason == "latency" {
            Kind::Latency
        } else {
            Kind::Rule
        }
    }

    /// The reason a span kept for another service's announcement carries.
    pub fn shared_reason(self) -> &'static str {
        match self {
            Kind::Error => "shared:error",
            Kind::Latency => "shared:latency",
            Kind::Rule => "shared:rule",
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Error),
            1 => Some(Kind::Latency),
            2 => Some(Kind::Rule),
            _ => None,
        }
    }
}

/// One kept trace, as announced: its id, why, and the adjusted count its
/// spans carry (1 / the probability such a trace is kept).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Announcement {
    pub trace_id: u128,
    pub kind: Kind,
    pub weight: f64,
}

/// First byte of every batch: the format's version.
const VERSION: u8 = 1;
const HEADER: usize = 1 + 8;
/// Bytes per announcement: trace id (16), adjusted count (8), kind (1).
pub const ENTRY_BYTES: usize = 25;

/// A batch on the wire: version, the sender's origin id, then the entries (little-endian).
pub fn encode(origin: u64, items: &[Announcement]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + items.len() * ENTRY_BYTES);
    out.push(VERSION);
    out.extend_from_slice(&origin.to_le_bytes());
    for item in items {
        out.extend_from_slice(&item.trace_id.to_le_bytes());
        out.extend_from_slice(&item.weight.to_le_bytes());
        out.push(item.kind as u8);
    }
    out
}

/// A batch announcing `trace_ids` as kept after the fact, from an origin of
/// its own (`tracesieve capture`): announced as a rule's keep, the kind every
/// reader takes, each span standing for itself.
pub fn capture_batch(trace_ids: &[u128]) -> Vec<u8> {
    let items: Vec<Announcement> = trace_ids.iter().map(|&trace_id| Announcement { trace_id, kind: Kind::Rule, weight: 1.0 }).collect();
    encode(new_origin(), &items)
}

/// (origin, announcements) of a batch, or what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<(u64, Vec<Announcement>), String> {
    if bytes.len() < HEADER || bytes[0] != VERSION || !(bytes.len() - HEADER).is_multiple_of(ENTRY_BYTES) {
        return Err(format!("a batch of {} bytes that is not version {VERSION} announcements", bytes.len()));
    }
    let origin = u64::from_le_bytes(bytes[1..HEADER].try_into().expect("8 bytes"));
    let mut items = Vec::with_capacity((bytes.len() - HEADER) / ENTRY_BYTES);
    for entry in bytes[HEADER..].chunks_exact(ENTRY_BYTES) {
        let trace_id = u128::from_le_bytes(entry[..16].try_into().expect("16 bytes"));
        let weight = f64::from_le_bytes(entry[16..24].try_into().expect("8 bytes"));
        let kind = Kind::from_byte(entry[24]).ok_or_else(|| format!("an announcement of unknown kind {}", entry[24]))?;
        if !(weight.is_finite() && weight >= 1.0) {
            return Err(format!("an announcement with adjusted count {weight}; expected 1 or more"));
        }
        items.push(Announcement { trace_id, kind, weight });
    }
    Ok((origin, items))
}

/// A random id for this process's announcements, so it skips its own when it reads them back.
pub fn new_origin() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.finish()
}

/// Announcements waiting to be sent; at the cap the oldest is dropped (a stale
/// announcement helps least) and counted.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Announcement>,
    capacity: usize,
    pub dropped: u64,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox { queue: VecDeque::new(), capacity, dropped: 0 }
    }

    pub fn push(&mut self, item: Announcement) {
        if self.queue.len() >= self.capacity {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(item);
    }

    /// Put back announcements taken but not sent (Redis did not answer):
    /// they go out first next time; at the cap the oldest are dropped, counted.
    pub fn put_back(&mut self, items: &[Announcement]) {
        for item in items.iter().rev() {
            self.queue.push_front(*item);
        }
        while self.queue.len() > self.capacity {
            self.queue.pop_front();
            self.dropped += 1;
        }
    }

    pub fn take(&mut self, max: usize) -> Vec<Announcement> {
        let take = self.queue.len().min(max);
        self.queue.drain(..take).collect()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// What the other processes announced, each for `ttl` seconds; at the cap the
/// oldest is forgotten early and counted.
#[derive(Debug)]
pub struct Heard {
    entries: HashMap<u128, (f64, Announcement)>,
    /// (heard at, trace id) in arrival order; stale pairs are skipped.
    order: VecDeque<(f64, u128)>,
    capacity: usize,
    ttl: f64,
    pub expired: u64,
    pub evicted: u64,
}

impl Heard {
    pub fn new(capacity: usize, ttl: f64) -> Self {
        Heard { entries: HashMap::new(), order: VecDeque::new(), capacity, ttl, expired: 0, evicted: 0 }
    }

    /// Remember an announcement; when the trace was heard already, the one
    /// with the smaller adjusted count (the likelier keep) wins. Returns the
    /// announcement now held.
    pub fn insert(&mut self, item: Announcement, now: f64) -> Announcement {
        self.expire(now);
        if let Some((_, held)) = self.entries.get_mut(&item.trace_id) {
            if item.weight < held.weight {
                *held = item;
            }
            return *held;
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_front() else { break };
            if self.entries.remove(&oldest).is_some() {
                self.evicted += 1;
            }
        }
        self.entries.insert(item.trace_id, (now, item));
        self.order.push_back((now, item.trace_id));
        item
    }

    pub fn get(&self, trace_id: u128, now: f64) -> Option<Announcement> {
        self.entries.get(&trace_id).filter(|(at, _)| now - at < self.ttl).map(|(_, item)| *item)
    }

    /// Forget what is older than the ttl.
    pub fn expire(&mut self, now: f64) {
        while let Some(&(at, id)) = self.order.front() {
            if now - at < self.ttl {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&id).is_some_and(|(held_at, _)| *held_at == at) {
                self.entries.remove(&id);
                self.expired += 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(trace_id: u128, kind: Kind, weight: f64) -> Announcement {
        Announcement { trace_id, kind, weight }
    }

    #[test]
    fn batches_round_trip_and_bad_bytes_are_refused() {
        let items = vec![item(u128::MAX - 3, Kind::Error, 1.0), item(7, Kind::Latency, 4.0), item(9, Kind::Rule, 1.0)];
        let bytes = encode(42, &items);
        assert_eq!(bytes.len(), HEADER + 3 * ENTRY_BYTES);
        assert_eq!(decode(&bytes).unwrap(), (42, items));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"").is_err());
        let mut wrong_kind = encode(1, &[item(1, Kind::Error, 1.0)]);
        *wrong_kind.last_mut().unwrap() = 9;
        assert!(decode(&wrong_kind).unwrap_err().contains("unknown kind"));
        assert!(decode(&encode(1, &[item(1, Kind::Error, 0.5)])).is_err(), "an adjusted count below 1 is refused");
        assert_ne!(new_origin(), new_origin());
    }

    #[test]
    fn a_capture_batch_announces_each_trace_as_a_rules_keep_from_an_origin_of_its_own() {
        let (origin, items) = decode(&capture_batch(&[7, u128::MAX])).unwrap();
        assert_eq!(items, vec![item(7, Kind::Rule, 1.0), item(u128::MAX, Kind::Rule, 1.0)]);
        let (other, _) = decode(&capture_batch(&[7])).unwrap();
        assert_ne!(origin, other, "no reader takes it for its own");
    }

    #[test]
    fn the_outbox_drops_its_oldest_at_the_cap_and_counts_it() {
        let mut outbox = Outbox::new(3);
        for id in 0..5 {
            outbox.push(item(id, Kind::Error, 1.0));
        }
        assert_eq!(outbox.dropped, 2);
        assert_eq!(outbox.take(10).iter().map(|a| a.trace_id).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert!(outbox.is_empty());
    }

    #[test]
    fn announcements_put_back_go_out_first_and_the_cap_still_holds() {
        let mut outbox = Outbox::new(4);
        for id in 0..3 {
            outbox.push(item(id, Kind::Error, 1.0));
        }
        let taken = outbox.take(2);
        outbox.push(item(3, Kind::Error, 1.0));
        outbox.push(item(4, Kind::Error, 1.0));
        outbox.put_back(&taken);
        assert_eq!(outbox.dropped, 1, "five waiting against a cap of four: the oldest dropped");
        assert_eq!(outbox.take(10).iter().map(|a| a.trace_id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn heard_announcements_expire_are_capped_and_the_likelier_keep_wins() {
        let mut heard = Heard::new(2, 10.0);
        heard.insert(item(1, Kind::Latency, 4.0), 0.0);
        assert_eq!(heard.insert(item(1, Kind::Error, 1.0), 1.0).kind, Kind::Error);
        assert_eq!(heard.insert(item(1, Kind::Latency, 4.0), 2.0).kind, Kind::Error, "a less likely keep does not replace");
        heard.insert(item(2, Kind::Rule, 1.0), 3.0);
        heard.insert(item(3, Kind::Rule, 1.0), 4.0);
        assert_eq!((heard.len(), heard.evicted), (2, 1));
        assert!(heard.get(1, 4.0).is_none(), "the oldest went at the cap");
        assert!(heard.get(2, 12.9).is_some());
        assert!(heard.get(2, 13.0).is_none(), "expired after the ttl");
        heard.expire(14.0);
        assert_eq!((heard.len(), heard.expired), (0, 2));
    }
}
