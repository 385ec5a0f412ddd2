//! The tail sampler's buffer: ended spans grouped by trace until the trace is
//! due (its local root ended a while ago, or it timed out), with bounded
//! memory. Head-sampled spans of unbuffered traces and late spans of decided
//! traces bypass the buffer. Generic over the span handle, so the logic is
//! tested without Python; the lock is held for a few map operations only.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// What a span tells the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub trace_id: u128,
    pub sampled: bool,
    pub error: bool,
    /// No parent, or a remote one: this span is the trace's root in this process.
    pub local_root: bool,
}

/// What happened to an offered span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Buffered,
    /// Head-sampled with nothing buffered: queued for export as it is.
    HeadKept,
    /// Its trace was decided already: queued (kept) or discarded.
    LateKept,
    LateDropped,
    /// Buffered, and a trace was decided early at a memory limit.
    Evicted,
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
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_traces: usize,
    pub max_spans_per_trace: usize,
    pub decision_cache: usize,
}

struct Inner<S> {
    traces: HashMap<u128, Trace<S>>,
    /// Trace ids in order of first arrival (ids already taken are skipped).
    arrival: VecDeque<u128>,
    /// (root ended at, trace id) in time order.
    ready: VecDeque<(f64, u128)>,
    decisions: HashMap<u128, bool>,
    decision_order: VecDeque<u128>,
    /// Spans to export without a decision of ours: (span, late?).
    queue: Vec<(S, bool)>,
    /// Traces decided early at a limit, for the decider to keep or drop by their head decision.
    early: Vec<(u128, Trace<S>)>,
}

pub struct TailBuffer<S> {
    limits: Limits,
    inner: Mutex<Inner<S>>,
    pub ended: AtomicU64,
    pub head_kept: AtomicU64,
    pub late_kept: AtomicU64,
    pub late_dropped: AtomicU64,
    pub evicted_early: AtomicU64,
}

