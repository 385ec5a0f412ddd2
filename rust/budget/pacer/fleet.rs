//! A pacer in a fleet: its budget is spent by processes on many hosts, each
//! spending a lease of it (`Lease`) that a worker renews through Redis.
//!
//! Each step reports what this process spent since the last one, its demand
//! (paced decisions per second at a pace of 1) and its latest floor slot; the
//! reply gives the fleet's count, the fleet's demand and the fleet's spans per
//! paced decision (which counts the spans that kept traces cause in other
//! services), so the pace here is set from the whole fleet.

use std::sync::atomic::{AtomicU64, Ordering::*};

use super::{Admit, Pacer};
use crate::cells::AtomicF64;
use crate::clock::Moment;
use crate::store::fleet::{count, parse_reply, FleetSettings, FleetStatus, Lease, Link, Member, Request, MIN_REQUEST};

/// A request covers this many spacings between steps of this process's spend.
const HORIZON: f64 = 3.0;
/// Steps a member waits into a floor slot that is another member's to keep.
const FLOOR_GRACE_STEPS: f64 = 10.0;
/// Before its first estimate, a process asks for this fraction of the burst.
const COLD_START_SHARE: f64 = 4.0;
/// The budget's hash outlives its period by a day (late reporters of a period
/// that just ended still find it).
const KEEP_AFTER_PERIOD: f64 = 86_400.0;

/// The fleet half of a pacer: the lease and what the worker learnt.
#[derive(Debug)]
pub struct PacerFleet {
    key_prefix: String,
    settings: String,
    pub(super) lease: Lease,
    link: Link,
    /// Fleet spans per second at a pace of 1 (0: not known yet).
    pub(super) demand: AtomicF64,
    /// The fleet's spans per paced decision this period (1 until known).
    pub(super) spans_per_entry: AtomicF64,
    /// This member's place among the live members, and their number: the
    /// floor slots it keeps first (the others wait `floor_grace` into a slot).
    rank: AtomicU64,
    members: AtomicU64,
    floor_grace: AtomicF64,
    /// Paced and floor keeps this period: kept roots, which the fleet divides its spans by.
    pub(super) entries: AtomicU64,
    /// Of `used` and `entries`, what the fleet has been told; and the period
    /// they count in.
    synced: AtomicU64,
    synced_entries: AtomicU64,
    period: AtomicF64,
    /// What the step in flight reported (used, entries, request).
    pending: [AtomicU64; 3],
}

impl PacerFleet {
    pub fn new(fleet: &FleetSettings, settings: String) -> PacerFleet {
        PacerFleet {
            key_prefix: fleet.key("budget"),
            settings,
            lease: Lease::default(),
            link: Link::new(fleet.interval, fleet.fallback_share),
            demand: AtomicF64::new(0.0),
            spans_per_entry: AtomicF64::new(1.0),
            rank: AtomicU64::new(0),
            members: AtomicU64::new(1),
            floor_grace: AtomicF64::new(0.0),
            entries: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            synced_entries: AtomicU64::new(0),
            period: AtomicF64::new(f64::NAN),
            pending: Default::default(),
        }
    }
}

/// Kinds of keep that spend a lease: the decisions that start what the
/// budget pays for (paced keeps, capped keep rules). Not the children of kept
/// traces: their roots were leased and paced for the spans they cause in every
/// service, and a lease running dry must not cut a kept trace in two; they
/// are checked against the fleet's count as last heard, plus the children's
/// headroom. Not the floor either: one keep per process and slot, so no hour
/// goes blind.
#[inline]
pub(super) fn leased(kind: Admit, cap_forced: bool) -> bool {
    match kind {
        Admit::Entry => true,
        Admit::Forced => cap_forced,
        Admit::Child | Admit::Floor => false,
    }
}

