//! The pacing state machine, all atomics.
//!
//! Two mechanisms, one for the bill and one for the view:
//!
//! - **The spend line** is a hard ceiling: spans counted this period never
//!   exceed the line plus a small burst. The line rises from what was spent
//!   when accounting began (zero at a period's start; the restored count after
//!   a restart; the calendar's share when a process starts mid-period knowing
//!   nothing) to the whole budget at the period's end, over monotonic time, so
//!   no cold start, restart, reload or wall-clock jump can spend faster than
//!   the calendar allows.
//! - **The pace** keeps spending near the line without touching it: each
//!   interval re-estimates full demand (the spans per second it would keep at
//!   a pace of 1) and sets pace = allowance / demand, allowance being the
//!   remaining budget less what keep rules and the visibility floor are
//!   expected to spend, over the remaining time. Near the line the pace eases
//!   off with the burst still free, so a keep is almost never refused after
//!   its draw (a refused keep would bias what its `th` claims).
//! - **The trickle**: at the limit the head sample does not pause while tail
//!   keeps or keep rules are what ran the count ahead of the line. It keeps
//!   with the lower of the pace and the chance that gives one span a floor
//!   slot, paid from the room those keeps made (one span short of it, for the
//!   floor) and never from what is reserved, so every paced decision keeps a
//!   probability above 0 and estimates stay unbiased (a pause left the
//!   decisions it covered with nothing kept to stand for them: about 1% of
//!   traces at ten times the budget's demand).
//!
//! A visibility floor keeps the first span of every clock hour (or, for a
//! budget smaller than the period's hours, of every even share of the period)
//! in which nothing else was kept, so no hour goes blind whenever the budget
//! covers one span an hour. Its keeps carry no threshold: they are no
//! probability sample, and estimates leave them out.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};

use super::period::{Bounds, Calendar};
use super::settings::{budgets_in, BudgetSettings};
use super::wall::{WallTracker, TOLERANCE};
use crate::cells::AtomicF64;
use crate::clock::Moment;
use crate::config::ConfigError;
use crate::store::{words_of, Origin, Plain, Shared, Store};

mod fleet;
mod reserve;
mod starts;
pub use fleet::PacerFleet;

/// Demand sums are kept in fixed point (probabilities times 2^24).
const FIXED: f64 = (1u64 << 24) as f64;
/// Expected decisions an interval wants before it re-estimates early.
const ENOUGH_DEMAND: f64 = 64.0;
/// Smoothing of the estimates (weight of the newest interval).
const SMOOTHING: f64 = 0.5;
/// Until the first estimate, re-estimate this often (seconds): a cold start
/// learns its demand in half a second instead of a minute.
const WARM_UP: f64 = 0.5;
/// Seconds a re-estimate may hold its lease (a holder that died releases it then).
const LEASE: f64 = 5.0;
/// The burst is the budget of this fraction of the period (an hour of a
/// 30-day month), and at least `MIN_BURST` spans (or a tenth of a small budget).
const BURST_FRACTION: f64 = 1.0 / 720.0;
const MIN_BURST: f64 = 8.0;
/// Children of kept traces may go this far above the line, at most (and at
/// least one span): their share is held back from new traces near the end.
const CHILD_FRACTION: f64 = 0.01;
/// A process that starts mid-period with no record of what was spent may
/// spend at once what the even pace spends in this many seconds (its start
/// allowance), then what the line grants: each such start can overshoot the
/// calendar by its allowance at most, and no hour goes blind.
pub const START_SECONDS: f64 = 30.0;
/// Seconds after a budget's first start (or a period's) during which a short
/// burst is kept whole while more than half the burst is free.
const FRESH: f64 = 3600.0;
/// Spans the trickle is expected to keep per floor slot at the limit.
const TRICKLE_PER_SLOT: f64 = 1.0;

/// What a reservation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// A decision the pacer paced: a root span, or (downstream pacing) a span
    /// whose sampled parent is in another service. Past the line's limit it
    /// is admitted as the trickle's keep.
    Entry,
    /// A child following a kept parent in this process.
    Child,
    /// A keep rule's decision.
    Forced,
    /// The visibility floor's keep.
    Floor,
}

/// Why a tail stage keeps a trace, for what it may spend of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailClass {
    Error = 0,
    Latency = 1,
    Rule = 2,
}

impl TailClass {
    pub const ALL: [TailClass; 3] = [TailClass::Error, TailClass::Latency, TailClass::Rule];

    pub fn name(self) -> &'static str {
        match self {
            TailClass::Error => "error",
            TailClass::Latency => "latency",
            TailClass::Rule => "rule",
        }
    }

    pub fn parse(name: &str) -> Option<TailClass> {
        TailClass::ALL.into_iter().find(|class| class.name() == name)
    }
}

/// How tail keeps spend a budget: which comes first when the allowance is
/// short (a lower class never takes what the classes above it are expected
/// to need), and which are kept whatever the budget says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailPolicy {
    /// First is most important; the head sample comes after all of them.
    pub order: [TailClass; 3],
    pub exempt: [bool; 3],
}

impl Default for TailPolicy {
    fn default() -> Self {
        TailPolicy { order: TailClass::ALL, exempt: [false; 3] }
    }
}

