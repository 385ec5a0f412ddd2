//! One span, recorded: built up by the span's calls while it runs, with the
//! SDK's limits and status rules, then encoded at `end` into one compact byte
//! record. Attributes are held as the SDK's `BoundedAttributes` holds them
//! (each key once, at its last position, the oldest going beyond the limit);
//! the attributes the span started with are remembered too (usually as a
//! prefix of those, copied only when a later call changes one), so that a kept
//! span can be replayed into the SDK's own span exactly: processors'
//! `on_start` sees what it would have seen, `on_end` the final state.

use super::value::Value;
use super::wire::{Reader, Writer};

/// The SDK's `SpanLimits`, resolved (None: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_attributes: Option<usize>,
    pub max_events: Option<usize>,
    pub max_links: Option<usize>,
    pub max_event_attributes: Option<usize>,
    pub max_link_attributes: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attributes: Some(128),
            max_events: Some(128),
            max_links: Some(128),
            max_event_attributes: Some(128),
            max_link_attributes: Some(128),
        }
    }
}

pub type Attributes = Vec<(String, Value)>;
pub type TraceState = Vec<(String, String)>;

/// Span kinds by the SDK's `SpanKind.value`.
pub const KINDS: usize = 5;

/// Status codes by the SDK's `StatusCode.value`.
pub const UNSET: u8 = 0;
pub const OK: u8 = 1;
pub const ERROR: u8 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub time: u64,
    pub attributes: Attributes,
    pub dropped: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
    pub remote: bool,
    pub trace_state: TraceState,
    pub attributes: Attributes,
    pub dropped: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parent {
    pub span_id: u64,
    pub flags: u8,
    pub remote: bool,
    pub trace_state: TraceState,
}

/// A span's record: what the SDK would export for it, and what its replay needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanRecord {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
    pub trace_state: TraceState,
    pub parent: Option<Parent>,
    /// Which of the provider's tracers made it (its resource and scope).
    pub tracer: u32,
    pub kind: u8,
    /// The name at start; `name` is the final one.
    pub start_name: String,
    pub name: String,
    pub start_time: u64,
    pub end_time: u64,
    /// The attributes now, as `BoundedAttributes` holds them.
    pub attributes: Attributes,
    /// Attributes dropped (invalid keys, and the oldest beyond the limit).
    pub dropped: u32,
    /// What the span started with: the first `start_len` of `attributes`,
    /// or (once a later call changed one of those) a copy.
    pub start_copy: Option<Attributes>,
    pub start_len: u32,
    pub start_dropped: u32,
    /// How many of `attributes`, from the front, are start attributes no call
    /// has set again: the rest were set later, in the order last set (what a
    /// replay sets after processors' `on_start`).
    pub untouched: u32,
    /// Attributes the later calls pushed out at the limit.
    pub later_evictions: u32,
    pub events: Vec<Event>,
    pub events_dropped: u32,
    pub links: Vec<Link>,
    pub links_dropped: u32,
    pub status: u8,
    pub status_description: Option<String>,
    /// The parent context's baggage at start (what processors' `on_start` read).
    pub baggage: TraceState,
    /// An error was recorded (an ERROR status or an exception event).
    pub error: bool,
}

impl SpanRecord {
    /// The attributes a span starts with (already bounded), and how many were dropped.
    pub fn start_with(&mut self, attributes: Attributes, dropped: u32) {
        self.start_len = attributes.len() as u32;
        self.untouched = self.start_len;
        self.later_evictions = 0;
        self.start_dropped = dropped;
        self.attributes = attributes;
        self.dropped = dropped;
        self.start_copy = None;
    }

    /// The attributes the span started with.
    pub fn start_attributes(&self) -> &[(String, Value)] {
        match &self.start_copy {
            Some(copy) => copy,
            None => &self.attributes[..(self.start_len as usize).min(self.attributes.len())],
        }
    }

    /// Before `attributes[position]` is removed: keep the start attributes if it is one of them.
    fn touch(&mut self, position: usize) {
        if position < self.untouched as usize {
            if self.start_copy.is_none() {
                self.start_copy = Some(self.attributes[..self.start_len as usize].to_vec());
            }
            self.untouched -= 1;
        }
    }