impl Pacer {
    /// The local count restarted from zero (a restore, a carry-over, a new
    /// period): nothing of it has been reported.
    pub(super) fn fleet_recount(&self) {
        if let Some(fleet) = &self.fleet {
            fleet.synced.store(0, Release);
            fleet.synced_entries.store(0, Release);
            fleet.entries.store(0, Release);
        }
    }
}

impl PacerFleet {
    /// Whether this member may keep floor slot `slot`, `into` seconds into it:
    /// at once in its own slots (one member in turn), else after the grace, so
    /// a fleet keeps about one floor span a slot, not one per member.
    #[inline]
    pub(super) fn floor_turn(&self, slot: u64, into: f64) -> bool {
        slot % self.members.load(Relaxed).max(1) == self.rank.load(Relaxed) || into >= self.floor_grace.get()
    }
}

impl Pacer {
    /// The fleet's settings, for a fleet pacer.
    pub fn fleet_settings(&self) -> Option<&FleetSettings> {
        self.store.fleet()
    }
}

impl Pacer {
    /// The script call that reads the fleet's count of this period and the
    /// leases held, writing nothing (for `tracesieve check`); None outside a fleet.
    pub fn fleet_read_request(&self) -> Option<Request> {
        let fleet = self.fleet.as_ref()?;
        Some(Request {
            script: "budget_read",
            keys: vec![format!("{}:{:.0}", fleet.key_prefix, self.s.period_start.get())],
            args: vec![fleet.settings.clone(), self.budget.to_string()],
        })
    }
}

impl Member for Pacer {
    fn fleet_request(&self, now: &Moment) -> Option<Request> {
        let fleet = self.fleet.as_ref()?;
        self.maybe_update(now);
        let mono = now.monotonic();
        let s = &self.s;
        let period = s.period_start.get();
        if fleet.period.get() != period {
            // A new period: the old lease and counts were the old period's.
            fleet.period.set(period);
            fleet.lease.clear();
            if fleet.synced.load(Acquire) > s.used.load(Acquire) {
                self.fleet_recount();
            }
        }
        // The lease before the count: a span spent in between is then counted
        // twice (held and spent) rather than not at all.
        let held = fleet.lease.left();
        let used = s.used.load(Acquire);
        let entries = fleet.entries.load(Acquire);
        let synced = fleet.synced.load(Acquire).min(used);
        let spacing = fleet.link.begin(mono);
        // Enough for a few steps at the expected spend; before any estimate, a
        // share of the burst (the fleet's room caps every grant anyway).
        let rate = s.spend_rate.get().max(s.demand_rate.get() * s.pace.get());
        let expected = if rate > 0.0 { rate * HORIZON * spacing } else { self.burst / COLD_START_SHARE };
        let request = expected.max(MIN_REQUEST).min(self.budget as f64).ceil();
        fleet.pending[0].store(used, Release);
        fleet.pending[1].store(entries, Release);
        fleet.pending[2].store(request as u64, Release);
        // What leases may fill: the line and its burst, less what stays reserved
        // for the floor (one keep in a slot nobody in the fleet kept in: the
        // fleet shares its last kept slot) and every member's keep rules.
        let members = fleet.link.status(&fleet.lease, mono).members.max(1) as f64;
        let reserve = self.floor_ahead(mono) * self.trace_spans() + members * self.forced_ahead(mono);
        // The children's headroom stays free at the period's end too: the
        // floor's room for the last hours, which the leases fill first.
        let ceiling = (self.allowed(mono) + self.burst()).min(self.budget as f64 - reserve - self.child_headroom);
        let demand = s.demand_rate.get() / s.spans_per_entry.get().max(1.0);
        let keep = (s.period_end.get() - self.wall.wall(mono)).max(0.0) + KEEP_AFTER_PERIOD;
        Some(Request {
            script: "budget",
            keys: vec![format!("{}:{:.0}", fleet.key_prefix, period)],
            args: vec![
                fleet.settings.clone(),
                fleet.link.id(),
                format!("{:.0}", fleet.link.epoch()),
                (s.assumed.load(Acquire) + synced).to_string(),
                (used - synced).to_string(),
                entries.saturating_sub(fleet.synced_entries.load(Acquire)).to_string(),
                held.to_string(),
                format!("{request}"),
                format!("{ceiling:.3}"),
                format!("{demand:.6}"),
                s.last_kept_slot.load(Acquire).to_string(),
                fleet.link.server_lease_ms().to_string(),
                format!("{:.0}", keep * 1000.0),
                self.budget.to_string(),
            ],
        })
    }

