//! The tail sampler's buffer and export queue: ended spans grouped by trace
//! until the trace is due (its local root ended a while ago, or it timed
//! out), decisions remembered for late spans, and the queue of kept spans
//! waiting for export. Every part is bounded here, whatever the exporter
//! does: at a limit a trace is decided early (kept if its head kept it or it
//! has an error, else dropped) and a full queue drops and counts. Generic over
//! the span handle, so the logic is tested without Python; the lock is held
//! for a few map operations only. With sharing on, a trace this process keeps
//! for an error or a root decision is queued for announcement, and an
//! announcement heard from another process keeps this process's spans of that
//! trace, buffered or late. With a budget, every trace kept for another reason
//! than the head's spends it, all its spans or none.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex};

use crate::tail_share::{self, Announcement, Heard, Kind, Outbox};

/// Where the spans of dropped traces go (a retention ring), so that a keep
/// that comes later (another service's announcement, a capture) still finds them.
pub trait Retention<S>: Send + Sync {
    fn retain(&self, trace_id: u128, spans: Vec<S>);
    /// Every retained span of the trace, removed.
    fn take(&self, trace_id: u128) -> Vec<S>;
}

/// What a capture found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// The trace is still buffered: it will be kept at its decision.
    Pending,
    /// It was kept already.
    AlreadyKept,
    /// It was dropped; this many of its spans were still retained and are queued now.
    Retained(usize),
    /// It was dropped and none of its spans are retained any more (or it is unknown
    /// here): only spans still to end are kept.
    BeyondHorizon,
    /// It was dropped and this many of its spans are retained, but the budget
    /// has no room for them: they stay retained (a capture once there is room
    /// keeps them), and it stays dropped here, whole.
    Refused(usize),
}

/// What became of a dropped trace's retained spans kept after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retrieved {
    /// This many were queued for export.
    Queued(usize),
    /// None were retained.
    Nothing,
    /// This many were retained, and stay so: the budget refused them.
    Refused(usize),
}

/// What tail keeps spend: a budget that admits the spans of a kept trace
/// (those the head did not count), all or none.
pub trait TailBudget: Send + Sync {
    fn admit(&self, kind: Kind, spans: u64) -> bool;
}

/// The budget class a reason spends under (None: the head's keep, counted by the head).
fn budget_kind(reason: &str) -> Option<Kind> {
    let reason = reason.strip_prefix("shared:").unwrap_or(reason);
    (reason != "head").then(|| Kind::from_reason(reason.split(':').next().unwrap_or(reason)))
}

/// What became of a trace given to `settle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Kept,
    /// Kept for a reason, but the budget refused it: dropped (or kept as the head kept it).
    Refused,
    Dropped,
}

/// What a span tells the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub trace_id: u128,
    pub sampled: bool,
    pub error: bool,
    /// No parent, or a remote one: this span is the trace's root in this process.
    pub local_root: bool,
}

/// Why a kept trace was kept: a reason (an index into the buffer's interned
/// reasons) and how many traces each of its spans stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    pub reason: u16,
    pub weight: f64,
}

impl Mark {
    /// Kept by the head sampler: exported unchanged (its `th` says the rest).
    pub const HEAD: Mark = Mark { reason: HEAD, weight: 0.0 };
    /// Kept for an error seen in this process.
    pub const ERROR: Mark = Mark { reason: ERROR, weight: 1.0 };
}

/// Interned reason indexes every buffer has.
pub const HEAD: u16 = 0;
pub const ERROR: u16 = 1;
/// Announcements applied per hold of the lock.
const HEAR_CHUNK: usize = 64;
/// Distinct reasons a buffer interns at most (rule names are bounded by the configuration).
const MAX_REASONS: usize = 4096;

/// What happened to an offered span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Buffered,
    /// Its trace was decided already: queued (kept) or discarded.
    LateKept,
    LateDropped,
    /// Buffered, and a trace was decided early at a memory limit.
    Evicted,
    /// Kept, but the export queue was full: dropped and counted.
    QueueFull,
    /// The buffer is closed (its owner shut down): dropped and counted.
    Closed,
}

#[derive(Debug)]
pub struct Trace<S> {
    pub spans: Vec<S>,
    pub first_seen: f64,
    /// Index in `spans` of the local root, once it ended.
    pub root: Option<usize>,
    pub root_ended: Option<f64>,
    pub head_sampled: bool,
    pub error: bool,
    /// The likeliest keep known besides the head and a local error: a root
    /// decision made when the root ended, or another process's announcement.
    pub keep: Option<Mark>,
    /// The adjusted count this process announced the trace with (infinite: not announced).
    sent: f64,
    /// Its local root was handed out for a decision (`take_fresh_roots`).
    pub root_judged: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_traces: usize,
    pub max_spans_per_trace: usize,
    pub decision_cache: usize,
    /// Kept spans waiting for export.
    pub max_queue: usize,
}

/// Sharing decisions with other processes: how long a heard announcement
/// keeps its trace's spans, and how many announcements wait to be sent at most.
#[derive(Debug, Clone, Copy)]
pub struct Sharing {
    pub ttl: f64,
    pub max_outbox: usize,
}

struct Share {
    origin: u64,
    heard: Heard,
    outbox: Outbox,
}

/// A kept span waiting for export.
#[derive(Debug)]
pub struct Queued<S> {
    pub span: S,
    pub mark: Mark,
    /// It ended after its trace was decided.
    pub late: bool,
}

struct Inner<S> {
    traces: HashMap<u128, Trace<S>>,
    /// Trace ids in order of first arrival (ids already taken are skipped).
    arrival: VecDeque<u128>,
    /// (root ended at, trace id) in time order.
    ready: VecDeque<(f64, u128)>,
    /// Decided traces: Some(mark) kept, None dropped.
    decisions: HashMap<u128, Option<Mark>>,
    decision_order: VecDeque<u128>,
    queue: VecDeque<Queued<S>>,
    reasons: Vec<String>,
    /// Traces whose local root ended since `take_fresh_roots`.
    fresh: Vec<u128>,
    share: Option<Share>,
    budget: Option<Arc<dyn TailBudget>>,
    retention: Option<Arc<dyn Retention<S>>>,
}

