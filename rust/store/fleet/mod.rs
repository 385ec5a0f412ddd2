//! A fleet store: state shared by processes on many hosts through Redis.
//!
//! Nothing on the hot path talks to Redis. A stage spends a local `Lease`
//! with atomics; a background worker (Python, `tracesieve.fleet`, the only
//! code that does I/O) asks each stage for a `Request`, runs it as one
//! server-side script call, and hands the reply back. The stage renews its
//! lease, learns the fleet's figures, and reports its own. When Redis cannot
//! be reached, `Link` degrades the stage to a conservative local share.

pub mod lease;
pub mod settings;

pub use lease::{FleetStatus, Lease, Link, MIN_REQUEST};
pub use settings::FleetSettings;

use crate::clock::Moment;

/// A stage that keeps its state with a fleet: the worker's side of it.
pub trait Member {
    /// The step to send now (None: the stage is not in a fleet).
    fn fleet_request(&self, now: &Moment) -> Option<Request>;
    /// The reply to the step in flight; an unexpected reply is an error (and
    /// the caller then reports the step as failed).
    fn fleet_reply(&self, reply: &[String], now: &Moment) -> Result<(), String>;
    /// The step failed (`reason` names no credential).
    fn fleet_failed(&self, now: &Moment, reason: String);
    /// In a forked child: a new member, holding nothing.
    fn fleet_after_fork(&self);
    fn fleet_status(&self, now: &Moment) -> Option<FleetStatus>;
}

/// One script call a stage asks of the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Which script (`SCRIPTS`).
    pub script: &'static str,
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

/// The server-side scripts, by name: each is one atomic step of one kind of
/// piece (or a reading of one), after the prelude every script shares.
pub const SCRIPTS: [(&str, &str); 4] = [
    ("budget", concat!(include_str!("prelude.lua"), include_str!("taken_over.lua"), include_str!("budget.lua"))),
    // Read only, for `tracesieve check`: no member's step.
    ("budget_read", concat!(include_str!("prelude.lua"), include_str!("taken_over.lua"), include_str!("budget_read.lua"))),
    ("rate_limit", concat!(include_str!("prelude.lua"), include_str!("refused.lua"), include_str!("rate_limit.lua"))),
    ("signals", concat!(include_str!("prelude.lua"), include_str!("refused.lua"), include_str!("signals.lua"))),
];

/// Read a script's reply: `["ok", repaired, numbers...]` with at least
/// `expected` numbers, each finite; `repaired` (values in Redis the script
/// found invalid and repaired or ignored) is counted on `link`. A refusal
/// (`["conflict", settings]`) or anything else is an error: a Redis answering
/// unexpected data is treated as down.
pub fn parse_reply(reply: &[String], expected: usize, link: &Link) -> Result<Vec<f64>, String> {
    let numbers = parse_numbers(reply, expected + 1)?;
    link.repaired(count(numbers[0], 1e9, "the repaired count")?);
    Ok(numbers[1..].to_vec())
}

fn parse_numbers(reply: &[String], expected: usize) -> Result<Vec<f64>, String> {
    match reply.first().map(String::as_str) {
        Some("ok") => {}
        Some("conflict") => {
            let theirs = reply.get(1).map(String::as_str).unwrap_or("?");
            let theirs: String = theirs.chars().take(400).collect();
            return Err(format!("the fleet's piece was made with other settings ({theirs})"));
        }
        _ => return Err(format!("an unexpected reply of {} items", reply.len())),
    }
    if reply.len() < expected + 1 {
        return Err(format!("a reply of {} numbers, expected {expected}", reply.len() - 1));
    }
    reply[1..]
        .iter()
        .map(|item| match item.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(format!("a reply item that is no number ({} characters)", item.len())),
        })
        .collect()
}

/// A whole, non-negative count from a reply, at most `max`.
pub fn count(x: f64, max: f64, what: &str) -> Result<u64, String> {
    if x >= 0.0 && x <= max && x.fract() == 0.0 {
        Ok(x as u64)
    } else {
        Err(format!("{what} out of range ({})", crate::words::plain(x)))
    }
}

#[cfg(test)]
mod tests;
