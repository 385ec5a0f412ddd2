//! A rate limit in a fleet: the token bucket lives in Redis, refilled by the
//! server's clock, and each process spends a slice of its tokens (a `Lease`)
//! that a worker renews. Tokens are minted only in Redis, so the fleet keeps
//! at most R·t + burst + the tokens leased out when a window starts.

use std::sync::atomic::{AtomicU64, Ordering::*};

use super::TokenBucket;
use crate::clock::Moment;
use crate::store::fleet::{count, parse_reply, FleetSettings, FleetStatus, Lease, Link, Member, Request, MIN_REQUEST};

/// A request covers this many spacings between steps of this process's takes.
const HORIZON: f64 = 3.0;

#[derive(Debug)]
pub struct BucketFleet {
    key: String,
    settings: String,
    pub(super) lease: Lease,
    link: Link,
    /// Tokens asked for here (taken or refused), in all; and at the last step.
    /// Leases are sized by what is asked, so a burst is served at the next step.
    pub(super) wanted: AtomicU64,
    wanted_before: AtomicU64,
    request: AtomicU64,
}

impl BucketFleet {
    pub fn new(fleet: &FleetSettings, settings: String) -> BucketFleet {
        BucketFleet {
            key: fleet.key("rate_limit"),
            settings,
            lease: Lease::default(),
            link: Link::new(fleet.interval, fleet.fallback_share),
            wanted: AtomicU64::new(0),
            wanted_before: AtomicU64::new(0),
            request: AtomicU64::new(0),
        }
    }
}

impl Member for TokenBucket {
    fn fleet_request(&self, now: &Moment) -> Option<Request> {
        let fleet = self.fleet.as_ref()?;
        let mono = now.monotonic();
        let spacing = fleet.link.begin(mono);
        let wanted = fleet.wanted.load(Acquire);
        let recent = wanted.saturating_sub(fleet.wanted_before.swap(wanted, AcqRel)) as f64 / spacing;
        // Enough for the next few steps at the rate asked for recently, less
        // what is held, never more than the bucket holds.
        let wanted = (recent * HORIZON * spacing).max(MIN_REQUEST).min(self.burst.max(MIN_REQUEST));
        let held = if fleet.lease.valid(mono) { fleet.lease.left() as f64 } else { 0.0 };
        let request = (wanted - held).max(0.0).ceil();
        fleet.request.store(request as u64, Release);
        Some(Request {
            script: "rate_limit",
            keys: vec![fleet.key.clone()],
            args: vec![
                fleet.settings.clone(),
                fleet.link.id(),
                format!("{}", self.rate),
                format!("{}", self.burst),
                format!("{request}"),
                fleet.link.server_lease_ms().to_string(),
            ],
        })
    }

    fn fleet_reply(&self, reply: &[String], now: &Moment) -> Result<(), String> {
        let Some(fleet) = &self.fleet else { return Ok(()) };
        let mono = now.monotonic();
        let numbers = parse_reply(reply, 2, &fleet.link)?;
        let grant = count(numbers[0], fleet.request.load(Acquire) as f64, "the grant")?;
        let members = count(numbers[1], 1e6, "the member count")?.max(1);
        if !fleet.lease.valid(mono) {
            fleet.lease.clear(); // expired tokens are not spent later
        }
        fleet.lease.extend(grant, fleet.link.lease_deadline());
        fleet.link.succeeded(mono, 1.0 / members as f64, members, 1.0);
        Ok(())
    }

    /// The step failed: spend the lease while valid, then this process's share.
    fn fleet_failed(&self, now: &Moment, reason: String) {
        if let Some(fleet) = &self.fleet {
            fleet.link.failed(&fleet.lease, now.monotonic(), self.rate, self.burst, reason);
        }
    }

    fn fleet_after_fork(&self) {
        if let Some(fleet) = &self.fleet {
            fleet.link.after_fork(&fleet.lease);
        }
    }

    fn fleet_status(&self, now: &Moment) -> Option<FleetStatus> {
        self.fleet.as_ref().map(|fleet| fleet.link.status(&fleet.lease, now.monotonic()))
    }
}