/// Span counts, each span counted once where its fate is settled:
/// `ended = buffered + kept + dropped + late_dropped + after_close`, and
/// `kept = queued + queue_full + taken` (taken: handed to the exporter),
/// where `kept = decided_kept + late_kept`.
#[derive(Debug, Default)]
pub struct Counts {
    pub ended: AtomicU64,
    /// Of `decided_kept`: spans of traces kept by the head alone.
    pub head_kept: AtomicU64,
    /// Of `decided_kept` and `late_kept`: spans kept only for another process's announcement.
    pub shared_kept: AtomicU64,
    /// Traces this process queued for announcement.
    pub announced: AtomicU64,
    /// Announcements heard from other processes.
    pub heard: AtomicU64,
    /// Heard for a trace this process had dropped already (spans lost to a short `decision_wait`).
    pub heard_too_late: AtomicU64,
    /// Spans of dropped traces found in retention and kept after all (heard or captured).
    pub retained_kept: AtomicU64,
    /// Captures asked for, those that found the trace's spans gone, and
    /// those the budget had no room for.
    pub captures: AtomicU64,
    pub captures_beyond_horizon: AtomicU64,
    pub captures_refused: AtomicU64,
    /// Batches that could not be read.
    pub bad_batches: AtomicU64,
    pub late_kept: AtomicU64,
    pub late_dropped: AtomicU64,
    /// Traces decided early at a memory limit.
    pub evicted_early: AtomicU64,
    /// Spans of traces decided (early or on time), kept and dropped.
    pub decided_kept: AtomicU64,
    pub decided_dropped: AtomicU64,
    pub traces_kept: AtomicU64,
    pub traces_dropped: AtomicU64,
    pub queue_full: AtomicU64,
    pub taken: AtomicU64,
    /// Spans that ended after `close` (a shutdown began): dropped, never buffered.
    pub after_close: AtomicU64,
    /// Traces and late spans the budget refused, by kind (error, latency, rule).
    pub budget_refused_traces: [AtomicU64; 3],
    pub budget_refused_spans: [AtomicU64; 3],
}

pub struct TailBuffer<S> {
    limits: Limits,
    /// Hand out local roots as they end (`take_fresh_roots`): only when something decides on roots.
    judge_roots: bool,
    inner: Mutex<Inner<S>>,
    /// Set by `close`: spans that end from then on are dropped and counted.
    closed: AtomicBool,
    pub counts: Counts,
}

impl<S> TailBuffer<S> {
    pub fn new(limits: Limits, sharing: Option<Sharing>) -> Self {
        let share = sharing.map(|s| Share {
            origin: tail_share::new_origin(),
            heard: Heard::new(limits.decision_cache, s.ttl),
            outbox: Outbox::new(s.max_outbox),
        });
        TailBuffer {
            limits,
            judge_roots: true,
            inner: Mutex::new(Inner {
                traces: HashMap::new(),
                arrival: VecDeque::new(),
                ready: VecDeque::new(),
                decisions: HashMap::new(),
                decision_order: VecDeque::new(),
                queue: VecDeque::new(),
                reasons: vec!["head".to_owned(), "error".to_owned()],
                fresh: Vec::new(),
                share,
                budget: None,
                retention: None,
            }),
            closed: AtomicBool::new(false),
            counts: Counts::default(),
        }
    }

    /// Take no more spans: from now on a span that ends is dropped and counted
    /// in `after_close`. A shutdown closes the buffer first, so that it flushes
    /// what is there instead of chasing spans an application still ends.
    pub fn close(&self) {
        self.closed.store(true, Release);
    }