    /// The attributes set after start, each at its last setting, in that order.
    pub fn later_attributes(&self) -> &[(String, Value)] {
        &self.attributes[(self.untouched as usize).min(self.attributes.len())..]
    }

    /// Attributes the later calls dropped other than at the limit (invalid keys, a limit of 0).
    pub fn later_invalid(&self) -> u32 {
        self.dropped.saturating_sub(self.start_dropped).saturating_sub(self.later_evictions)
    }

    /// An attribute set after start, as `BoundedAttributes` sets it: the key
    /// moves to the end; at the limit the oldest goes (counted). True when
    /// one went (the SDK logs that).
    pub fn set_later(&mut self, key: String, value: Value, limits: &Limits) -> bool {
        if limits.max_attributes == Some(0) {
            self.dropped += 1;
            return false;
        }
        if let Some(position) = self.attributes.iter().position(|(k, _)| *k == key) {
            self.touch(position);
            self.attributes.remove(position);
        }
        let mut evicted = false;
        if limits.max_attributes.is_some_and(|max| self.attributes.len() >= max) && !self.attributes.is_empty() {
            self.touch(0);
            self.attributes.remove(0);
            self.dropped += 1;
            self.later_evictions += 1;
            evicted = true;
        }
        self.attributes.push((key, value));
        evicted
    }

    /// An event: beyond the limit the oldest goes, and is counted.
    pub fn add_event(&mut self, event: Event, limits: &Limits) {
        if event.attributes.iter().any(|(key, _)| key == EXCEPTION_TYPE) && event.name == "exception" {
            self.error = true;
        }
        push_bounded(&mut self.events, &mut self.events_dropped, event, limits.max_events);
    }

    pub fn add_link(&mut self, link: Link, limits: &Limits) {
        push_bounded(&mut self.links, &mut self.links_dropped, link, limits.max_links);
    }

    /// The SDK's status rules: once OK, final; UNSET never replaces.
    pub fn set_status(&mut self, code: u8, description: Option<String>) {
        if self.status == OK || code == UNSET {
            return;
        }
        self.status = code;
        self.status_description = if code == ERROR { description } else { None };
        if code == ERROR {
            self.error = true;
        }
    }

    /// The final value of an attribute (set later, else given at start).
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The `th` of the span's `ot` tracestate entry, if valid.
    pub fn threshold(&self) -> Option<u64> {
        let (_, ot) = self.trace_state.iter().find(|(key, _)| key == "ot")?;
        crate::ot_entry::read(ot).th
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::with_capacity(128);
        out.u128_fixed(self.trace_id);
        out.u64_fixed(self.span_id);
        out.byte(self.flags);
        write_pairs(&mut out, &self.trace_state);
        match &self.parent {
            None => out.byte(0),
            Some(parent) => {
                out.byte(1 | (u8::from(parent.remote) << 1));
                out.u64_fixed(parent.span_id);
                out.byte(parent.flags);
                write_pairs(&mut out, &parent.trace_state);
            }
        }
        out.unsigned(u64::from(self.tracer));
        out.byte(self.kind | (u8::from(self.error) << 4));
        out.text(&self.name);
        // The start name only when it differs (most spans keep theirs).
        if self.start_name == self.name {
            out.byte(0);
        } else {
            out.byte(1);
            out.text(&self.start_name);
        }
        out.unsigned(self.start_time);
        out.unsigned(self.end_time.saturating_sub(self.start_time));
        write_attributes(&mut out, &self.attributes);
        out.unsigned(u64::from(self.dropped));
        match &self.start_copy {
            None => {
                out.byte(0);
                out.unsigned(u64::from(self.start_len));
            }
            Some(copy) => {
                out.byte(1);
                write_attributes(&mut out, copy);
                out.unsigned(u64::from(self.untouched));
            }
        }
        out.unsigned(u64::from(self.start_dropped));
        out.unsigned(u64::from(self.later_evictions));
        out.unsigned(self.events.len() as u64);
        for event in &self.events {
            out.text(&event.name);
            out.unsigned(event.time);
            write_attributes(&mut out, &event.attributes);
            out.unsigned(u64::from(event.dropped));
        }
        out.unsigned(u64::from(self.events_dropped));
        out.unsigned(self.links.len() as u64);
        for link in &self.links {
            out.u128_fixed(link.trace_id);
            out.u64_fixed(link.span_id);
            out.byte(link.flags);
            out.byte(u8::from(link.remote));
            write_pairs(&mut out, &link.trace_state);
            write_attributes(&mut out, &link.attributes);
            out.unsigned(u64::from(link.dropped));
        }
        out.unsigned(u64::from(self.links_dropped));
        out.byte(self.status);
        match &self.status_description {
            None => out.byte(0),
            Some(text) => {
                out.byte(1);
                out.text(text);
            }
        }
        write_pairs(&mut out, &self.baggage);
        out.finish()
    }

