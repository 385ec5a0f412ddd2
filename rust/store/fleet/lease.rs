//! A stage's side of the fleet: the `Lease` its hot path spends (two atomic
//! words), and the `Link` its worker keeps (timing of calls, the fallback
//! share while Redis cannot be reached, and what to report of it).

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Mutex;

use crate::cells::AtomicF64;

/// A lease's validity, in spacings between the worker's calls, from when the
/// call was sent. The server keeps it `SERVER_LEASE` spacings from when it
/// granted it, so the process stops spending first.
const LOCAL_LEASE: f64 = 2.5;
const SERVER_LEASE: f64 = 3.0;
/// The fewest spans or tokens a request asks for.
pub const MIN_REQUEST: f64 = 2.0;

/// Spans (or tokens) this process may spend until a monotonic deadline.
#[derive(Debug, Default)]
pub struct Lease {
    left: AtomicU64,
    until: AtomicF64,
}

impl Lease {
    /// Take one, if the lease is valid at `mono` and not spent.
    #[inline]
    pub fn take(&self, mono: f64) -> bool {
        if mono >= self.until.get() {
            return false;
        }
        let mut left = self.left.load(Acquire);
        loop {
            if left == 0 {
                return false;
            }
            match self.left.compare_exchange_weak(left, left - 1, AcqRel, Acquire) {
                Ok(_) => return true,
                Err(seen) => left = seen,
            }
        }
    }

    /// Return one taken but not used (the stage refused the span after all).
    #[inline]
    pub fn give_back(&self) {
        self.left.fetch_add(1, AcqRel);
    }

    /// What is left to spend (whether or not still valid).
    pub fn left(&self) -> u64 {
        self.left.load(Acquire)
    }

    pub fn valid(&self, mono: f64) -> bool {
        mono < self.until.get()
    }

    /// Add `grant` and make the lease valid until `until`.
    pub fn extend(&self, grant: u64, until: f64) {
        self.left.fetch_add(grant, AcqRel);
        self.until.set(until);
    }

    /// Void it (a new period, a forked child).
    pub fn clear(&self) {
        self.left.store(0, Release);
        self.until.set(0.0);
    }
}

/// What `stats()` says of a stage's fleet link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetStatus {
    pub syncs: u64,
    pub failures: u64,
    /// Whether the stage is on its fallback share now.
    pub degraded: bool,
    /// Seconds spent on the fallback share, in all.
    pub degraded_seconds: f64,
    /// The share of the fleet's allowance taken while degraded.
    pub share: f64,
    /// What the lease has left, and whether it is valid.
    pub lease_left: u64,
    pub lease_valid: bool,
    /// Processes seen at the last call (this one included).
    pub members: u64,
    /// The last reason a call failed (never a credential).
    pub problem: Option<String>,
    /// Values in Redis found invalid (garbage, or forged) and repaired or ignored.
    pub repairs: u64,
}

#[derive(Debug)]
struct LinkState {
    id: String,
    /// When the call in flight was sent, and when the one before was.
    sent_at: f64,
    previous_sent: f64,
    spacing: f64,
    /// The fleet state's identity seen at the last call (0: never reached).
    epoch: f64,
    degraded_since: Option<f64>,
    degraded_seconds: f64,
    /// When the fallback share last granted, and the fraction not yet granted.
    granted_at: f64,
    carry: f64,
    share: f64,
    members: u64,
    syncs: u64,
    failures: u64,
    problem: Option<String>,
    repairs: u64,
}

/// The worker's side of one stage: when it called, what it learnt.
#[derive(Debug)]
pub struct Link {
    state: Mutex<LinkState>,
}

fn new_id() -> String {
    // Unique enough among a fleet's processes: the pid, the time, a counter.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = (nanos as u64) ^ ((std::process::id() as u64) << 40) ^ NEXT.fetch_add(1, Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&seed.to_le_bytes()))
}