    /// Whether local roots are handed out as they end (on by default).
    pub fn judging_roots(mut self, on: bool) -> Self {
        self.judge_roots = on;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn sharing(&self) -> bool {
        self.lock().share.is_some()
    }

    /// The budget tail keeps spend from now on (None: they spend none).
    pub fn set_budget(&self, budget: Option<Arc<dyn TailBudget>>) {
        self.lock().budget = budget;
    }

    /// Where the spans of dropped traces go from now on (None: they are freed).
    pub fn set_retention(&self, retention: Option<Arc<dyn Retention<S>>>) {
        self.lock().retention = retention;
    }

    pub fn offer(&self, span: S, facts: Facts, now: f64) -> Offer {
        self.counts.ended.fetch_add(1, Relaxed);
        if self.closed.load(Acquire) {
            self.counts.after_close.fetch_add(1, Relaxed);
            return Offer::Closed;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut outcome = Offer::Buffered;
        if !inner.traces.contains_key(&facts.trace_id) {
            if let Some(&decision) = inner.decisions.get(&facts.trace_id) {
                return match decision {
                    Some(mark) if !facts.sampled && !self.admit(inner, mark, 1) => {
                        self.counts.late_dropped.fetch_add(1, Relaxed);
                        retain(inner, facts.trace_id, vec![span]);
                        Offer::LateDropped
                    }
                    Some(mark) => {
                        self.counts.late_kept.fetch_add(1, Relaxed);
                        if is_shared(&inner.reasons, mark) {
                            self.counts.shared_kept.fetch_add(1, Relaxed);
                        }
                        self.enqueue(inner, span, mark, true, Offer::LateKept)
                    }
                    // The head kept this span though not its trace's others here: it goes as the head kept it.
                    None if facts.sampled => {
                        self.counts.late_kept.fetch_add(1, Relaxed);
                        self.enqueue(inner, span, Mark::HEAD, true, Offer::LateKept)
                    }
                    None => {
                        self.counts.late_dropped.fetch_add(1, Relaxed);
                        retain(inner, facts.trace_id, vec![span]);
                        Offer::LateDropped
                    }
                };
            }
            while inner.traces.len() >= self.limits.max_traces {
                let Some(oldest) = inner.arrival.pop_front() else { break };
                if let Some(trace) = inner.traces.remove(&oldest) {
                    self.decide_early(inner, oldest, trace);
                    outcome = Offer::Evicted;
                }
            }
            let heard = inner.share.as_ref().and_then(|share| share.heard.get(facts.trace_id, now));
            let keep = heard.map(|a| shared_mark(&mut inner.reasons, a));
            inner.arrival.push_back(facts.trace_id);
            inner.traces.insert(
                facts.trace_id,
                Trace {
                    spans: Vec::new(),
                    first_seen: now,
                    root: None,
                    root_ended: None,
                    head_sampled: false,
                    error: false,
                    keep,
                    sent: f64::INFINITY,
                    root_judged: false,
                },
            );
        }
        let trace = inner.traces.get_mut(&facts.trace_id).expect("inserted above");
        trace.spans.push(span);
        trace.head_sampled |= facts.sampled;
        if facts.error && !trace.error {
            trace.error = true;
            // Known the moment the span ends: announced now, not when the trace is due.
            if let Some(share) = inner.share.as_mut() {
                self.announce(share, facts.trace_id, trace, Kind::Error, 1.0);
            }
        }
        if facts.local_root {
            trace.root = Some(trace.spans.len() - 1);
            trace.root_ended = Some(now);
            trace.root_judged = false;
            inner.ready.push_back((now, facts.trace_id));
            if self.judge_roots {
                inner.fresh.push(facts.trace_id);
            }
        }
        if trace.spans.len() >= self.limits.max_spans_per_trace {
            let trace = inner.traces.remove(&facts.trace_id).expect("present");
            self.decide_early(inner, facts.trace_id, trace);
            outcome = Offer::Evicted;
        }
        outcome
    }

    /// Queue an announcement unless this process, or the one it heard from,
    /// already announced the trace as at least as likely a keep.
    fn announce(&self, share: &mut Share, trace_id: u128, trace: &mut Trace<S>, kind: Kind, weight: f64) {
        let known = trace.keep.map_or(f64::INFINITY, |mark| mark.weight).min(trace.sent);
        if weight < known {
            trace.sent = weight;
            share.outbox.push(Announcement { trace_id, kind, weight });
            self.counts.announced.fetch_add(1, Relaxed);
        }
    }

    /// A trace decided at a memory limit, without waiting: kept if its head
    /// kept it, it has an error or a keep is known, else dropped.
    fn decide_early(&self, inner: &mut Inner<S>, trace_id: u128, trace: Trace<S>) {
        self.counts.evicted_early.fetch_add(1, Relaxed);
        let verdict = if trace.error {
            Some(Mark::ERROR)
        } else if trace.keep.is_some() {
            trace.keep
        } else if trace.head_sampled {
            Some(Mark::HEAD)
        } else {
            None
        };
        self.settle_locked(inner, trace_id, trace.spans, verdict, trace.head_sampled);
    }

    /// Whether the budget admits `spans` spans kept for `mark` (always, with no
    /// budget or for the head's keep); refusals are counted by kind.
    fn admit(&self, inner: &Inner<S>, mark: Mark, spans: u64) -> bool {
        let Some(budget) = &inner.budget else { return true };
        let Some(kind) = inner.reasons.get(usize::from(mark.reason)).and_then(|r| budget_kind(r)) else { return true };
        if spans == 0 || budget.admit(kind, spans) {
            return true;
        }
        self.counts.budget_refused_spans[kind as usize].fetch_add(spans, Relaxed);
        false
    }

    fn enqueue(&self, inner: &mut Inner<S>, span: S, mark: Mark, late: bool, queued: Offer) -> Offer {
        if inner.queue.len() >= self.limits.max_queue {
            self.counts.queue_full.fetch_add(1, Relaxed);
            return Offer::QueueFull;
        }
        inner.queue.push_back(Queued { span, mark, late });
        queued
    }

    /// Traces whose local root ended since the last call, still buffered:
    /// (trace id, the root), for a decision on the root as soon as it ends.
    pub fn take_fresh_roots(&self, copy: impl Fn(&S) -> S) -> Vec<(u128, S)> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let fresh = std::mem::take(&mut inner.fresh);
        fresh
            .into_iter()
            .filter_map(|id| {
                let trace = inner.traces.get_mut(&id)?;
                let root = copy(&trace.spans[trace.root?]);
                trace.root_judged = true;
                Some((id, root))
            })
            .collect()
    }

    /// A keep decided on the root of a buffered trace (latency or a rule):
    /// remembered for its decision and, with sharing on, announced.
    pub fn keep(&self, trace_id: u128, reason: &str, weight: f64) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mark = Mark { reason: intern(&mut inner.reasons, reason), weight };
        let Some(trace) = inner.traces.get_mut(&trace_id) else { return };
        if let Some(share) = inner.share.as_mut() {
            self.announce(share, trace_id, trace, Kind::from_reason(reason), weight);
        }
        if trace.keep.is_none_or(|known| weight < known.weight) {
            trace.keep = Some(mark);
        }
    }

    /// Up to `max` queued announcements as one batch of bytes (None: nothing to send).
    pub fn take_announcements(&self, max: usize) -> Option<Vec<u8>> {
        let mut inner = self.lock();
        let share = inner.share.as_mut()?;
        if share.outbox.is_empty() {
            return None;
        }
        let items = share.outbox.take(max);
        Some(tail_share::encode(share.origin, &items))
    }

    /// A batch this process took (`take_announcements`) and could not send:
    /// back into the outbox, to go out first when Redis answers again.
    pub fn return_announcements(&self, batch: &[u8]) {
        let Ok((origin, items)) = tail_share::decode(batch) else { return };
        let mut inner = self.lock();
        if let Some(share) = inner.share.as_mut().filter(|share| share.origin == origin) {
            share.outbox.put_back(&items);
        }
    }

    /// A batch another process announced: each trace is kept here too, buffered
    /// spans at its decision and late spans as they come, for the ttl.
    pub fn hear(&self, batch: &[u8], now: f64) {
        let Ok((origin, items)) = tail_share::decode(batch) else {
            self.counts.bad_batches.fetch_add(1, Relaxed);
            return;
        };
        // A few announcements per hold of the lock, so an `on_end` never waits long behind a big batch.
        for chunk in items.chunks(HEAR_CHUNK) {
            let mut inner = self.lock();
            if !self.hear_locked(&mut inner, origin, chunk, now) {
                return;
            }
        }
    }

    /// Apply heard announcements; false when they are this process's own (or sharing is off).
    fn hear_locked(&self, inner: &mut Inner<S>, origin: u64, items: &[Announcement], now: f64) -> bool {
        let Some(share) = inner.share.as_mut() else { return false };
        if origin == share.origin {
            return false;
        }
        let mut dropped_here = Vec::new();
        for &item in items {
            self.counts.heard.fetch_add(1, Relaxed);
            let held = share.heard.insert(item, now);
            let mark = shared_mark(&mut inner.reasons, held);
            if let Some(trace) = inner.traces.get_mut(&item.trace_id) {
                if trace.keep.is_none_or(|known| mark.weight < known.weight) {
                    trace.keep = Some(mark);
                }
            } else if let Some(decision) = inner.decisions.get_mut(&item.trace_id) {
                if decision.is_none() {
                    // Dropped here already: later spans are kept, and retained ones found again.
                    *decision = Some(mark);
                    dropped_here.push((item.trace_id, mark));
                }
            }
        }
        for (trace_id, mark) in dropped_here {
            match self.keep_retained(inner, trace_id, mark) {
                Retrieved::Queued(_) => {}
                Retrieved::Nothing => {
                    self.counts.heard_too_late.fetch_add(1, Relaxed);
                }
                Retrieved::Refused(_) => {
                    // Refused whole: its later spans are not kept either.
                    if let Some(decision) = inner.decisions.get_mut(&trace_id) {
                        *decision = None;
                    }
                }
            }
        }
        true
    }

