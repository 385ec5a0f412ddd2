//! Tail decisions on recorded spans: the tail buffer the tail processor uses,
//! holding byte records; local roots judged natively (latency, keep rules);
//! due traces settled (an error, a keep, the head's keep, or a drop); the
//! records of dropped traces retained for keeps that come after the fact.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::record::SpanRecord;
use super::ring::{Record, Ring};
use super::view::RecordView;
use crate::rules::{Action, RuleSet};
use crate::tail_buffer::{self, Facts, Mark, Offer, Retention, Settled, TailBuffer, Trace};
use crate::threshold::{adjusted_count, threshold_for_probability, DEFAULT_PRECISION, RANDOMNESS_MASK};

/// What keeps a trace besides an error and the head: a slow local root, a rule.
#[derive(Default)]
pub struct Judge {
    /// Nanoseconds at or above which a local root makes its trace slow.
    pub latency_ns: Option<u64>,
    /// The probability slow traces are kept with (consistently, by trace id).
    pub latency_probability: f64,
    /// Keep rules on the local root's final name, kind and attributes.
    pub rules: Option<Arc<RuleSet>>,
}

pub struct Engine {
    pub buffer: TailBuffer<Record>,
    pub ring: Option<Arc<Ring>>,
    judge: Judge,
    latency_threshold: Option<u64>,
    /// Traces kept, by the first part of their reason (head, error, latency, rule, shared, captured).
    kept: Mutex<HashMap<String, u64>>,
    /// Records that could not be read back (never expected: counted, not kept).
    pub unreadable: AtomicU64,
}

impl Engine {
    pub fn new(limits: tail_buffer::Limits, sharing: Option<tail_buffer::Sharing>, retention_bytes: usize, judge: Judge) -> Engine {
        let judging = judge.latency_ns.is_some() || judge.rules.is_some();
        let buffer = TailBuffer::new(limits, sharing).judging_roots(judging);
        let ring = (retention_bytes > 0).then(|| Arc::new(Ring::new(retention_bytes)));
        buffer.set_retention(ring.clone().map(|ring| ring as Arc<dyn Retention<Record>>));
        let latency_threshold =
            (judge.latency_probability > 0.0).then(|| threshold_for_probability(judge.latency_probability.min(1.0), DEFAULT_PRECISION));
        Engine { buffer, ring, judge, latency_threshold, kept: Mutex::new(HashMap::new()), unreadable: AtomicU64::new(0) }
    }

    /// What the buffer needs to know of a span.
    pub fn facts(record: &SpanRecord) -> Facts {
        Facts {
            trace_id: record.trace_id,
            sampled: record.flags & 1 == 1,
            error: record.error,
            local_root: record.parent.as_ref().is_none_or(|p| p.remote),
        }
    }

    /// A span ended: its record and what the buffer needs to know.
    pub fn offer(&self, record: &SpanRecord, now: f64) -> Offer {
        self.offer_encoded(record.encode().into_boxed_slice(), Engine::facts(record), now)
    }

    /// A span ended, already encoded.
    pub fn offer_encoded(&self, record: Record, facts: Facts, now: f64) -> Offer {
        self.buffer.offer(record, facts, now)
    }

    /// Judge the local roots that ended since the last call, so that a keep is
    /// known (and announced) at once rather than when the trace is due.
    pub fn judge_roots(&self) {
        for (trace_id, root) in self.buffer.take_fresh_roots(Clone::clone) {
            let Some(root) = self.read(&root) else { continue };
            if let Some((reason, weight)) = self.root_verdict(trace_id, &root) {
                self.buffer.keep(trace_id, &reason, weight);
            }
        }
    }

    /// Decide the traces that are due (or all of them), queueing what is kept.
    pub fn decide(&self, now: f64, wait: f64, timeout: f64, everything: bool) {
        self.judge_roots();
        let due = if everything { self.buffer.take_all() } else { self.buffer.take_due(now, wait, timeout) };
        for (trace_id, trace) in due {
            let verdict = self.verdict(trace_id, &trace);
            let head = trace.head_sampled;
            if self.buffer.settle(trace_id, trace.spans, verdict, head) == Settled::Kept {
                if let Some(mark) = verdict {
                    let reason = self.buffer.reason_text(mark.reason);
                    let class = reason.split(':').next().unwrap_or("other").to_owned();
                    *self.kept.lock().unwrap_or_else(|p| p.into_inner()).entry(class).or_default() += 1;
                }
            }
        }
    }

    /// Keep a trace after the fact (see `TailBuffer::capture`); a trace kept
    /// from retention counts as kept for "captured" (a pending one counts
    /// when it is decided).
    pub fn capture(&self, trace_id: u128) -> tail_buffer::Capture {
        let outcome = self.buffer.capture(trace_id, "captured");
        if matches!(outcome, tail_buffer::Capture::Retained(_)) {
            *self.kept.lock().unwrap_or_else(|p| p.into_inner()).entry("captured".to_owned()).or_default() += 1;
        }
        outcome
    }