/// What the budget does with spans whose sampled parent is in another service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downstream {
    /// Pace them consistently: keep iff the randomness clears both the parent's
    /// threshold and the budget's (the default: a service under budget keeps a
    /// consistent subset of its callers' traces and never goes blind).
    Pace,
    /// Follow the parent until the budget is spent (whole traces over coverage).
    Follow,
}

impl Downstream {
    pub fn parse(name: &str) -> Result<Downstream, String> {
        match name {
            "pace" => Ok(Downstream::Pace),
            "follow" => Ok(Downstream::Follow),
            other => Err(format!(
                "unknown mode {}; expected \"pace\" (consistent subset) or \"follow\" (the parent's decision)",
                crate::words::quoted(other)
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Downstream::Pace => "pace",
            Downstream::Follow => "follow",
        }
    }
}

/// The mutable state, all atomics, so it can live wherever a store puts it
/// (this process's heap, or a file every process on the host maps).
#[derive(Debug, Default)]
#[repr(C)]
pub struct PacerState {
    period_start: AtomicF64,
    period_end: AtomicF64,
    /// Monotonic time at which the period ends (where the line reaches the budget).
    mono_end: AtomicF64,
    /// The spend line: allowed(m) = base + slope * m.
    line_base: AtomicF64,
    line_slope: AtomicF64,
    /// Spans counted this period, and spans assumed spent before counting began.
    used: AtomicU64,
    assumed: AtomicU64,
    /// Spans refused this period (the head's and the tail's).
    refused: AtomicU64,
    /// Monotonic deadline of the re-estimate in progress (0: none).
    lease: AtomicF64,
    interval_start: AtomicF64,
    demand: AtomicU64,
    kept_entries: AtomicU64,
    used_at_interval_start: AtomicU64,
    /// Keep-rule keeps this interval: spending the pace does not control.
    forced: AtomicU64,
    pace: AtomicF64,
    demand_rate: AtomicF64,
    spans_per_entry: AtomicF64,
    spend_rate: AtomicF64,
    forced_rate: AtomicF64,
    /// Whether the demand has been estimated at least once.
    estimated: AtomicU64,
    /// Floor slots: their length and the monotonic time slot 0 starts.
    slot_length: AtomicF64,
    slot_origin: AtomicF64,
    /// 1 + the slot of the last paced or floor keep (0: none this period).
    last_kept_slot: AtomicU64,
    /// Since accounting of this period began here: when, in which slot, and
    /// the keep-rule and floor keeps.
    counting_since: AtomicF64,
    first_slot: AtomicU64,
    period_forced: AtomicU64,
    period_floor: AtomicU64,
    /// What paced keeps may bring the count to: the budget less what is
    /// reserved (refreshed with the pace, as the reserve changes slowly).
    entry_cap: AtomicF64,
    /// The trusted wall time of the last update (what a reboot's restore dates
    /// the count by).
    wall_seen: AtomicF64,
    /// A start with no record: what it may spend at once (0: the start was known).
    start_allowance: AtomicF64,
    /// Until when (monotonic) a short burst is kept whole rather than paced:
    /// the first hour of a start with no record, a first start or a new period.
    fresh_until: AtomicF64,
    /// Tail keeps per class: spans this interval and this period, their
    /// recent rate, and spans refused.
    tail_interval: [AtomicU64; 3],
    period_tail: [AtomicU64; 3],
    tail_rate: [AtomicF64; 3],
    tail_refused: [AtomicU64; 3],
    /// Moving sums decaying over two horizons (two days in a month): seconds,
    /// keep-rule spans and tail spans per class, each interval's spans capped
    /// by `STORM_FACTOR`. Their rates are the last days' typical ones, which a
    /// storm hardly moves, where the period's average keeps it for weeks.
    day_seconds: AtomicF64,
    day_forced: AtomicF64,
    day_tail: [AtomicF64; 3],
    /// Paced decisions this interval, and the average probability they came
    /// with (what the trickle's probability is scaled by).
    decisions: AtomicU64,
    mean_inner: AtomicF64,
}

// SAFETY: repr(C), 8-byte atomics only, all-zero is a valid (empty) state.
unsafe impl Plain for PacerState {}

/// Pacing estimates carried across restarts and reloads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimates {
    pub pace: f64,
    pub demand_rate: f64,
    pub spans_per_entry: f64,
    pub forced_rate: f64,
}

/// What a state file keeps of a pacer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub period_start: f64,
    /// Spans counted against this period's budget (assumed ones included).
    pub used: u64,
    pub estimates: Option<Estimates>,
    /// Wall time of the snapshot.
    pub saved_at: f64,
}

#[derive(Debug)]
pub struct Pacer {
    calendar: Calendar,
    budget: u64,
    /// Whether forced keeps (keep rules) are refused once the budget is spent.
    cap_forced: bool,
    downstream: Downstream,
    /// Headroom over the line for paced and floor keeps, and extra for children.
    burst: f64,
    /// What floor keeps may bring the count to: the budget and the children's
    /// headroom (the last hours must not go blind).
    floor_cap: f64,
    child_headroom: f64,
    min_interval: f64,
    max_interval: f64,
    wall: WallTracker,
    s: Shared<PacerState>,
    /// Whether this process made the state (a local store, or the first to
    /// open a shared piece): only then may a state file or a replaced pacer
    /// set its count.
    made_here: bool,
    /// Whether the state lives in a file shared by the host's processes.
    shared: bool,
    /// The other budgets a host record held when this process made this
    /// budget's piece in it: a restart with changed settings counts afresh,
    /// which the service is told (emptied when a reload or a state file
    /// carries a count over after all).
    begun_beside: Mutex<Vec<BudgetSettings>>,
    store: Arc<Store>,
    /// In a Redis fleet: the lease this process spends and its link to the fleet.
    fleet: Option<PacerFleet>,
    /// Paced decisions given probability 0, in this process (the head at its
    /// limit with no room for the trickle, or a reserve that leaves it
    /// nothing): no kept span stands for them, so estimates from kept spans
    /// cannot count them.
    at_zero: AtomicU64,
    /// Keeps the trickle made past the line's limit, in this process.
    trickled: AtomicU64,
    /// Spans refused by this process's decisions (a counter: the state's
    /// count is the period's, every process's).
    refused_here: AtomicU64,
}

