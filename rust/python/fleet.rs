//! The fleet worker's calls into a sampler or processor: the steps to send,
//! their replies (or failures), the fork reset and the status. The worker
//! itself (`tracesieve.fleet`, Python) does the I/O; the logic is in Rust.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors;
use crate::clock::Moment;
use crate::config::ConfigError;
use crate::plan::Plan;
use crate::store::fleet::{FleetSettings, FleetStatus, Member};

/// The fleet members of a plan, by kind.
pub fn plan_members(plan: &Plan) -> Vec<(&'static str, &dyn Member)> {
    let mut members: Vec<(&'static str, &dyn Member)> = Vec::new();
    if let Some(pacer) = plan.pacer() {
        members.push(("budget", pacer));
    }
    if let Some(bucket) = plan.rate_limit() {
        members.push(("rate_limit", bucket));
    }
    if let Some(booster) = plan.booster() {
        members.push(("signals", &*booster.signals));
    }
    members
}

/// The fleet a plan's stages share: the first fleet store among them.
pub fn plan_fleet(plan: &Plan) -> Option<&FleetSettings> {
    plan.pacer()
        .and_then(|p| p.store().fleet())
        .or_else(|| plan.rate_limit().and_then(|b| b.store().fleet()))
        .or_else(|| plan.booster().and_then(|b| b.signals.store().fleet()))
}

/// `(connect_url, interval)` for the worker, or None outside a fleet.
pub fn connection(fleet: Option<&FleetSettings>) -> Option<(String, f64)> {
    fleet.map(|f| (f.connect_url().to_owned(), f.interval))
}

/// `[(kind, script, keys, args)]`: the steps to send now.
pub fn requests<'py>(py: Python<'py>, members: &[(&'static str, &dyn Member)], now: &Moment) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for (kind, member) in members {
        if let Some(request) = member.fleet_request(now) {
            out.append((*kind, request.script, request.keys, request.args))?;
        }
    }
    Ok(out)
}

/// Hand `kind`'s reply to its stage (None: the step failed for `reason`).
/// Returns why a reply was refused (then the step counts as failed), if it was.
pub fn reply(
    members: &[(&'static str, &dyn Member)],
    kind: &str,
    reply: Option<Vec<String>>,
    reason: &str,
    now: &Moment,
) -> Option<String> {
    let (_, member) = members.iter().find(|(k, _)| *k == kind)?;
    let refused = match reply {
        Some(reply) => member.fleet_reply(&reply, now).err().map(|why| format!("Redis answered unexpected data: {why}")),
        None => Some(reason.to_owned()),
    };
    if let Some(why) = &refused {
        member.fleet_failed(now, why.clone());
    }
    refused
}

pub fn after_fork(members: &[(&'static str, &dyn Member)]) {
    for (_, member) in members {
        member.fleet_after_fork();
    }
}

/// `{kind: {...}}` for `store_info()["fleet"]`, or None outside a fleet.
pub fn status<'py>(py: Python<'py>, members: &[(&'static str, &dyn Member)], now: &Moment) -> PyResult<Option<Bound<'py, PyDict>>> {
    let mut out = None;
    for (kind, member) in members {
        if let Some(status) = member.fleet_status(now) {
            out.get_or_insert_with(|| PyDict::new(py)).set_item(kind, status_dict(py, &status)?)?;
        }
    }
    Ok(out)
}

fn status_dict<'py>(py: Python<'py>, s: &FleetStatus) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("syncs", s.syncs)?;
    out.set_item("failures", s.failures)?;
    out.set_item("degraded", s.degraded)?;
    out.set_item("degraded_seconds", s.degraded_seconds)?;
    out.set_item("fallback_share", s.share)?;
    out.set_item("lease_left", s.lease_left)?;
    out.set_item("lease_valid", s.lease_valid)?;
    out.set_item("members", s.members)?;
    out.set_item("problem", &s.problem)?;
    out.set_item("repairs", s.repairs)?;
    Ok(out)
}

/// The server-side scripts, by name.
#[pyfunction]
pub fn fleet_scripts<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, source) in crate::store::fleet::SCRIPTS {
        out.set_item(name, source)?;
    }
    Ok(out)
}

/// A Redis URL given for `field` (such as the tail processor's `share`):
/// (the URL for the client, credentials included; the URL as shown, password
/// hidden; the fleet's key for `piece`). A bad URL is a ConfigError naming `field`.
#[pyfunction]
pub fn redis_target(text: &str, field: &str, piece: &str) -> PyResult<(String, String, String)> {
    let settings = FleetSettings::parse(text).map_err(|e| errors::config_error(ConfigError::new(field, e.message)))?;
    // The fleet store's own options mean nothing here: refuse them rather than ignore them.
    let url = url::Url::parse(text).map_err(|e| errors::config_message(format!("{field}: {e}")))?;
    if let Some((key, _)) = url.query_pairs().find(|(key, _)| key == "interval" || key == "fallback_share") {
        return Err(errors::config_error(ConfigError::new(
            field,
            format!("{:?} has {key}=, an option of fleet stores; expected a URL without it", settings.shown()),
        )));
    }
    Ok((settings.connect_url().to_owned(), settings.shown().to_owned(), settings.key(piece)))
}
