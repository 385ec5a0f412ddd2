//! Error windows in a fleet: at each step a process stores its own window
//! totals in Redis (valid for one lease) and learns the sum of every other
//! live process's, which its windows add to what they count themselves.

use super::Signals;
use crate::clock::Moment;
use crate::store::fleet::{count, parse_reply, FleetSettings, FleetStatus, Lease, Link, Member, Request};

#[derive(Debug)]
pub struct SignalsFleet {
    key: String,
    settings: String,
    link: Link,
    /// Never spent: the windows lease nothing (kept for the common status).
    lease: Lease,
}

impl SignalsFleet {
    pub fn new(fleet: &FleetSettings, settings: String) -> SignalsFleet {
        SignalsFleet { key: fleet.key("signals"), settings, link: Link::new(fleet.interval, fleet.fallback_share), lease: Lease::default() }
    }
}

impl Signals {
    /// Every window, in the order steps report them.
    fn windows(&self) -> impl Iterator<Item = &crate::window::SlidingWindow> {
        std::iter::once(&self.errors).chain(self.routes.iter().flat_map(|r| [&r.spans, &r.slow]))
    }
}

/// The windows keep their own clock; the `Moment` given is not read.
impl Member for Signals {
    fn fleet_request(&self, _now: &Moment) -> Option<Request> {
        let fleet = self.fleet.as_ref()?;
        let now = self.clock.monotonic();
        fleet.link.begin(now);
        let counts: Vec<String> = self.windows().map(|w| w.local_total(now).to_string()).collect();
        Some(Request {
            script: "signals",
            keys: vec![fleet.key.clone()],
            args: vec![fleet.settings.clone(), fleet.link.id(), fleet.link.server_lease_ms().to_string(), counts.join(" ")],
        })
    }

    fn fleet_reply(&self, reply: &[String], _now: &Moment) -> Result<(), String> {
        let Some(fleet) = &self.fleet else { return Ok(()) };
        let windows = 1 + 2 * self.routes.len();
        let numbers = parse_reply(reply, 1 + windows, &fleet.link)?;
        if numbers.len() != 1 + windows {
            return Err(format!("{} window sums, expected {windows}", numbers.len() - 1));
        }
        let members = count(numbers[0], 1e6, "the member count")?.max(1);
        let others = numbers[1..].iter().map(|x| count(*x, 1e15, "a window sum")).collect::<Result<Vec<u64>, String>>()?;
        for (window, sum) in self.windows().zip(others) {
            window.set_others(sum);
        }
        fleet.link.succeeded(self.clock.monotonic(), 1.0 / members as f64, members, 1.0);
        Ok(())
    }

    /// The step failed: keep the others' sums while they may still be
    /// current (one lease), then count this process's windows alone.
    fn fleet_failed(&self, _now: &Moment, reason: String) {
        let Some(fleet) = &self.fleet else { return };
        let now = self.clock.monotonic();
        let degraded = fleet.link.failed(&fleet.lease, now, 0.0, 0.0, reason);
        if degraded {
            self.windows().for_each(|w| w.set_others(0));
        }
    }

    fn fleet_after_fork(&self) {
        if let Some(fleet) = &self.fleet {
            fleet.link.after_fork(&fleet.lease);
        }
    }

    fn fleet_status(&self, _now: &Moment) -> Option<FleetStatus> {
        self.fleet.as_ref().map(|fleet| fleet.link.status(&fleet.lease, self.clock.monotonic()))
    }
}