/// A consistent view for `budget_status()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    pub budget: u64,
    /// Spans counted this period, assumed ones included.
    pub used: u64,
    /// Of `used`, spans assumed spent before this process began counting.
    pub assumed: u64,
    pub refused: u64,
    /// The pace in force now: the estimate, eased near the line (the trickle
    /// at its limit), as the next paced decision would get it.
    pub pace: f64,
    pub period: Bounds,
    /// Spans per second recently kept.
    pub spend_rate: f64,
    /// Estimated spans per second at a pace of 1.
    pub demand_rate: f64,
    pub projected: f64,
    /// What the line allows now, burst excluded.
    pub allowed: f64,
    pub burst: f64,
    /// Floor keeps this period counted here.
    pub floor: u64,
    /// Keep-rule keeps this period, and whether the budget refuses them once
    /// spent (if not, they are what can take the count past it).
    pub forced: u64,
    pub caps_forced: bool,
    /// What a start with no record could spend at once (0: the start was known).
    pub start_allowance: f64,
    /// Per tail class (error, latency, rule): spans kept and refused this period.
    pub tail_kept: [u64; 3],
    pub tail_refused: [u64; 3],
    /// Paced decisions given probability 0, in this process.
    pub at_zero: u64,
    /// Keeps the trickle made past the line's limit, in this process.
    pub trickled: u64,
}

impl Pacer {
    /// A pacer whose accounting starts now. Mid-period, with nothing known of
    /// what was spent before, it assumes the calendar's share was.
    pub fn new(calendar: Calendar, budget: u64, cap_forced: bool, downstream: Downstream, now: &Moment) -> Result<Pacer, ConfigError> {
        Pacer::in_store(&Arc::new(Store::local()), calendar, budget, cap_forced, downstream, now)
    }

    /// A pacer whose state lives in `store`: made afresh when this process is
    /// the first to name it, else the state other processes are already
    /// pacing with (one budget for all of them).
    pub fn in_store(
        store: &Arc<Store>,
        calendar: Calendar,
        budget: u64,
        cap_forced: bool,
        downstream: Downstream,
        now: &Moment,
    ) -> Result<Pacer, ConfigError> {
        if budget == 0 {
            return Err(ConfigError::new("budget", "0 spans; expected a budget of at least one span"));
        }
        // One bad reading moves nothing, at a start too: it would place the whole period (a
        // reading of 1970 made the start believe a new period, with nothing spent, once the
        // clock read right again), so the start goes by a reading two agree on.
        let mut wall_now = now.settled_wall(TOLERANCE);
        if calendar.bounds(wall_now).is_none() {
            // Read again before refusing the clock.
            wall_now = now.reread_wall();
        }
        let mono = now.monotonic();
        let period = calendar
            .bounds(wall_now)
            .ok_or_else(|| ConfigError::new("clock", format!("{} is not a usable Unix time", crate::words::plain(wall_now))))?;
        let length = period.length();
        let spans = budget as f64;
        let burst = (spans * BURST_FRACTION).max(MIN_BURST.min(spans / 10.0));
        let settings = BudgetSettings {
            budget,
            period: calendar.kind.name().to_owned(),
            timezone: calendar.zone_name.clone(),
            cap_forced,
            downstream: downstream.name().to_owned(),
        };
        let placement = store.place("budget", &settings.piece_text(), words_of::<PacerState>())?;
        let fleet = store.fleet().map(|fleet| PacerFleet::new(fleet, settings.text()));
        let origin = placement.origin;
        let mut pacer = Pacer {
            calendar,
            budget,
            cap_forced,
            downstream,
            burst,
            child_headroom: burst.min(spans * CHILD_FRACTION).max(1.0).min((spans - 1.0).max(0.0)),
            floor_cap: spans,
            min_interval: (length / 10_000.0).clamp(0.5, 60.0),
            max_interval: (length / 200.0).max(1.0),
            wall: WallTracker::new(wall_now, mono),
            s: placement.region.view(),
            made_here: origin != Origin::Attached,
            shared: placement.region.is_mapped(),
            begun_beside: Mutex::new(Vec::new()),
            store: store.clone(),
            fleet,
            at_zero: AtomicU64::new(0),
            trickled: AtomicU64::new(0),
            refused_here: AtomicU64::new(0),
        };
        // The floor may use the children's headroom at the period's end (a start
        // with no record there assumes the whole budget spent) and, in a fleet,
        // for the other members' last keeps, which it hears of a step late.
        pacer.floor_cap += pacer.child_headroom;
        match origin {
            // The first to count it in a shared file: nothing but the calendar's
            // share can have been spent (in a fleet, Redis's count replaces it).
            Origin::New => pacer.initialise(now, period, pacer.shared || pacer.fleet.is_some()),
            Origin::Attached => {}
            Origin::Rebooted => {
                // Monotonic times from before the boot mean nothing now; the
                // count and estimates carry over as from a state file.
                let saved = pacer.saved_state();
                placement.region.clear();
                pacer.initialise(now, period, true);
                pacer.restore(&saved, now);
            }
        }
        placement.ready()?;
        // Restores and carry-overs are for the state's maker, at its start only.
        pacer.made_here = origin == Origin::New;
        if pacer.made_here && pacer.shared && store.is_record() {
            *pacer.begun_beside.get_mut().unwrap_or_else(|p| p.into_inner()) =
                budgets_in(store).into_iter().filter(|other| *other != settings).collect();
        }
        Ok(pacer)
    }