    /// The fleet's reply to the step in flight. An unexpected reply is an error,
    /// and the caller treats it as a failed step.
    fn fleet_reply(&self, reply: &[String], now: &Moment) -> Result<(), String> {
        let Some(fleet) = &self.fleet else { return Ok(()) };
        let mono = now.monotonic();
        let numbers = parse_reply(reply, 9, &fleet.link)?;
        let request = fleet.pending[2].load(Acquire) as f64;
        let grant = count(numbers[0], request, "the grant")?;
        let fleet_used = count(numbers[1].round(), 1e15, "the fleet's count")?;
        let epoch = numbers[2];
        let members = count(numbers[3], 1e6, "the member count")?.max(1);
        let (fleet_demand, spans, entries) = (numbers[4], numbers[5], numbers[6]);
        let slot = count(numbers[7], 1e9, "the floor slot")?;
        let rank = count(numbers[8], members as f64 - 1.0, "the member's rank")?;
        if fleet_demand < 0.0 || spans < 0.0 || entries < 0.0 || epoch <= 0.0 {
            return Err("negative fleet figures".into());
        }
        let s = &self.s;
        let reported = fleet.pending[0].load(Acquire);
        fleet.synced.store(reported, Release);
        fleet.synced_entries.store(fleet.pending[1].load(Acquire), Release);
        // total_used() = the fleet's count + what this process spent since.
        s.assumed.store(fleet_used.saturating_sub(reported), Release);
        fleet.lease.extend(grant, fleet.link.lease_deadline());
        s.last_kept_slot.fetch_max(slot, AcqRel);
        let spans_per_entry = if entries > 0.0 { (spans / entries).max(1.0) } else { 1.0 };
        fleet.demand.set(fleet_demand * spans_per_entry);
        fleet.spans_per_entry.set(spans_per_entry);
        fleet.rank.store(rank, Release);
        fleet.members.store(members, Release);
        // Others hear of a floor keep within a step or two: wait that long
        // (and at most half a slot) before keeping a slot that is not ours.
        let spacing = fleet.link.spacing();
        fleet.floor_grace.set((FLOOR_GRACE_STEPS * spacing).min(0.5 * s.slot_length.get()));
        let own = s.demand_rate.get() / s.spans_per_entry.get().max(1.0);
        let share = if fleet_demand > 0.0 && own > 0.0 { own / fleet_demand } else { 1.0 / members as f64 };
        fleet.link.succeeded(mono, share, members, epoch);
        Ok(())
    }

    /// The step failed: spend the lease while valid, then this process's share.
    fn fleet_failed(&self, now: &Moment, reason: String) {
        let Some(fleet) = &self.fleet else { return };
        let burst = self.burst();
        let slope = self.s.line_slope.get().max(0.0);
        fleet.link.failed(&fleet.lease, now.monotonic(), slope, burst, reason);
    }

    /// In a forked child: a new member with no lease, whose spending so far
    /// is the parent's to report.
    fn fleet_after_fork(&self) {
        if let Some(fleet) = &self.fleet {
            fleet.link.after_fork(&fleet.lease);
            fleet.synced.store(self.s.used.load(Acquire), Release);
            fleet.synced_entries.store(fleet.entries.load(Acquire), Release);
        }
    }

    fn fleet_status(&self, now: &Moment) -> Option<FleetStatus> {
        self.fleet.as_ref().map(|fleet| fleet.link.status(&fleet.lease, now.monotonic()))
    }
}