    pub fn decode(bytes: &[u8]) -> Option<SpanRecord> {
        let mut input = Reader::new(bytes);
        let trace_id = input.u128_fixed()?;
        let span_id = input.u64_fixed()?;
        let flags = input.byte()?;
        let trace_state = read_pairs(&mut input)?;
        let parent = match input.byte()? {
            0 => None,
            tag => Some(Parent {
                remote: tag & 2 != 0,
                span_id: input.u64_fixed()?,
                flags: input.byte()?,
                trace_state: read_pairs(&mut input)?,
            }),
        };
        let tracer = u32::try_from(input.unsigned()?).ok()?;
        let kind_byte = input.byte()?;
        let name = input.text()?;
        let start_name = match input.byte()? {
            0 => name.clone(),
            _ => input.text()?,
        };
        let start_time = input.unsigned()?;
        let end_time = start_time.checked_add(input.unsigned()?)?;
        let attributes = read_attributes(&mut input)?;
        let dropped = u32::try_from(input.unsigned()?).ok()?;
        let (start_copy, start_len, untouched) = match input.byte()? {
            0 => {
                let start_len = u32::try_from(input.unsigned()?).ok().filter(|n| *n as usize <= attributes.len())?;
                (None, start_len, start_len)
            }
            _ => {
                let copy = read_attributes(&mut input)?;
                let untouched = u32::try_from(input.unsigned()?).ok().filter(|n| *n as usize <= attributes.len().min(copy.len()))?;
                let start_len = copy.len() as u32;
                (Some(copy), start_len, untouched)
            }
        };
        let start_dropped = u32::try_from(input.unsigned()?).ok()?;
        let later_evictions = u32::try_from(input.unsigned()?).ok()?;
        let event_count = input.count()?;
        let mut events = Vec::with_capacity(event_count);
        for _ in 0..event_count {
            events.push(Event {
                name: input.text()?,
                time: input.unsigned()?,
                attributes: read_attributes(&mut input)?,
                dropped: u32::try_from(input.unsigned()?).ok()?,
            });
        }
        let events_dropped = u32::try_from(input.unsigned()?).ok()?;
        let link_count = input.count()?;
        let mut links = Vec::with_capacity(link_count);
        for _ in 0..link_count {
            links.push(Link {
                trace_id: input.u128_fixed()?,
                span_id: input.u64_fixed()?,
                flags: input.byte()?,
                remote: input.byte()? != 0,
                trace_state: read_pairs(&mut input)?,
                attributes: read_attributes(&mut input)?,
                dropped: u32::try_from(input.unsigned()?).ok()?,
            });
        }
        let links_dropped = u32::try_from(input.unsigned()?).ok()?;
        let status = input.byte()?;
        let status_description = match input.byte()? {
            0 => None,
            _ => Some(input.text()?),
        };
        let baggage = read_pairs(&mut input)?;
        if !input.is_empty() {
            return None;
        }
        Some(SpanRecord {
            trace_id,
            span_id,
            flags,
            trace_state,
            parent,
            tracer,
            kind: kind_byte & 0x0f,
            start_name,
            name,
            start_time,
            end_time,
            attributes,
            dropped,
            start_copy,
            start_len,
            start_dropped,
            untouched,
            later_evictions,
            events,
            events_dropped,
            links,
            links_dropped,
            status,
            status_description,
            baggage,
            error: kind_byte & 0x10 != 0,
        })
    }
}