    /// (announcements waiting, heard and held, dropped from the outbox, heard expired, heard evicted at the cap)
    pub fn share_sizes(&self) -> (usize, usize, u64, u64, u64) {
        let inner = self.lock();
        inner
            .share
            .as_ref()
            .map_or((0, 0, 0, 0, 0), |s| (s.outbox.len(), s.heard.len(), s.outbox.dropped, s.heard.expired, s.heard.evicted))
    }

    /// Traces whose root ended `wait` ago, or first seen `timeout` ago.
    pub fn take_due(&self, now: f64, wait: f64, timeout: f64) -> Vec<(u128, Trace<S>)> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(share) = inner.share.as_mut() {
            share.heard.expire(now);
        }
        let mut due = Vec::new();
        while let Some(&(ended, id)) = inner.ready.front() {
            if now - ended < wait {
                break;
            }
            inner.ready.pop_front();
            if inner.traces.get(&id).is_some_and(|t| t.root_ended == Some(ended)) {
                due.push((id, inner.traces.remove(&id).expect("present")));
            }
        }
        while let Some(&id) = inner.arrival.front() {
            match inner.traces.get(&id) {
                None => {
                    inner.arrival.pop_front();
                }
                Some(trace) if now - trace.first_seen >= timeout => {
                    inner.arrival.pop_front();
                    due.push((id, inner.traces.remove(&id).expect("present")));
                }
                Some(_) => break,
            }
        }
        due
    }

    /// Every buffered trace (flush and shutdown).
    pub fn take_all(&self) -> Vec<(u128, Trace<S>)> {
        let mut inner = self.lock();
        inner.arrival.clear();
        inner.ready.clear();
        inner.traces.drain().collect()
    }

    /// Record a trace's decision (Some(mark): kept) and queue its spans when
    /// kept. A keep for another reason than the head's spends the budget (its
    /// spans, unless the head kept them): refused, the trace goes as the head
    /// decided it (`head`: kept by the head), whole or not at all.
    pub fn settle(&self, trace_id: u128, spans: Vec<S>, verdict: Option<Mark>, head: bool) -> Settled {
        let mut inner = self.lock();
        self.settle_locked(&mut inner, trace_id, spans, verdict, head)
    }

    fn settle_locked(&self, inner: &mut Inner<S>, trace_id: u128, spans: Vec<S>, verdict: Option<Mark>, head: bool) -> Settled {
        let count = spans.len() as u64;
        let mut settled = if verdict.is_some() { Settled::Kept } else { Settled::Dropped };
        let verdict = match verdict {
            Some(mark) if !head && !self.admit(inner, mark, count) => {
                if let Some(kind) = inner.reasons.get(usize::from(mark.reason)).and_then(|r| budget_kind(r)) {
                    self.counts.budget_refused_traces[kind as usize].fetch_add(1, Relaxed);
                }
                settled = Settled::Refused;
                None
            }
            other => other,
        };
        remember(inner, self.limits.decision_cache, trace_id, verdict);
        match verdict {
            Some(mark) => {
                self.counts.traces_kept.fetch_add(1, Relaxed);
                self.counts.decided_kept.fetch_add(count, Relaxed);
                if mark.reason == HEAD {
                    self.counts.head_kept.fetch_add(count, Relaxed);
                } else if is_shared(&inner.reasons, mark) {
                    self.counts.shared_kept.fetch_add(count, Relaxed);
                }
                for span in spans {
                    self.enqueue(inner, span, mark, false, Offer::Buffered);
                }
            }
            None => {
                self.counts.traces_dropped.fetch_add(1, Relaxed);
                self.counts.decided_dropped.fetch_add(count, Relaxed);
                retain(inner, trace_id, spans);
            }
        }
        settled
    }

    /// Queue the retained spans of a dropped trace, kept after all for `mark`
    /// (whole or not at all, as the budget says: refused, they stay retained).
    fn keep_retained(&self, inner: &mut Inner<S>, trace_id: u128, mark: Mark) -> Retrieved {
        let Some(retention) = inner.retention.clone() else { return Retrieved::Nothing };
        let spans = retention.take(trace_id);
        if spans.is_empty() {
            return Retrieved::Nothing;
        }
        if !self.admit(inner, mark, spans.len() as u64) {
            if let Some(kind) = inner.reasons.get(usize::from(mark.reason)).and_then(|r| budget_kind(r)) {
                self.counts.budget_refused_traces[kind as usize].fetch_add(1, Relaxed);
            }
            let count = spans.len();
            retention.retain(trace_id, spans);
            return Retrieved::Refused(count);
        }
        let count = spans.len();
        self.counts.retained_kept.fetch_add(count as u64, Relaxed);
        if is_shared(&inner.reasons, mark) {
            self.counts.shared_kept.fetch_add(count as u64, Relaxed);
        }
        for span in spans {
            self.enqueue(inner, span, mark, false, Offer::LateKept);
        }
        Retrieved::Queued(count)
    }

    /// Keep a trace after the fact (`reason`, each span standing for itself):
    /// buffered, at its decision; dropped, its retained spans now; and spans
    /// still to end, as they end.
    pub fn capture(&self, trace_id: u128, reason: &str) -> Capture {
        self.counts.captures.fetch_add(1, Relaxed);
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mark = Mark { reason: intern(&mut inner.reasons, reason), weight: 1.0 };
        if let Some(trace) = inner.traces.get_mut(&trace_id) {
            if let Some(share) = inner.share.as_mut() {
                self.announce(share, trace_id, trace, Kind::Rule, 1.0);
            }
            if trace.keep.is_none_or(|known| mark.weight < known.weight) {
                trace.keep = Some(mark);
            }
            return Capture::Pending;
        }
        let retrieved = match inner.decisions.get(&trace_id) {
            Some(Some(_)) => return Capture::AlreadyKept,
            _ => self.keep_retained(inner, trace_id, mark),
        };
        // The fleet's other services keep their spans of the trace too, as their own budgets
        // allow (as a rule's keep: the wire's kinds).
        if let Some(share) = inner.share.as_mut() {
            share.outbox.push(Announcement { trace_id, kind: Kind::Rule, weight: 1.0 });
            self.counts.announced.fetch_add(1, Relaxed);
        }
        match retrieved {
            Retrieved::Refused(count) => {
                self.counts.captures_refused.fetch_add(1, Relaxed);
                Capture::Refused(count)
            }
            Retrieved::Queued(count) => {
                self.remember_kept(inner, trace_id, mark);
                Capture::Retained(count)
            }
            Retrieved::Nothing => {
                self.remember_kept(inner, trace_id, mark);
                self.counts.captures_beyond_horizon.fetch_add(1, Relaxed);
                Capture::BeyondHorizon
            }
        }
    }

    /// Remember `trace_id` as kept for `mark`, so its spans still to end are kept too.
    fn remember_kept(&self, inner: &mut Inner<S>, trace_id: u128, mark: Mark) {
        remember(inner, self.limits.decision_cache, trace_id, Some(mark));
        if let Some(decision) = inner.decisions.get_mut(&trace_id) {
            *decision = Some(mark);
        }
    }

    /// Up to `max` queued spans, oldest first, for export.
    pub fn take_batch(&self, max: usize) -> Vec<Queued<S>> {
        let mut inner = self.lock();
        let take = inner.queue.len().min(max);
        let batch: Vec<Queued<S>> = inner.queue.drain(..take).collect();
        self.counts.taken.fetch_add(batch.len() as u64, Relaxed);
        batch
    }

    /// Everything still queued, removed (and counted as taken).
    pub fn drain_queue(&self) -> Vec<Queued<S>> {
        self.take_batch(usize::MAX)
    }

    /// The index of a reason text, interned (bounded; beyond the bound, "other").
    pub fn reason(&self, text: &str) -> u16 {
        intern(&mut self.lock().reasons, text)
    }

    pub fn reason_text(&self, index: u16) -> String {
        self.lock().reasons.get(usize::from(index)).cloned().unwrap_or_else(|| "other".to_owned())
    }

    /// (traces buffered, spans buffered, spans queued, decisions remembered)
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        let inner = self.lock();
        (inner.traces.len(), inner.traces.values().map(|t| t.spans.len()).sum(), inner.queue.len(), inner.decisions.len())
    }
}