impl Link {
    /// A link that has not called yet, expecting calls every `interval`
    /// seconds, with `fallback_share` until it has seen the fleet.
    pub fn new(interval: f64, fallback_share: f64) -> Link {
        Link {
            state: Mutex::new(LinkState {
                id: new_id(),
                sent_at: f64::NAN,
                previous_sent: f64::NAN,
                spacing: if interval > 0.0 { interval } else { 1.0 },
                epoch: 0.0,
                degraded_since: None,
                degraded_seconds: 0.0,
                granted_at: f64::NAN,
                carry: 0.0,
                share: fallback_share,
                members: 0,
                syncs: 0,
                failures: 0,
                problem: None,
                repairs: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This process's member id in the fleet.
    pub fn id(&self) -> String {
        self.lock().id.clone()
    }

    /// The fleet state's identity seen last (0: never reached).
    pub fn epoch(&self) -> f64 {
        self.lock().epoch
    }

    /// A call is being sent at `mono`: returns the spacing between calls
    /// (what leases and requests are sized by).
    pub fn begin(&self, mono: f64) -> f64 {
        let mut s = self.lock();
        if s.previous_sent.is_finite() && mono > s.previous_sent {
            // At most a day: the fleet scripts refuse lease deadlines beyond three of these.
            s.spacing = (mono - s.previous_sent).clamp(0.01, 86_400.0);
        }
        s.previous_sent = mono;
        s.sent_at = mono;
        s.spacing
    }

    /// Seconds between this member's steps, as last measured.
    pub fn spacing(&self) -> f64 {
        self.lock().spacing
    }

    /// Server-side lease time for the call in flight, in milliseconds.
    pub fn server_lease_ms(&self) -> u64 {
        (SERVER_LEASE * self.lock().spacing * 1000.0).max(1000.0) as u64
    }

    /// The monotonic deadline of a lease granted by the call in flight.
    pub fn lease_deadline(&self) -> f64 {
        let s = self.lock();
        s.sent_at + LOCAL_LEASE * s.spacing
    }

    /// The call succeeded at `mono`: back from any fallback, with the share
    /// to fall back to next time, the members seen and the fleet's epoch.
    pub fn succeeded(&self, mono: f64, share: f64, members: u64, epoch: f64) {
        let mut s = self.lock();
        if let Some(since) = s.degraded_since.take() {
            s.degraded_seconds += (mono - since).max(0.0);
        }
        if share.is_finite() && share > 0.0 {
            s.share = share.min(1.0);
        }
        s.members = members;
        s.epoch = epoch;
        s.syncs += 1;
        s.problem = None;
    }

    /// The call failed (Redis unreachable, paused, or answering unexpected
    /// data). While `lease` is valid it is spent; after that the stage takes
    /// its share of the allowance: `share * burst` at once, then `share *
    /// per_second` for each second. Returns whether the stage is degraded.
    pub fn failed(&self, lease: &Lease, mono: f64, per_second: f64, burst: f64, reason: String) -> bool {
        let mut s = self.lock();
        s.failures += 1;
        s.problem = Some(reason);
        if s.degraded_since.is_none() && lease.valid(mono) {
            return false;
        }
        let grant = match s.degraded_since {
            None => {
                s.degraded_since = Some(mono);
                s.granted_at = mono;
                s.carry = 0.0;
                s.share * burst
            }
            Some(_) => s.share * per_second * (mono - s.granted_at).max(0.0),
        };
        s.granted_at = mono;
        let total = s.carry + grant;
        s.carry = total.fract();
        lease.extend(total.trunc() as u64, mono + 2.0 * LOCAL_LEASE * s.spacing);
        true
    }

    /// The script found `count` invalid values in Redis (repaired or ignored).
    pub fn repaired(&self, count: u64) {
        if count > 0 {
            self.lock().repairs += count;
        }
    }

    /// A forked child is a new member: its own id, nothing leased.
    pub fn after_fork(&self, lease: &Lease) {
        let mut s = self.lock();
        s.id = new_id();
        s.epoch = 0.0;
        lease.clear();
    }

    pub fn status(&self, lease: &Lease, mono: f64) -> FleetStatus {
        let s = self.lock();
        let running = s.degraded_since.map(|since| (mono - since).max(0.0)).unwrap_or(0.0);
        FleetStatus {
            syncs: s.syncs,
            failures: s.failures,
            degraded: s.degraded_since.is_some(),
            degraded_seconds: s.degraded_seconds + running,
            share: s.share,
            lease_left: lease.left(),
            lease_valid: lease.valid(mono),
            members: s.members,
            problem: s.problem.clone(),
            repairs: s.repairs,
        }
    }
}