/// Attributes as the SDK's `BoundedAttributes` keeps them when they are set
/// in this order: each key once, at its last position, the oldest going
/// beyond `max` (counted in the second value).
pub fn bounded(attributes: Attributes, max: Option<usize>) -> (Attributes, u32) {
    let mut out: Attributes = Vec::with_capacity(attributes.len().min(max.unwrap_or(usize::MAX)));
    let mut dropped = 0;
    for (key, value) in attributes {
        if max == Some(0) {
            dropped += 1;
            continue;
        }
        if let Some(position) = out.iter().position(|(k, _)| *k == key) {
            out.remove(position);
        }
        if max.is_some_and(|max| out.len() >= max) {
            out.remove(0);
            dropped += 1;
        }
        out.push((key, value));
    }
    (out, dropped)
}

/// The attribute an exception event carries its type in.
pub const EXCEPTION_TYPE: &str = "exception.type";

fn push_bounded<T>(items: &mut Vec<T>, dropped: &mut u32, item: T, max: Option<usize>) {
    match max {
        Some(0) => *dropped += 1,
        Some(max) if items.len() >= max => {
            items.remove(0);
            items.push(item);
            *dropped += 1;
        }
        _ => items.push(item),
    }
}

fn write_pairs(out: &mut Writer, pairs: &[(String, String)]) {
    out.unsigned(pairs.len() as u64);
    for (key, value) in pairs {
        out.text(key);
        out.text(value);
    }
}

fn read_pairs(input: &mut Reader<'_>) -> Option<Vec<(String, String)>> {
    let count = input.count()?;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        pairs.push((input.text()?, input.text()?));
    }
    Some(pairs)
}

fn write_attributes(out: &mut Writer, attributes: &Attributes) {
    out.unsigned(attributes.len() as u64);
    for (key, value) in attributes {
        out.text(key);
        value.encode(out);
    }
}