impl<S> TailBuffer<S> {
    pub fn new(limits: Limits) -> Self {
        TailBuffer {
            limits,
            inner: Mutex::new(Inner {
                traces: HashMap::new(),
                arrival: VecDeque::new(),
                ready: VecDeque::new(),
                decisions: HashMap::new(),
                decision_order: VecDeque::new(),
                queue: Vec::new(),
                early: Vec::new(),
            }),
            ended: AtomicU64::new(0),
            head_kept: AtomicU64::new(0),
            late_kept: AtomicU64::new(0),
            late_dropped: AtomicU64::new(0),
            evicted_early: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn offer(&self, span: S, facts: Facts, now: f64) -> Offer {
        self.ended.fetch_add(1, Relaxed);
        let mut inner = self.lock();
        let inner = &mut *inner;
        if !inner.traces.contains_key(&facts.trace_id) {
            if facts.sampled {
                inner.queue.push((span, false));
                self.head_kept.fetch_add(1, Relaxed);
                return Offer::HeadKept;
            }
            if let Some(&kept) = inner.decisions.get(&facts.trace_id) {
                if kept {
                    inner.queue.push((span, true));
                    self.late_kept.fetch_add(1, Relaxed);
                    return Offer::LateKept;
                }
                self.late_dropped.fetch_add(1, Relaxed);
                return Offer::LateDropped;
            }
        }
        let mut outcome = Offer::Buffered;
        if !inner.traces.contains_key(&facts.trace_id) {
            while inner.traces.len() >= self.limits.max_traces {
                let Some(oldest) = inner.arrival.pop_front() else { break };
                if let Some(trace) = inner.traces.remove(&oldest) {
                    inner.early.push((oldest, trace));
                    self.evicted_early.fetch_add(1, Relaxed);
                    outcome = Offer::Evicted;
                }
            }
            inner.arrival.push_back(facts.trace_id);
            inner.traces.insert(
                facts.trace_id,
                Trace { spans: Vec::new(), first_seen: now, root: None, root_ended: None, head_sampled: false, error: false },
            );
        }
        let trace = inner.traces.get_mut(&facts.trace_id).expect("inserted above");
        trace.spans.push(span);
        trace.head_sampled |= facts.sampled;
        trace.error |= facts.error;
        if facts.local_root {
            trace.root = Some(trace.spans.len() - 1);
            trace.root_ended = Some(now);
            inner.ready.push_back((now, facts.trace_id));
        }
        if trace.spans.len() >= self.limits.max_spans_per_trace {
            let trace = inner.traces.remove(&facts.trace_id).expect("present");
            inner.early.push((facts.trace_id, trace));
            self.evicted_early.fetch_add(1, Relaxed);
            outcome = Offer::Evicted;
        }
        outcome
    }

    /// Traces whose root ended `wait` ago, or first seen `timeout` ago.
    pub fn take_due(&self, now: f64, wait: f64, timeout: f64) -> Vec<(u128, Trace<S>)> {
        let mut inner = self.lock();
        let inner = &mut *inner;
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

    pub fn take_early(&self) -> Vec<(u128, Trace<S>)> {
        std::mem::take(&mut self.lock().early)
    }

    pub fn take_queue(&self) -> Vec<(S, bool)> {
        std::mem::take(&mut self.lock().queue)
    }

    /// Remember a decision, forgetting the oldest beyond the cache size.
    pub fn remember(&self, trace_id: u128, kept: bool) {
        let mut inner = self.lock();
        if inner.decisions.insert(trace_id, kept).is_none() {
            inner.decision_order.push_back(trace_id);
            while inner.decision_order.len() > self.limits.decision_cache {
                if let Some(old) = inner.decision_order.pop_front() {
                    inner.decisions.remove(&old);
                }
            }
        }
    }

    /// (traces buffered, spans buffered, spans queued, decisions remembered, early pending spans)
    pub fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        let inner = self.lock();
        (
            inner.traces.len(),
            inner.traces.values().map(|t| t.spans.len()).sum(),
            inner.queue.len(),
            inner.decisions.len(),
            inner.early.iter().map(|(_, t)| t.spans.len()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(trace_id: u128, sampled: bool, local_root: bool) -> Facts {
        Facts { trace_id, sampled, error: false, local_root }
    }

    fn limits() -> Limits {
        Limits { max_traces: 3, max_spans_per_trace: 4, decision_cache: 2 }
    }

    #[test]
    fn traces_are_due_after_their_root_plus_the_wait_or_on_timeout() {
        let buffer = TailBuffer::new(limits());
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
    fn head_sampled_and_late_spans_bypass_the_buffer() {
        let buffer = TailBuffer::new(limits());
        assert_eq!(buffer.offer(1, facts(1, true, true), 0.0), Offer::HeadKept);
        buffer.remember(2, true);
        buffer.remember(3, false);
        assert_eq!(buffer.offer(2, facts(2, false, false), 0.0), Offer::LateKept);
        assert_eq!(buffer.offer(3, facts(3, false, false), 0.0), Offer::LateDropped);
        assert_eq!(buffer.take_queue(), vec![(1, false), (2, true)]);
        buffer.remember(4, true);
        assert_eq!(buffer.offer(5, facts(2, false, false), 0.0), Offer::Buffered, "decision 2 was forgotten");
    }

    #[test]
    fn limits_decide_early_and_every_span_is_accounted_for() {
        let buffer = TailBuffer::new(limits());
        for trace in 0..10u128 {
            buffer.offer(trace as u32, facts(trace, false, false), 0.0);
        }
        for i in 0..5u32 {
            buffer.offer(100 + i, facts(9, false, false), 0.0);
        }
        let (traces, spans, _, _, early_spans) = buffer.sizes();
        assert!(traces <= 3);
        assert_eq!(spans + early_spans, 15);
        assert!(buffer.evicted_early.load(Relaxed) >= 8);
        let early = buffer.take_early();
        assert!(early.iter().any(|(id, t)| *id == 9 && t.spans.len() == 4), "a full trace is decided early");
    }
}