    /// Traces kept so far, by the first part of their reason.
    pub fn kept_by_reason(&self) -> Vec<(String, u64)> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, u64)> = kept.iter().map(|(k, v)| (k.clone(), *v)).collect();
        out.sort();
        out
    }

    fn read(&self, bytes: &[u8]) -> Option<SpanRecord> {
        let record = SpanRecord::decode(bytes);
        if record.is_none() {
            self.unreadable.fetch_add(1, Relaxed);
        }
        record
    }

    /// A keep decided on the local root alone: slow (kept with the latency
    /// probability, consistently by trace id), or matching a keep rule.
    fn root_verdict(&self, trace_id: u128, root: &SpanRecord) -> Option<(String, f64)> {
        if let (Some(latency), Some(threshold)) = (self.judge.latency_ns, self.latency_threshold) {
            if root.end_time.saturating_sub(root.start_time) >= latency && (trace_id as u64 & RANDOMNESS_MASK) >= threshold {
                return Some(("latency".to_owned(), 1.0 / self.judge.latency_probability));
            }
        }
        if let Some(rules) = &self.judge.rules {
            let view = RecordView { record: root, keys: &rules.keys };
            let (index, action) = rules.first_match(&view);
            if index < rules.rules.len() && action == Action::Keep {
                return Some((format!("rule:{}", rules.rule_name(index)), 1.0));
            }
        }
        None
    }

    /// Why a due trace is kept (None: dropped), and how many traces each of its
    /// spans stands for: 1 over the likeliest way such a trace is kept.
    fn verdict(&self, trace_id: u128, trace: &Trace<Record>) -> Option<Mark> {
        if trace.error {
            return Some(Mark::ERROR);
        }
        let mut keep = trace.keep;
        if keep.is_none() && !trace.root_judged {
            if let Some(root) = trace.root.and_then(|i| self.read(&trace.spans[i])) {
                keep = self.root_verdict(trace_id, &root).map(|(reason, weight)| Mark { reason: self.buffer.reason(&reason), weight });
            }
        }
        if let Some(mut mark) = keep {
            if trace.head_sampled && mark.weight > 1.0 {
                // Kept by the head too, drawn from the same randomness: the likelier of the two.
                if let Some(threshold) = trace.spans.first().and_then(|first| self.read(first)).and_then(|r| r.threshold()) {
                    mark.weight = mark.weight.min(adjusted_count(threshold));
                }
            }
            return Some(mark);
        }
        trace.head_sampled.then_some(Mark::HEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::record::{Parent, SpanRecord};
    use crate::recording::value::Value;

    fn limits() -> tail_buffer::Limits {
        tail_buffer::Limits { max_traces: 100, max_spans_per_trace: 100, decision_cache: 100, max_queue: 100 }
    }

    fn span(trace_id: u128, span_id: u64, parent: Option<u64>, duration_ms: u64) -> SpanRecord {
        SpanRecord {
            trace_id,
            span_id,
            parent: parent.map(|p| Parent { span_id: p, ..Parent::default() }),
            name: "GET /orders".into(),
            start_name: "GET /orders".into(),
            start_time: 1_000_000_000,
            end_time: 1_000_000_000 + duration_ms * 1_000_000,
            kind: 1,
            ..SpanRecord::default()
        }
    }

    fn queued(engine: &Engine) -> Vec<(u64, String)> {
        engine
            .buffer
            .take_batch(100)
            .into_iter()
            .map(|q| (SpanRecord::decode(&q.span).unwrap().span_id, engine.buffer.reason_text(q.mark.reason)))
            .collect()
    }

    #[test]
    fn errors_slow_roots_and_rules_keep_whole_traces_and_the_rest_is_retained() {
        let rules = crate::rules::parse(
            &crate::data::Data::List(vec![crate::data::Data::Map(vec![
                ("name".into(), crate::data::Data::Str("vip".into())),
                ("match".into(), crate::data::Data::Map(vec![("tier".into(), crate::data::Data::Str("gold".into()))])),
                ("action".into(), crate::data::Data::Str("keep".into())),
            ])]),
            0.0,
            &crate::data::Data::List(vec![]),
        )
        .unwrap();
        let judge = Judge { latency_ns: Some(500_000_000), latency_probability: 1.0, rules: Some(Arc::new(rules)) };
        let engine = Engine::new(limits(), None, 1 << 20, judge);
        // Trace 1: an error in a child. Trace 2: a slow root. Trace 3: a gold customer. Trace 4: nothing.
        let mut failing = span(1, 11, Some(10), 10);
        failing.set_status(crate::recording::record::ERROR, Some("boom".into()));
        engine.offer(&failing, 0.0);
        engine.offer(&span(1, 10, None, 10), 0.0);
        engine.offer(&span(2, 20, None, 800), 0.0);
        let mut gold = span(3, 30, None, 10);
        gold.attributes.push(("tier".into(), Value::Str("gold".into())));
        engine.offer(&gold, 0.0);
        engine.offer(&span(4, 40, None, 10), 0.0);
        engine.decide(10.0, 2.0, 30.0, false);
        let kept = queued(&engine);
        assert_eq!(kept, vec![(11, "error".into()), (10, "error".into()), (20, "latency".into()), (30, "rule:vip".into())]);
        assert_eq!(engine.ring.as_ref().unwrap().sizes().0, 1, "trace 4 is retained");
        assert_eq!(engine.buffer.capture(4, "captured"), tail_buffer::Capture::Retained(1));
        assert_eq!(queued(&engine), vec![(40, "captured".into())]);
        assert_eq!(engine.kept_by_reason(), vec![("error".into(), 1), ("latency".into(), 1), ("rule".into(), 1)]);
    }

    #[test]
    fn a_remote_parent_makes_a_local_root() {
        let engine = Engine::new(limits(), None, 0, Judge { latency_ns: Some(1), latency_probability: 1.0, rules: None });
        let mut child = span(5, 50, Some(9), 10);
        child.parent.as_mut().unwrap().remote = true;
        engine.offer(&child, 0.0);
        engine.decide(3.0, 2.0, 30.0, false);
        assert_eq!(queued(&engine), vec![(50, "latency".into())]);
        assert!(engine.ring.is_none());
    }
}