fn read_attributes(input: &mut Reader<'_>) -> Option<Attributes> {
    let count = input.count()?;
    let mut attributes = Vec::with_capacity(count);
    for _ in 0..count {
        let key = input.text()?;
        attributes.push((key, Value::decode(input)?));
    }
    Some(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> SpanRecord {
        SpanRecord {
            trace_id: 0x0123456789abcdef0123456789abcdef,
            span_id: 42,
            flags: 3,
            trace_state: vec![("ot".into(), "th:c".into())],
            parent: Some(Parent { span_id: 7, flags: 1, remote: true, trace_state: vec![("vendor".into(), "v".into())] }),
            tracer: 2,
            kind: 1,
            start_name: "GET".into(),
            name: "GET /orders".into(),
            start_time: 1_700_000_000_000_000_000,
            end_time: 1_700_000_000_250_000_000,
            attributes: vec![("http.method".into(), Value::Str("GET".into())), ("http.status_code".into(), Value::Int(200))],
            dropped: 4,
            start_copy: None,
            start_len: 1,
            start_dropped: 3,
            untouched: 1,
            later_evictions: 0,
            events: vec![Event { name: "cache miss".into(), time: 1_700_000_000_100_000_000, attributes: vec![], dropped: 0 }],
            events_dropped: 0,
            links: vec![Link {
                trace_id: 9,
                span_id: 8,
                flags: 1,
                remote: false,
                trace_state: vec![],
                attributes: vec![("k".into(), Value::Bool(true))],
                dropped: 0,
            }],
            links_dropped: 2,
            status: ERROR,
            status_description: Some("boom".into()),
            baggage: vec![("tenant".into(), "acme".into())],
            error: true,
        }
    }

    #[test]
    fn a_record_round_trips() {
        let record = sample();
        assert_eq!(SpanRecord::decode(&record.encode()), Some(record));
        let mut plain = sample();
        plain.start_name = plain.name.clone();
        plain.parent = None;
        plain.status_description = None;
        plain.start_copy = Some(vec![("http.method".into(), Value::Str("POST".into()))]);
        plain.untouched = 0;
        assert_eq!(SpanRecord::decode(&plain.encode()), Some(plain));
    }

    #[test]
    fn a_truncated_record_is_refused() {
        let bytes = sample().encode();
        for cut in [0, 1, 20, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(SpanRecord::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn attributes_behave_as_bounded_attributes_and_the_start_stays_known() {
        let limits = Limits { max_attributes: Some(3), ..Limits::default() };
        let mut record = SpanRecord::default();
        record.start_with(vec![("s1".into(), Value::Int(1)), ("s2".into(), Value::Int(2))], 1);
        assert!(!record.set_later("a".into(), Value::Int(3), &limits));
        assert!(record.start_copy.is_none(), "a new key leaves the start a prefix");
        assert!(!record.set_later("a".into(), Value::Int(4), &limits), "an existing key moves, nothing goes");
        assert!(record.set_later("b".into(), Value::Int(5), &limits), "at the limit the oldest goes");
        let keys = |attributes: &[(String, Value)]| attributes.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&record.attributes), vec!["s2", "a", "b"]);
        assert_eq!(keys(record.start_attributes()), vec!["s1", "s2"], "the start survives the eviction");
        assert_eq!((record.dropped, record.start_dropped, record.later_evictions, record.later_invalid()), (2, 1, 1, 0));
        assert_eq!(keys(record.later_attributes()), vec!["a", "b"]);
        record.set_later("s2".into(), Value::Int(6), &limits);
        assert_eq!(keys(&record.attributes), vec!["a", "b", "s2"]);
        assert_eq!(keys(record.later_attributes()), vec!["a", "b", "s2"], "set again: later now");
        assert_eq!(record.attribute("s2"), Some(&Value::Int(6)));
        assert_eq!(SpanRecord::decode(&record.encode()).unwrap().start_attributes(), record.start_attributes());
        let mut unlimited = SpanRecord::default();
        unlimited.start_with(vec![("s".into(), Value::Int(1))], 0);
        unlimited.set_later("s".into(), Value::Int(2), &Limits { max_attributes: None, ..limits });
        assert_eq!(unlimited.start_attributes(), &[("s".to_owned(), Value::Int(1))]);
        let mut none = SpanRecord::default();
        assert!(!none.set_later("x".into(), Value::Int(1), &Limits { max_attributes: Some(0), ..limits }));
        assert_eq!((none.attributes.len(), none.dropped), (0, 1));
    }

    #[test]
    fn status_follows_the_sdks_rules() {
        let mut record = SpanRecord::default();
        record.set_status(ERROR, Some("first".into()));
        assert_eq!((record.status, record.status_description.as_deref(), record.error), (ERROR, Some("first"), true));
        record.set_status(UNSET, None);
        assert_eq!(record.status, ERROR, "UNSET never replaces");
        record.set_status(OK, Some("ignored".into()));
        assert_eq!((record.status, record.status_description.as_deref()), (OK, None), "OK carries no description");
        record.set_status(ERROR, Some("late".into()));
        assert_eq!(record.status, OK, "once OK, final");
    }

    #[test]
    fn events_and_links_keep_the_newest_within_their_limits() {
        let limits = Limits { max_events: Some(2), max_links: Some(0), ..Limits::default() };
        let mut record = SpanRecord::default();
        for i in 0..5 {
            record.add_event(Event { name: format!("e{i}"), time: i, attributes: vec![], dropped: 0 }, &limits);
        }
        assert_eq!(record.events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), vec!["e3", "e4"]);
        assert_eq!(record.events_dropped, 3);
        record.add_link(
            Link { trace_id: 1, span_id: 1, flags: 0, remote: false, trace_state: vec![], attributes: vec![], dropped: 0 },
            &limits,
        );
        assert_eq!((record.links.len(), record.links_dropped), (0, 1));
    }
}