    /// Whether the state is shared with other processes (a file store or a fleet).
    pub fn is_shared(&self) -> bool {
        (self.shared && !self.store.is_detached()) || self.fleet.is_some()
    }

    /// The other budgets the host record held when this process made this
    /// budget's piece there (none when it found the piece, or in another store).
    pub fn begun_beside(&self) -> Vec<BudgetSettings> {
        self.begun_beside.lock().map(|beside| beside.clone()).unwrap_or_default()
    }

    /// A count carried over after all (a reload, a state file): not afresh.
    pub(super) fn carried_over(&self) {
        if let Ok(mut beside) = self.begun_beside.lock() {
            beside.clear();
        }
    }

    /// The store its state was placed in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Spans over which the pace eases off towards the limit: the burst, or for
    /// a start with no record, its allowance and what the line granted since.
    #[inline]
    fn ease(&self, mono: f64) -> f64 {
        let allowance = self.s.start_allowance.get();
        if allowance <= 0.0 {
            return self.burst;
        }
        let granted = allowance + self.s.line_slope.get() * (mono - self.s.counting_since.get()).max(0.0);
        granted.clamp(1.0, self.burst.max(1.0))
    }

    /// The calendar's share of the budget at trusted wall time `wall`.
    fn even_share(&self, wall: f64) -> f64 {
        let (start, end) = (self.s.period_start.get(), self.s.period_end.get());
        self.budget as f64 * ((wall - start) / (end - start)).clamp(0.0, 1.0)
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    pub fn downstream(&self) -> Downstream {
        self.downstream
    }

    /// Whether keep-rule spans are refused once the budget is spent.
    pub fn caps_forced_keeps(&self) -> bool {
        self.cap_forced
    }

    /// The pace the last update set, before easing near the limit.
    pub fn current_pace(&self) -> f64 {
        self.s.pace.get()
    }

    /// Spans the line allows above itself: the documented burst (entries and
    /// floor keeps, plus the children of kept traces).
    pub fn burst(&self) -> f64 {
        self.burst + self.child_headroom
    }

    pub fn period(&self) -> Bounds {
        Bounds { start: self.s.period_start.get(), end: self.s.period_end.get() }
    }

    fn total_used(&self) -> u64 {
        self.s.used.load(Acquire) + self.s.assumed.load(Acquire)
    }

    /// Begin counting a period at (`wall`, `mono`): `spent` spans counted
    /// already, the line starting at `allowed`.
    fn start_period(&self, period: Bounds, wall: f64, mono: f64, spent: u64, allowed: f64) {
        let s = &self.s;
        s.period_start.set(period.start);
        s.assumed.store(spent, Release);
        s.used.store(0, Release);
        self.fleet_recount();
        s.used_at_interval_start.store(0, Release);
        s.kept_entries.store(0, Release);
        s.last_kept_slot.store(0, Release);
        let end = mono + (period.end - wall).max(0.0);
        s.mono_end.set(end);
        s.slot_length.set(slot_length(period.length(), self.budget));
        s.slot_origin.set(end - period.length());
        s.counting_since.set(mono);
        s.first_slot.store(self.slot(mono), Release);
        s.period_forced.store(0, Release);
        s.period_floor.store(0, Release);
        s.refused.store(0, Release);
        s.start_allowance.set(0.0);
        for class in 0..3 {
            s.tail_interval[class].store(0, Release);
            s.period_tail[class].store(0, Release);
            s.tail_refused[class].store(0, Release);
        }
        self.anchor_line(mono, allowed, end);
        // Last: a process killed before this line leaves the old period's end,
        // so the next update starts the period again.
        s.period_end.set(period.end);
        s.entry_cap.set(self.budget as f64 - self.reserved(mono));
    }

    /// The line from `allowed` at `mono` to the whole budget at `end`.
    fn anchor_line(&self, mono: f64, allowed: f64, end: f64) {
        let allowed = allowed.min(self.budget as f64);
        let slope = (self.budget as f64 - allowed) / (end - mono).max(1e-3);
        self.s.line_slope.set(slope);
        self.s.line_base.set(allowed - slope * mono);
    }

    /// What the line allows at monotonic time `mono` (capped at the budget).
    #[inline]
    fn allowed(&self, mono: f64) -> f64 {
        (self.s.line_base.get() + self.s.line_slope.get() * mono).min(self.budget as f64)
    }

    /// The pacing multiplier for a paced decision, which the caller multiplies
    /// into the probability `inner` it had so far.
    #[inline]
    pub fn pace(&self, now: &Moment, inner: f64) -> f64 {
        self.maybe_update(now);
        self.s.demand.fetch_add((inner.clamp(0.0, 1.0) * FIXED) as u64, Relaxed);
        if inner > 0.0 {
            self.s.decisions.fetch_add(1, Relaxed);
        }
        let multiplier = self.multiplier_for(now.monotonic(), inner);
        if multiplier <= 0.0 && inner > 0.0 {
            self.at_zero.fetch_add(1, Relaxed);
        }
        multiplier
    }

    /// The multiplier a paced decision of average probability gets at `mono`.
    pub fn multiplier_at(&self, mono: f64) -> f64 {
        self.multiplier_for(mono, self.mean_inner())
    }

    /// What `explain` shows for a paced decision at `now` whose probability so
    /// far is `inner`: the multiplier from the state as it stands, or, once the
    /// wall clock is past the period the state counts (a service idle since),
    /// a new period's first decision's, which that decision would start: 1.
    pub fn explained_multiplier(&self, now: &Moment, inner: f64) -> f64 {
        if self.next_period(now).is_some() {
            return 1.0;
        }
        self.multiplier_for(now.monotonic(), inner)
    }

    /// The period the next update starts with nothing of it spent, when time
    /// has passed the end of the one the state counts (a service idle since);
    /// None while that period runs.
    fn next_period(&self, now: &Moment) -> Option<Bounds> {
        let s = &self.s;
        let (end, wall) = (s.period_end.get(), now.wall());
        if end <= 0.0 || wall < end || now.monotonic() + TOLERANCE < s.mono_end.get() {
            return None;
        }
        self.calendar.bounds(wall)
    }

    /// The multiplier a paced decision at `mono` whose probability so far is
    /// `inner` gets from the state as it stands, easing included (what
    /// `explain` shows; `pace` first updates the state and counts the demand).
    #[inline]
    pub fn multiplier_for(&self, mono: f64, inner: f64) -> f64 {
        let free = self.free(mono);
        // Near the limit the pace eases off (to the trickle at the limit), so
        // keeps are not refused after their draw: a refused keep is missing
        // from the sample its `th` describes.
        let room = free.clamp(0.0, 1.0);
        let pace = self.s.pace.get();
        let eased = if mono >= self.s.fresh_until.get() {
            pace * room
        } else {
            // In the first hour of a start that restored nothing, a short burst is
            // kept whole while more than half of the burst above the line (or of a
            // start allowance) is free, rather than paced as if it would last.
            let spare = (2.0 * free - 1.0).clamp(0.0, 1.0);
            room * (pace + (1.0 - pace) * spare)
        };
        if room >= 1.0 {
            return eased;
        }
        eased.max(self.trickle(mono, pace, inner))
    }

    /// The trickle's multiplier at `mono` for a decision of probability
    /// `inner`: the one probability for every decision that keeps a span a
    /// floor slot (or `inner`, when that is lower), or the pace when that is
    /// lower still, while the room above the line holds one more span besides
    /// the floor's (0 when it does not, or before demand is known). One
    /// probability, rather than a share of each: a route its rules sample at
    /// 1% would otherwise be kept a hundred times less often, and each such
    /// keep would stand for a hundred times more requests.
    #[inline]
    fn trickle(&self, mono: f64, pace: f64, inner: f64) -> f64 {
        let demand = self.demand_rate();
        if demand <= 0.0 || inner <= 0.0 || self.total_used() as f64 + 1.0 > self.trickle_limit(mono) {
            return 0.0;
        }
        let probability = TRICKLE_PER_SLOT * self.mean_inner() / (demand * self.s.slot_length.get());
        let chance = (probability / inner).min(1.0);
        // Until the period's own record is trusted (a day, or a quarter of a
        // shorter period), a pace of 0 can be the reserve extrapolating a few
        // hours' rates (the first day's peak can project more keep-rule and
        // tail spans than the whole budget): the trickle goes on at its
        // chance, at most a span a slot meanwhile, from what the floor's
        // reserve leaves.
        if self.record_weight(mono) < 1.0 {
            chance
        } else {
            pace.min(chance)
        }
    }

    /// The average probability paced decisions come with (1 until measured).
    #[inline]
    fn mean_inner(&self) -> f64 {
        let mean = self.s.mean_inner.get();
        if mean > 0.0 {
            mean.min(1.0)
        } else {
            1.0
        }
    }

    /// Spans per second at a pace of 1: the fleet's, in a fleet that has said.
    #[inline]
    fn demand_rate(&self) -> f64 {
        let fleet_demand = self.fleet.as_ref().map_or(0.0, |f| f.demand.get());
        if fleet_demand > 0.0 {
            fleet_demand
        } else {
            self.s.demand_rate.get()
        }
    }

    /// What paced keeps may bring the count to: the line and its burst, and
    /// never what is reserved.
    #[inline]
    fn line_limit(&self, mono: f64) -> f64 {
        (self.allowed(mono) + self.burst).min(self.s.entry_cap.get())
    }

    /// What the trickle may bring the count to: the room that tail keeps and
    /// keep rules made above the line, less one span for the floor's next keep
    /// (so the trickle never leaves an hour blind), and never what is reserved
    /// (until the period's record is trusted, never what is reserved for the
    /// floor).
    #[inline]
    fn trickle_limit(&self, mono: f64) -> f64 {
        let room = self.allowed(mono) + self.burst + self.run_ahead() - 1.0;
        if self.total_used() as f64 >= room {
            // No room above the line (a start with no record at its limit):
            // the reserve, dearer to work out, need not be.
            return room;
        }
        let reserve = if self.record_weight(mono) < 1.0 {
            // The floor's reserve still holds (a small budget is mostly floor).
            self.budget as f64 - self.child_headroom - self.floor_ahead(mono) * self.trace_spans()
        } else {
            self.s.entry_cap.get()
        };
        room.min(reserve)
    }

    /// Spans kept this period that the line does not pace and that may run
    /// ahead of it: tail keeps (an error storm) and keep rules.
    #[inline]
    fn run_ahead(&self) -> f64 {
        self.tail_this_period() + self.s.period_forced.load(Relaxed) as f64
    }

    /// How much of the burst above the line is still free, in bursts (or,
    /// for a start with no record, in what it has been granted).
    #[inline]
    fn free(&self, mono: f64) -> f64 {
        (self.line_limit(mono) - self.total_used() as f64) / self.ease(mono)
    }

    /// True when nothing was kept in the current floor slot while budget
    /// remains: a span not kept otherwise is then kept by the floor.
    #[inline]
    pub fn floor_due(&self, mono: f64) -> bool {
        let slot = self.slot(mono);
        slot + 1 > self.s.last_kept_slot.load(Relaxed)
            && (self.total_used() as f64) < self.floor_cap
            && self.fleet.as_ref().is_none_or(|fleet| {
                let into = mono - self.s.slot_origin.get() - slot as f64 * self.s.slot_length.get();
                fleet.floor_turn(slot, into)
            })
    }

    /// Admit a trace a tail stage keeps for `class`: its `spans` spans (not
    /// counted by the head), all or none. A class may bring the count to the
    /// budget less what the classes before it in `policy` are expected to
    /// need; an exempt class is always admitted (and counted). Refusals are
    /// counted per class.
    pub fn admit_tail(&self, policy: &TailPolicy, class: TailClass, spans: u64, mono: f64) -> bool {
        let i = class as usize;
        let limit = if policy.exempt[i] {
            f64::INFINITY
        } else {
            let before: f64 = policy
                .order
                .iter()
                .take_while(|c| **c != class)
                .filter(|c| !policy.exempt[**c as usize])
                .map(|c| self.tail_ahead_with_surge(*c, mono))
                .sum();
            self.budget as f64 - before
        };
        let assumed = self.s.assumed.load(Acquire);
        let mut used = self.s.used.load(Acquire);
        loop {
            if (used + assumed + spans) as f64 > limit {
                self.s.tail_refused[i].fetch_add(spans, Relaxed);
                self.count_refused(spans);
                return false;
            }
            match self.s.used.compare_exchange_weak(used, used + spans, AcqRel, Acquire) {
                Ok(_) => break,
                Err(seen) => used = seen,
            }
        }
        self.s.tail_interval[i].fetch_add(spans, Relaxed);
        self.s.period_tail[i].fetch_add(spans, Relaxed);
        // A kept trace covers its slot: no floor keep is needed there.
        self.s.last_kept_slot.fetch_max(self.slot(mono) + 1, Relaxed);
        true
    }

    /// Spans a kept trace costs the budget: 1 for this process alone; in a
    /// fleet, the fleet's spans per paced decision (a floor-kept root is
    /// followed downstream too).
    #[inline]
    fn trace_spans(&self) -> f64 {
        self.fleet.as_ref().map_or(1.0, |f| f.spans_per_entry.get().max(1.0))
    }

    #[inline]
    fn slot(&self, mono: f64) -> u64 {
        // Zeroed state (lost, not yet started again) has no slots: slot 0.
        let slot = ((mono - self.s.slot_origin.get()) / self.s.slot_length.get()).max(0.0);
        if slot.is_finite() {
            slot as u64
        } else {
            0
        }
    }

    /// Reserve budget for a span about to be kept; false when it must be
    /// dropped. One compare-and-swap is the whole reservation, so a process
    /// killed at any instant leaves the count exact.
    #[inline]
    pub fn admit(&self, kind: Admit, mono: f64) -> bool {
        let budget = self.budget as f64;
        // A paced keep drawn past the line's limit was drawn at the trickle's
        // probability: it spends the room that tail keeps and keep rules made
        // above the line, with no lease (in a fleet the trickle is paced for
        // the fleet's demand, one keep a slot as the floor's), and refusing it
        // would bias what its `th` claims.
        let trickle = kind == Admit::Entry && self.total_used() as f64 >= self.line_limit(mono);
        let limit = match kind {
            Admit::Forced if !self.cap_forced => f64::INFINITY,
            Admit::Forced => budget,
            Admit::Entry if trickle => self.trickle_limit(mono),
            Admit::Entry => self.line_limit(mono),
            // In a fleet, the leases fill the line for every process: the floor
            // (one keep per process and slot, no lease) goes above it, so no
            // hour goes blind, and the pace pays it back.
            Admit::Floor if self.fleet.is_some() => self.floor_cap - self.forced_ahead(mono),
            // Tail keeps and keep rules may run ahead of the line (an error
            // storm): they do not take the floor's room, or the hours after a
            // storm would go blind.
            Admit::Floor => (self.allowed(mono) + self.burst + self.run_ahead()).min(self.floor_cap - self.forced_ahead(mono)),
            // The children of a trace the floor or the trickle kept in the room
            // above the line follow it there, or the trace would be cut.
            Admit::Child => (self.allowed(mono) + self.burst + self.child_headroom + self.run_ahead()).min(budget),
        };
        // In a fleet, a keep also spends this process's lease of the budget.
        let lease = self.fleet.as_ref().filter(|_| !trickle && fleet::leased(kind, self.cap_forced)).map(|f| &f.lease);
        if lease.is_some_and(|lease| !lease.take(mono)) {
            self.count_refused(1);
            return false;
        }
        let assumed = self.s.assumed.load(Acquire);
        let mut used = self.s.used.load(Acquire);
        loop {
            if (used + assumed) as f64 >= limit {
                if let Some(lease) = lease {
                    lease.give_back();
                }
                self.count_refused(1);
                return false;
            }
            match self.s.used.compare_exchange_weak(used, used + 1, AcqRel, Acquire) {
                Ok(_) => break,
                Err(seen) => used = seen,
            }
        }
        match kind {
            Admit::Entry | Admit::Floor => {
                self.s.kept_entries.fetch_add(1, Relaxed);
                // The fleet's spans per kept root: a floor-kept root is followed
                // downstream as a paced one is.
                if let Some(fleet) = &self.fleet {
                    fleet.entries.fetch_add(1, Relaxed);
                }
                self.s.last_kept_slot.fetch_max(self.slot(mono) + 1, Relaxed);
                if kind == Admit::Floor {
                    self.s.period_floor.fetch_add(1, Relaxed);
                }
                if trickle {
                    self.trickled.fetch_add(1, Relaxed);
                }
            }
            Admit::Forced => {
                // A keep rule's span is seen too: the slot needs no floor keep.
                self.s.forced.fetch_add(1, Relaxed);
                self.s.period_forced.fetch_add(1, Relaxed);
                self.s.last_kept_slot.fetch_max(self.slot(mono) + 1, Relaxed);
            }
            Admit::Child => {}
        }
        true
    }

    /// Roll into a new period, follow the wall clock, or re-estimate, when due.
    /// One thread does the work, under a lease that expires if it dies.
    fn maybe_update(&self, now: &Moment) {
        let mono = now.monotonic();
        let s = &self.s;
        let elapsed = mono - s.interval_start.get();
        let warm_up = s.estimated.load(Relaxed) == 0;
        let demand = s.demand.load(Relaxed) as f64 / FIXED;
        let due = mono >= s.mono_end.get()
            || elapsed >= self.max_interval
            || (elapsed >= self.min_interval && demand >= ENOUGH_DEMAND)
            || (warm_up && elapsed >= WARM_UP && demand > 0.0);
        if !due {
            return;
        }
        let lease = s.lease.get();
        if lease > mono || s.lease.compare_exchange(lease, mono + LEASE).is_err() {
            return;
        }
        let wall = self.wall.observe(now.wall(), mono);
        if s.period_end.get() == 0.0 {
            // The state was lost under this process (a store file shortened
            // while in use, now private zeroed memory): start again as a
            // restart with no record does.
            if let Some(period) = self.calendar.bounds(wall) {
                self.initialise(now, period, false);
            }
            s.lease.set(0.0);
            return;
        }
        s.wall_seen.set(wall);
        if wall >= s.period_end.get() {
            if let Some(period) = self.calendar.bounds(wall) {
                if mono + TOLERANCE >= s.mono_end.get() {
                    // A new period, reached as time passed: nothing of it is spent yet.
                    self.start_period(period, wall, mono, 0, 0.0);
                    s.fresh_until.set(mono + FRESH);
                } else {
                    // Reached by a jump of the wall clock (one that persisted: a start that
                    // read a clock still set to 1970, corrected later), so this pacer never
                    // counted the period up to here: start it as a start with no record does.
                    self.initialise_at(wall, mono, period, false);
                }
            }
        } else {
            // Follow the trusted wall clock (drift, or a jump that persisted):
            // the line continues from where it is to the budget at the new end.
            let end = mono + (s.period_end.get() - wall).max(0.0);
            if (end - s.mono_end.get()).abs() > 0.5 {
                let allowed = self.allowed(mono);
                s.mono_end.set(end);
                s.slot_origin.set(end - (s.period_end.get() - s.period_start.get()));
                self.anchor_line(mono, allowed, end);
            }
        }
        self.re_estimate(mono);
        s.lease.set(0.0);
    }

    fn re_estimate(&self, mono: f64) {
        let s = &self.s;
        let elapsed = mono - s.interval_start.get();
        if elapsed <= 0.0 {
            return;
        }
        // A clock that ran on for long must not dilute the interval's demand.
        let span = elapsed.min(2.0 * self.max_interval);
        let demand = s.demand.swap(0, AcqRel) as f64 / FIXED;
        let decisions = s.decisions.swap(0, AcqRel);
        if decisions > 0 {
            let mean = demand / decisions as f64;
            let previous = s.mean_inner.get();
            s.mean_inner.set(if previous > 0.0 { blend(previous, mean) } else { mean });
        }
        let kept = s.kept_entries.swap(0, AcqRel);
        let forced = s.forced.swap(0, AcqRel) as f64;
        let tail: f64 = s.tail_interval.iter().map(|t| t.load(Acquire) as f64).sum();
        let used = s.used.load(Acquire);
        let spent = used.saturating_sub(s.used_at_interval_start.swap(used, AcqRel)) as f64;
        if kept > 0 {
            let observed = ((spent - forced - tail) / kept as f64).max(1.0);
            s.spans_per_entry.set(blend(s.spans_per_entry.get(), observed));
        }
        let rate = demand * s.spans_per_entry.get() / span;
        let first = s.estimated.swap(1, AcqRel) == 0;
        let demand_rate = if first || s.demand_rate.get() == 0.0 { rate } else { blend(s.demand_rate.get(), rate) };
        s.demand_rate.set(demand_rate);
        // Keep rules are rare events: a single one in a short interval is no rate.
        // These averages weigh an interval by its length against the longest interval.
        let weight = (span / self.max_interval).min(1.0);
        s.spend_rate.set(s.spend_rate.get() + weight * (spent / span - s.spend_rate.get()));
        s.forced_rate.set(s.forced_rate.get() + weight * (forced / span - s.forced_rate.get()));
        let mut tails = [0.0; 3];
        for (i, tail) in tails.iter_mut().enumerate() {
            *tail = s.tail_interval[i].swap(0, AcqRel) as f64;
            s.tail_rate[i].set(s.tail_rate[i].get() + weight * (*tail / span - s.tail_rate[i].get()));
        }
        self.add_to_typical_rates(elapsed, forced, &tails);
        s.interval_start.set(mono);
        self.set_pace(mono);
    }

    /// pace = allowance / demand: the allowance is what is left of the budget
    /// after what must stay reserved (the keep rules' and the floor's expected
    /// spans, the children's headroom), over the time left.
    fn set_pace(&self, mono: f64) {
        let s = &self.s;
        let cap = self.budget as f64 - self.reserved(mono);
        s.entry_cap.set(cap);
        let remaining = (cap - self.total_used() as f64).max(0.0);
        let allowance = remaining / (s.mono_end.get() - mono).max(self.min_interval);
        // In a fleet, the fleet's demand (spans its traces cause in every service).
        let demand_rate = self.demand_rate();
        s.pace.set(if demand_rate <= 0.0 { 1.0 } else { (allowance / demand_rate).clamp(0.0, 1.0) });
    }

    /// Spending so far. Past the end of the period the state counts, the
    /// period the next decision starts, with nothing of it spent: an idle
    /// service's dashboard would otherwise show the ended period's spending
    /// (a daily budget at its limit all night) until its next decision.
    pub fn status(&self, now: &Moment) -> Status {
        if let Some(period) = self.next_period(now) {
            return self.new_period_status(period, now);
        }
        let mono = now.monotonic();
        let s = &self.s;
        let used = self.total_used();
        let spend_rate = s.spend_rate.get();
        let remaining_time = (s.mono_end.get() - mono).max(0.0);
        Status {
            budget: self.budget,
            used,
            assumed: s.assumed.load(Acquire),
            refused: s.refused.load(Relaxed),
            pace: self.multiplier_at(mono),
            period: self.period(),
            spend_rate,
            demand_rate: s.demand_rate.get(),
            projected: used as f64 + spend_rate * remaining_time,
            allowed: self.allowed(mono),
            burst: self.burst(),
            floor: s.period_floor.load(Relaxed),
            forced: s.period_forced.load(Relaxed),
            caps_forced: self.cap_forced,
            start_allowance: s.start_allowance.get(),
            tail_kept: std::array::from_fn(|i| s.period_tail[i].load(Relaxed)),
            tail_refused: std::array::from_fn(|i| s.tail_refused[i].load(Relaxed)),
            at_zero: self.at_zero.load(Relaxed),
            trickled: self.trickled.load(Relaxed),
        }
    }

    /// `status` at `now` in `period`, which the next decision starts afresh:
    /// the period's counts at 0, this process's counters and the recent rates
    /// as they stand.
    fn new_period_status(&self, period: Bounds, now: &Moment) -> Status {
        let s = &self.s;
        let spend_rate = s.spend_rate.get();
        Status {
            budget: self.budget,
            used: 0,
            assumed: 0,
            refused: 0,
            pace: 1.0,
            period,
            spend_rate,
            demand_rate: s.demand_rate.get(),
            projected: spend_rate * (period.end - now.wall()).max(0.0),
            allowed: 0.0,
            burst: self.burst(),
            floor: 0,
            forced: 0,
            caps_forced: self.cap_forced,
            start_allowance: 0.0,
            tail_kept: [0; 3],
            tail_refused: [0; 3],
            at_zero: self.at_zero.load(Relaxed),
            trickled: self.trickled.load(Relaxed),
        }
    }

    fn count_refused(&self, spans: u64) {
        self.s.refused.fetch_add(spans, Relaxed);
        self.refused_here.fetch_add(spans, Relaxed);
    }

    /// Spans this process's decisions refused because the budget (or its
    /// line) was reached, the head's and the tail's, since it began.
    pub fn refused(&self) -> u64 {
        self.refused_here.load(Relaxed)
    }
}

/// Floor slots: clock hours when the budget pays for a span an hour (a keep in
/// every hour with any traffic is what "never blind" means), else the period
/// split evenly among the budget's spans.
fn slot_length(length: f64, budget: u64) -> f64 {
    let hours = (length / 3600.0).max(1.0);
    if budget as f64 >= hours {
        3600.0
    } else {
        length / (budget as f64).max(1.0)
    }
}

fn blend(previous: f64, observed: f64) -> f64 {
    previous + SMOOTHING * (observed - previous)
}

#[cfg(test)]
mod tests;