fn intern(reasons: &mut Vec<String>, text: &str) -> u16 {
    if let Some(index) = reasons.iter().position(|r| r == text) {
        return index as u16;
    }
    if reasons.len() >= MAX_REASONS {
        return match reasons.iter().position(|r| r == "other") {
            Some(index) => index as u16,
            None => {
                let last = reasons.len() - 1;
                reasons[last] = "other".to_owned();
                last as u16
            }
        };
    }
    reasons.push(text.to_owned());
    (reasons.len() - 1) as u16
}

fn shared_mark(reasons: &mut Vec<String>, heard: Announcement) -> Mark {
    Mark { reason: intern(reasons, heard.kind.shared_reason()), weight: heard.weight }
}

fn is_shared(reasons: &[String], mark: Mark) -> bool {
    reasons.get(usize::from(mark.reason)).is_some_and(|r| r.starts_with("shared:"))
}

/// Hand the spans of a dropped trace to retention, if there is one.
fn retain<S>(inner: &Inner<S>, trace_id: u128, spans: Vec<S>) {
    if let (Some(retention), false) = (&inner.retention, spans.is_empty()) {
        retention.retain(trace_id, spans);
    }
}

/// Remember a decision, forgetting the oldest beyond the cache size.
fn remember<S>(inner: &mut Inner<S>, capacity: usize, trace_id: u128, verdict: Option<Mark>) {
    if inner.decisions.insert(trace_id, verdict).is_none() {
        inner.decision_order.push_back(trace_id);
        while inner.decision_order.len() > capacity {
            if let Some(old) = inner.decision_order.pop_front() {
                inner.decisions.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(trace_id: u128, sampled: bool, local_root: bool) -> Facts {
        Facts { trace_id, sampled, error: false, local_root }
    }

    fn limits() -> Limits {
        Limits { max_traces: 3, max_spans_per_trace: 4, decision_cache: 2, max_queue: 100 }
    }

    fn balance<S>(buffer: &TailBuffer<S>) {
        let c = &buffer.counts;
        let (_, buffered, queued, _) = buffer.sizes();
        let kept = c.late_kept.load(Relaxed) + c.decided_kept.load(Relaxed);
        let ended = buffered as u64 + kept + c.decided_dropped.load(Relaxed) + c.late_dropped.load(Relaxed) + c.after_close.load(Relaxed);
        assert_eq!(ended, c.ended.load(Relaxed), "every span ended is buffered, kept or dropped");
        assert_eq!(kept, queued as u64 + c.queue_full.load(Relaxed) + c.taken.load(Relaxed), "every kept span is queued, refused or taken");
    }

    #[test]
    fn a_closed_buffer_drops_and_counts_what_ends_and_keeps_what_it_holds() {
        let buffer = TailBuffer::new(limits(), None);
        assert_eq!(buffer.offer(1, facts(7, false, true), 0.0), Offer::Buffered);
        buffer.close();
        assert_eq!(buffer.offer(2, facts(7, false, false), 0.0), Offer::Closed, "a span of a held trace too");
        assert_eq!(buffer.offer(3, facts(8, true, true), 0.0), Offer::Closed);
        assert_eq!(buffer.counts.after_close.load(Relaxed), 2);
        let all = buffer.take_all();
        assert_eq!(all.len(), 1, "what was held before the close is still there to flush");
        assert_eq!(all[0].1.spans, vec![1]);
        buffer.settle(7, all.into_iter().next().unwrap().1.spans, Some(Mark::HEAD), true);
        balance(&buffer);
    }

    #[test]
    fn traces_are_due_after_their_root_plus_the_wait_or_on_timeout() {
        let buffer = TailBuffer::new(limits(), None);
        assert_eq!(buffer.offer(1, facts(7, false, false), 0.0), Offer::Buffered);
        assert_eq!(buffer.offer(2, facts(7, false, true), 1.0), Offer::Buffered);
        assert_eq!(buffer.offer(3, facts(8, false, false), 1.0), Offer::Buffered);
        assert!(buffer.take_due(2.0, 2.0, 30.0).is_empty());
        let due = buffer.take_due(3.0, 2.0, 30.0);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0, due[0].1.spans.clone(), due[0].1.root), (7, vec![1, 2], Some(1)));
        let timed_out = buffer.take_due(31.0, 2.0, 30.0);
        assert_eq!(timed_out.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![8]);
    }

    #[test]
    fn late_spans_carry_their_traces_mark() {
        let buffer = TailBuffer::new(limits(), None);
        buffer.offer(1, facts(1, true, true), 0.0);
        let (id, trace) = buffer.take_due(2.0, 2.0, 30.0).pop().unwrap();
        assert!(trace.head_sampled);
        buffer.settle(id, trace.spans, Some(Mark::HEAD), true);
        let latency = Mark { reason: buffer.reason("latency"), weight: 4.0 };
        buffer.settle(2, vec![], Some(latency), false);
        buffer.settle(3, vec![], None, false);
        assert_eq!(buffer.offer(2, facts(2, false, false), 0.0), Offer::LateKept);
        assert_eq!(buffer.offer(3, facts(3, false, false), 0.0), Offer::LateDropped);
        let batch = buffer.take_batch(10);
        assert_eq!(batch.iter().map(|q| (q.span, q.mark, q.late)).collect::<Vec<_>>(), vec![(1, Mark::HEAD, false), (2, latency, true)]);
        assert_eq!(buffer.reason_text(latency.reason), "latency");
        buffer.settle(4, vec![], Some(Mark::HEAD), true);
        assert_eq!(buffer.offer(5, facts(2, false, false), 0.0), Offer::Buffered, "decision 2 was forgotten");
        balance(&buffer);
    }

    /// A budget that admits up to `room` spans in all, and counts by kind.
    struct Room {
        room: std::sync::atomic::AtomicU64,
        asked: Mutex<Vec<(Kind, u64)>>,
    }

    impl TailBudget for Room {
        fn admit(&self, kind: Kind, spans: u64) -> bool {
            self.asked.lock().unwrap().push((kind, spans));
            self.room.fetch_update(Relaxed, Relaxed, |room| room.checked_sub(spans)).is_ok()
        }
    }

    #[test]
    fn tail_keeps_spend_the_budget_whole_traces_or_none_and_head_keeps_spend_nothing_here() {
        let buffer = TailBuffer::new(limits(), None);
        let room = Arc::new(Room { room: std::sync::atomic::AtomicU64::new(3), asked: Mutex::new(Vec::new()) });
        buffer.set_budget(Some(room.clone()));
        let latency = Mark { reason: buffer.reason("latency"), weight: 1.0 };
        let shared = Mark { reason: buffer.reason("shared:error"), weight: 1.0 };
        assert_eq!(buffer.settle(1, vec![1, 2], Some(Mark::ERROR), false), Settled::Kept);
        assert_eq!(buffer.settle(2, vec![3, 4], Some(latency), false), Settled::Refused, "two spans, one left: the whole trace is refused");
        assert_eq!(buffer.settle(3, vec![5, 6, 7], Some(Mark::ERROR), true), Settled::Kept, "the head counted its spans already");
        assert_eq!(buffer.settle(4, vec![8], Some(shared), false), Settled::Kept);
        assert_eq!(buffer.offer(9, facts(4, false, false), 0.0), Offer::LateDropped, "no room left for a late span");
        assert_eq!(buffer.offer(10, facts(3, true, false), 0.0), Offer::LateKept, "a late span the head kept spends nothing here");
        assert_eq!(*room.asked.lock().unwrap(), vec![(Kind::Error, 2), (Kind::Latency, 2), (Kind::Error, 1), (Kind::Error, 1)]);
        assert_eq!(buffer.counts.budget_refused_traces[Kind::Latency as usize].load(Relaxed), 1);
        assert_eq!(buffer.counts.budget_refused_spans[Kind::Latency as usize].load(Relaxed), 2);
        assert_eq!(buffer.counts.budget_refused_spans[Kind::Error as usize].load(Relaxed), 1);
        let kept: Vec<u32> = buffer.take_batch(100).into_iter().map(|q| q.span).collect();
        assert_eq!(kept, vec![1, 2, 5, 6, 7, 8, 10]);
    }

    #[test]
    fn limits_decide_early_keeping_errors_and_every_span_is_accounted_for() {
        let buffer = TailBuffer::new(limits(), None);
        for trace in 0..10u128 {
            let error = trace == 1;
            buffer.offer(trace as u32, Facts { trace_id: trace, sampled: false, error, local_root: false }, 0.0);
        }
        for i in 0..5u32 {
            buffer.offer(100 + i, facts(9, false, false), 0.0);
        }
        let (traces, _, _, _) = buffer.sizes();
        assert!(traces <= 3);
        assert!(buffer.counts.evicted_early.load(Relaxed) >= 8);
        let kept: Vec<_> = buffer.take_batch(100).into_iter().map(|q| (q.span, q.mark)).collect();
        assert_eq!(kept, vec![(1, Mark::ERROR)], "an error trace decided early is kept");
        balance(&buffer);
    }

    #[test]
    fn the_export_queue_is_bounded_whatever_the_exporter_does() {
        let buffer = TailBuffer::new(Limits { max_queue: 10, ..limits() }, None);
        for span in 0..1000u32 {
            buffer.offer(span, facts(u128::from(span), true, true), 0.0);
            for (id, trace) in buffer.take_due(1.0, 0.0, 30.0) {
                buffer.settle(id, trace.spans, Some(Mark::HEAD), true);
            }
        }
        let (_, _, queued, _) = buffer.sizes();
        assert_eq!(queued, 10);
        assert_eq!(buffer.counts.queue_full.load(Relaxed), 990);
        balance(&buffer);
    }

    fn sharing() -> Option<Sharing> {
        Some(Sharing { ttl: 60.0, max_outbox: 100 })
    }

    fn announced(buffer: &TailBuffer<u32>) -> Vec<Announcement> {
        buffer.take_announcements(100).map(|bytes| tail_share::decode(&bytes).unwrap().1).unwrap_or_default()
    }

    #[test]
    fn an_error_is_announced_when_its_span_ends_and_keeps_the_trace_in_the_other_process() {
        let leaf = TailBuffer::new(limits(), sharing());
        let caller = TailBuffer::new(limits(), sharing());
        caller.offer(1, facts(7, false, false), 0.0);
        leaf.offer(2, Facts { trace_id: 7, sampled: false, error: true, local_root: true }, 0.0);
        leaf.offer(3, Facts { trace_id: 7, sampled: false, error: true, local_root: false }, 0.0);
        let batch = leaf.take_announcements(100).expect("announced at once");
        assert!(leaf.take_announcements(100).is_none(), "one announcement per trace");
        leaf.hear(&batch, 0.1);
        assert_eq!(leaf.counts.heard.load(Relaxed), 0, "a process skips its own announcements");
        caller.hear(&batch, 0.1);
        caller.offer(4, facts(7, false, true), 0.2);
        let (_, trace) = caller.take_due(3.0, 2.0, 30.0).pop().unwrap();
        let keep = trace.keep.expect("kept for the leaf's error");
        assert_eq!((caller.reason_text(keep.reason), keep.weight, trace.error), ("shared:error".to_owned(), 1.0, false));
        assert!(announced(&caller).is_empty(), "a heard keep is not announced again");
    }

    #[test]
    fn a_late_announcement_keeps_later_spans_and_counts_the_lost_ones() {
        let buffer = TailBuffer::new(limits(), sharing());
        let other = TailBuffer::new(limits(), sharing());
        buffer.offer(1, facts(8, false, true), 0.0);
        for (id, trace) in buffer.take_due(3.0, 2.0, 30.0) {
            buffer.settle(id, trace.spans, None, false);
        }
        other.offer(9, Facts { trace_id: 8, sampled: false, error: true, local_root: true }, 3.5);
        buffer.hear(&other.take_announcements(100).unwrap(), 4.0);
        assert_eq!(buffer.counts.heard_too_late.load(Relaxed), 1);
        assert_eq!(buffer.offer(2, facts(8, false, false), 4.1), Offer::LateKept);
        let queued = buffer.take_batch(10).pop().unwrap();
        assert_eq!((queued.span, buffer.reason_text(queued.mark.reason), queued.late), (2, "shared:error".to_owned(), true));
        assert_eq!(buffer.counts.shared_kept.load(Relaxed), 1);
        balance(&buffer);
    }

    #[test]
    fn a_trace_first_seen_after_its_announcement_is_kept_until_the_announcement_expires() {
        let buffer = TailBuffer::new(limits(), Some(Sharing { ttl: 10.0, max_outbox: 100 }));
        let other = TailBuffer::new(limits(), sharing());
        other.offer(1, facts(5, false, true), 0.0);
        other.offer(2, facts(6, false, true), 0.0);
        other.keep(5, "latency", 4.0);
        other.keep(6, "rule:vip", 1.0);
        let heard = announced(&other);
        assert_eq!(
            heard.iter().map(|a| (a.trace_id, a.kind, a.weight)).collect::<Vec<_>>(),
            vec![(5, Kind::Latency, 4.0), (6, Kind::Rule, 1.0)]
        );
        buffer.hear(&tail_share::encode(1, &heard), 0.0);
        buffer.offer(3, facts(5, false, false), 5.0);
        buffer.offer(4, facts(6, false, false), 11.0);
        let due = buffer.take_due(100.0, 2.0, 30.0);
        let keeps: Vec<_> = due.iter().map(|(id, t)| (*id, t.keep.map(|m| (buffer.reason_text(m.reason), m.weight)))).collect();
        assert_eq!(keeps, vec![(5, Some(("shared:latency".to_owned(), 4.0))), (6, None)], "trace 6 came after its announcement expired");
        assert_eq!(buffer.share_sizes().1, 0);
    }

    #[test]
    fn a_likelier_keep_is_announced_again_and_a_less_likely_one_is_not() {
        let buffer = TailBuffer::new(limits(), sharing());
        buffer.offer(1, facts(3, false, true), 0.0);
        buffer.keep(3, "latency", 4.0);
        buffer.offer(2, Facts { trace_id: 3, sampled: false, error: true, local_root: false }, 0.0);
        buffer.keep(3, "latency", 4.0);
        let weights: Vec<_> = announced(&buffer).iter().map(|a| (a.kind, a.weight)).collect();
        assert_eq!(weights, vec![(Kind::Latency, 4.0), (Kind::Error, 1.0)]);
        assert_eq!(buffer.counts.announced.load(Relaxed), 2);
        let unshared: TailBuffer<u32> = TailBuffer::new(limits(), None);
        unshared.offer(1, Facts { trace_id: 3, sampled: false, error: true, local_root: true }, 0.0);
        assert!(unshared.take_announcements(10).is_none());
        buffer.hear(b"garbage", 0.0);
        assert_eq!(buffer.counts.bad_batches.load(Relaxed), 1);
    }

    #[test]
    fn a_batch_larger_than_a_chunk_is_heard_whole() {
        let buffer: TailBuffer<u32> = TailBuffer::new(Limits { decision_cache: 1000, ..limits() }, sharing());
        let items: Vec<_> =
            (0..HEAR_CHUNK as u128 * 3 + 5).map(|id| Announcement { trace_id: id, kind: Kind::Error, weight: 1.0 }).collect();
        buffer.hear(&tail_share::encode(9, &items), 0.0);
        assert_eq!(buffer.counts.heard.load(Relaxed), items.len() as u64);
        assert_eq!(buffer.share_sizes().1, items.len());
    }

    #[test]
    fn reasons_are_interned_and_bounded() {
        let buffer: TailBuffer<u32> = TailBuffer::new(limits(), None);
        assert_eq!(buffer.reason("head"), HEAD);
        assert_eq!(buffer.reason("error"), ERROR);
        let first = buffer.reason("rule:a");
        assert_eq!(buffer.reason("rule:a"), first);
        for i in 0..MAX_REASONS + 10 {
            buffer.reason(&format!("rule:{i}"));
        }
        assert_eq!(buffer.reason_text(buffer.reason("rule:never-seen")), "other");
    }

    /// Retention in a plain map, for the tests.
    #[derive(Default)]
    struct Kept(Mutex<HashMap<u128, Vec<i32>>>);

    impl Retention<i32> for Kept {
        fn retain(&self, trace_id: u128, spans: Vec<i32>) {
            self.0.lock().unwrap().entry(trace_id).or_default().extend(spans);
        }
        fn take(&self, trace_id: u128) -> Vec<i32> {
            self.0.lock().unwrap().remove(&trace_id).unwrap_or_default()
        }
    }

    #[test]
    fn dropped_traces_are_retained_and_kept_after_the_fact() {
        let buffer = TailBuffer::new(limits(), Some(Sharing { ttl: 60.0, max_outbox: 10 }));
        let kept = Arc::new(Kept::default());
        buffer.set_retention(Some(kept.clone()));
        buffer.offer(1, facts(9, false, false), 0.0);
        buffer.offer(2, facts(9, false, true), 0.0);
        let (id, trace) = buffer.take_due(3.0, 2.0, 30.0).pop().unwrap();
        assert_eq!(buffer.settle(id, trace.spans, None, false), Settled::Dropped);
        assert_eq!(buffer.offer(3, facts(9, false, false), 4.0), Offer::LateDropped);
        assert_eq!(kept.0.lock().unwrap()[&9], vec![1, 2, 3], "a dropped trace's spans, late ones too, are retained");
        assert_eq!(buffer.capture(9, "captured"), Capture::Retained(3));
        assert_eq!(buffer.offer(4, facts(9, false, false), 5.0), Offer::LateKept, "spans still to end are kept too");
        let batch = buffer.take_batch(10);
        assert_eq!(batch.iter().map(|q| q.span).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(buffer.reason_text(batch[0].mark.reason), "captured");
        assert_eq!(buffer.capture(9, "captured"), Capture::AlreadyKept);
        assert_eq!(buffer.capture(77, "captured"), Capture::BeyondHorizon);
        assert_eq!(buffer.counts.captures_beyond_horizon.load(Relaxed), 1);
        balance_retained(&buffer);
    }

    #[test]
    fn a_capture_or_announcement_the_budget_has_no_room_for_leaves_the_trace_retained_and_dropped_whole() {
        let sharing = Some(Sharing { ttl: 60.0, max_outbox: 10 });
        let buffer = TailBuffer::new(limits(), sharing);
        let kept = Arc::new(Kept::default());
        buffer.set_retention(Some(kept.clone()));
        let room = Arc::new(Room { room: std::sync::atomic::AtomicU64::new(1), asked: Mutex::new(Vec::new()) });
        buffer.set_budget(Some(room.clone()));
        for (span, trace) in [(1, 9), (2, 9), (3, 8), (4, 8)] {
            buffer.offer(span, facts(trace, false, span % 2 == 0), 0.0);
        }
        for (id, trace) in buffer.take_due(3.0, 2.0, 30.0) {
            assert_eq!(buffer.settle(id, trace.spans, None, false), Settled::Dropped);
        }
        // Before: the spans were taken from retention and lost, the capture said "beyond the
        // horizon", and a second capture said the trace had been kept.
        assert_eq!(buffer.capture(9, "captured"), Capture::Refused(2), "two spans, room for one");
        assert_eq!(kept.0.lock().unwrap()[&9], vec![1, 2], "still retained");
        assert_eq!(buffer.counts.captures_refused.load(Relaxed), 1);
        assert_eq!(buffer.counts.captures_beyond_horizon.load(Relaxed), 0);
        assert_eq!(buffer.counts.budget_refused_traces[Kind::Rule as usize].load(Relaxed), 1);
        assert_eq!(buffer.offer(5, facts(9, false, false), 4.0), Offer::LateDropped, "refused whole: its later spans too");
        room.room.store(10, Relaxed);
        assert_eq!(buffer.capture(9, "captured"), Capture::Retained(3), "once there is room, a capture keeps them");
        assert_eq!(buffer.capture(9, "captured"), Capture::AlreadyKept);
        // An announcement heard after the drop: refused whole, later spans dropped, the spans still retained.
        room.room.store(0, Relaxed);
        let there = TailBuffer::<i32>::new(limits(), sharing);
        there.offer(7, Facts { trace_id: 8, sampled: false, error: true, local_root: true }, 4.0);
        buffer.hear(&there.take_announcements(10).unwrap(), 5.0);
        assert_eq!(kept.0.lock().unwrap()[&8], vec![3, 4]);
        assert_eq!(buffer.offer(6, facts(8, false, false), 6.0), Offer::LateDropped);
        assert_eq!(buffer.counts.heard_too_late.load(Relaxed), 0, "not too late: refused");
        balance_retained(&buffer);
    }

    #[test]
    fn an_announcement_heard_after_the_drop_keeps_the_retained_spans() {
        let sharing = Some(Sharing { ttl: 60.0, max_outbox: 10 });
        let (here, there) = (TailBuffer::new(limits(), sharing), TailBuffer::<i32>::new(limits(), sharing));
        let kept = Arc::new(Kept::default());
        here.set_retention(Some(kept.clone()));
        here.offer(1, facts(5, false, true), 0.0);
        let (id, trace) = here.take_due(3.0, 2.0, 30.0).pop().unwrap();
        here.settle(id, trace.spans, None, false);
        there.offer(7, Facts { trace_id: 5, sampled: false, error: true, local_root: true }, 4.0);
        here.hear(&there.take_announcements(10).unwrap(), 5.0);
        let batch = here.take_batch(10);
        assert_eq!((batch.len(), batch[0].span, batch[0].late), (1, 1, false));
        assert_eq!(here.reason_text(batch[0].mark.reason), "shared:error");
        assert_eq!(here.counts.heard_too_late.load(Relaxed), 0, "not too late: retained");
        assert_eq!(here.counts.retained_kept.load(Relaxed), 1);
        balance_retained(&here);
    }

    /// The accounting identities with retention: spans kept from retention were counted dropped first.
    fn balance_retained<S>(buffer: &TailBuffer<S>) {
        let c = &buffer.counts;
        let (_, buffered, queued, _) = buffer.sizes();
        let kept = c.late_kept.load(Relaxed) + c.decided_kept.load(Relaxed);
        let ended = buffered as u64 + kept + c.decided_dropped.load(Relaxed) + c.late_dropped.load(Relaxed);
        assert_eq!(ended, c.ended.load(Relaxed));
        let retained_kept = c.retained_kept.load(Relaxed);
        assert_eq!(kept + retained_kept, queued as u64 + c.queue_full.load(Relaxed) + c.taken.load(Relaxed));
    }
}
