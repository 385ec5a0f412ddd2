"""Traffic for the simulations: who calls which endpoint when, with what tier,
amount and outcome. Deterministic for a seed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from tracesieve.testing import daily_wave, days_in_month, month_start

#: The example policy's endpoints and their share of traffic.
ENDPOINTS: Dict[str, float] = {
    "/api/payment": 0.10,
    "/api/order": 0.20,
    "/api/user/login": 0.15,
    "/api/health": 0.15,
    "/api/metrics": 0.05,
    "/api/catalog": 0.25,
    "/api/search": 0.10,
}
TIERS: Dict[str, float] = {"premium": 0.1, "standard": 0.6, "free": 0.3}
#: The call chain, caller first.
SERVICES = ("frontend", "orders", "payments")
#: Where errors start, how likely each caller fails when its callee did, where
#: slowness starts, how likely a request is slow and by how much.
ERROR_ORIGIN = "payments"
PROPAGATION = 0.5
SLOW_ORIGIN = "frontend"
SLOW_RATE = 0.02
SLOW_SECONDS = 1.5
SCENARIOS = ("traffic", "errors", "month", "spike")
DESCRIPTIONS = {
    "traffic": "an hour of the example traffic: weighted endpoints and tiers, 5% errors, high-value payments",
    "errors": "an error storm in four phases: normal, degrading, failing, recovering",
    "month": (
        "a calendar month of daily traffic waves, 2% of requests failing; each service's budget is a tenth of the "
        "requests (demand ten times the budget), and every span a service exports spends it, the tail's keeps included"
    ),
    "spike": "a day with a two-hour spike of 10x the usual traffic, against a daily budget of 1/10 of the requests",
}


@dataclass
class Request:
    time: float
    endpoint: str
    tier: str
    error: bool
    duration: float
    attributes: Dict[str, object] = field(default_factory=dict)
    #: The services whose spans fail (the origin first, then the callers it reached).
    failing: Tuple[str, ...] = ()
    #: The service that spends ``SLOW_SECONDS`` more in its own work (after its callee returned).
    slow: Optional[str] = None


@dataclass
class Faults:
    """How failures and slowness travel along the chain."""

    error_origin: str = ERROR_ORIGIN
    propagation: float = PROPAGATION
    slow_origin: str = SLOW_ORIGIN
    slow_rate: float = SLOW_RATE

    def check(self) -> None:
        for name, value in (("--error-origin", self.error_origin), ("--slow-origin", self.slow_origin)):
            if value not in SERVICES:
                raise ValueError(f"{name}: {value!r} is no service; expected one of {', '.join(SERVICES)}")
        for name, number in (("--propagation", self.propagation), ("--slow-rate", self.slow_rate)):
            if not 0.0 <= number <= 1.0:
                raise ValueError(f"{name}: {number!r} is out of range; expected a probability from 0 to 1")

    def failing(self, rng: random.Random) -> Tuple[str, ...]:
        """The origin fails; each caller above it fails with the propagation
        probability, as long as the service it called did."""
        index = SERVICES.index(self.error_origin)
        failing = [self.error_origin]
        for caller in reversed(SERVICES[:index]):
            if rng.random() >= self.propagation:
                break
            failing.append(caller)
        return tuple(failing)


@dataclass
class Plan:
    """One request through separately running services: its endpoint, the
    services that fail and the one that is slow (and by how much)."""

    endpoint: str
    errors: Tuple[str, ...] = ()
    slow: Optional[str] = None
    slow_seconds: float = 0.0
    #: The trace id the frontend gives the request (so runs of the same plans draw the same head decisions).
    trace_id: int = 0

    def as_header(self) -> Dict[str, Any]:
        return {"errors": list(self.errors), "slow": self.slow, "slow_seconds": self.slow_seconds, "trace_id": self.trace_id}


def plans(count: int, seed: int, faults: Faults, error_rate: float = 0.1, slow_seconds: float = 0.3) -> List[Plan]:
    """``count`` requests for the services run as processes: ``error_rate`` of
    them fail at the error origin, ``faults.slow_rate`` are slow at the slow origin."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        endpoint = _pick(rng, ENDPOINTS)
        errors = faults.failing(rng) if rng.random() < error_rate else ()
        slow = faults.slow_origin if rng.random() < faults.slow_rate else None
        out.append(Plan(endpoint, errors, slow, slow_seconds if slow else 0.0, rng.getrandbits(128) | 1))
    return out


@dataclass
class Scenario:
    name: str
    start: float
    end: float
    requests: List[Request]
    #: Budget in spans for each service, when the scenario paces one.
    budget_spans: Optional[int] = None
    budget_period: Optional[str] = None
    #: (label, start, end) of the error storm's phases.
    phases: List[Tuple[str, float, float]] = field(default_factory=list)


def _pick(rng: random.Random, weights: Dict[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _request(rng: random.Random, at: float, error_rate: float, faults: Faults) -> Request:
    endpoint = _pick(rng, ENDPOINTS)
    tier = _pick(rng, TIERS)
    error = rng.random() < error_rate
    duration = rng.lognormvariate(math.log(0.12), 0.8) * (3 if error else 1)
    attributes: Dict[str, object] = {"http.route": endpoint, "http.request.method": "GET", "user.tier": tier}
    if endpoint == "/api/payment" and rng.random() < 0.2:
        attributes["business.event"] = "payment"
        attributes["payment.amount"] = rng.choice([25, 80, 250, 1200, 4800])
    # Drawn from their own generator, so the traffic is the same whatever the faults.
    fault_rng = random.Random(rng.getrandbits(64))
    failing = faults.failing(fault_rng) if error else ()
    slow = faults.slow_origin if fault_rng.random() < faults.slow_rate else None
    return Request(at, endpoint, tier, error, duration, attributes, failing, slow)


def generate(name: str, count: int, seed: int = 1, faults: Optional[Faults] = None) -> Scenario:
    """``count`` requests of scenario ``name``, failing and slow as ``faults`` say."""
    faults = faults or Faults()
    faults.check()
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    if count < 1:
        raise ValueError(f"--requests: {count} is not positive; expected a number of requests, such as 20000")
    rng = random.Random(seed)
    if name == "traffic":
        start = datetime(2026, 1, 15, 1, 0, tzinfo=timezone.utc).timestamp()  # 10:00 in Seoul
        times = sorted(start + rng.random() * 3600 for _ in range(count))
        return Scenario(name, start, start + 3600, [_request(rng, t, 0.05, faults) for t in times])
    if name == "errors":
        start = datetime(2026, 1, 15, 1, 0, tzinfo=timezone.utc).timestamp()
        phases = [("normal", 0.01), ("degrading", 0.10), ("failing", 0.40), ("recovering", 0.03)]
        length = 600.0  # ten minutes a phase
        requests, spans = [], []
        for i, (label, rate) in enumerate(phases):
            begin = start + i * length
            spans.append((label, begin, begin + length))
            times = sorted(begin + rng.random() * length for _ in range(count // len(phases)))
            requests += [_request(rng, t, rate, faults) for t in times]
        return Scenario(name, start, start + len(phases) * length, requests, phases=spans)
    if name == "month":
        start = month_start(2026, 1)
        hours = days_in_month(2026, 1) * 24
        requests = _waves(rng, start, hours, count, lambda h: daily_wave(h % 24), faults, error_rate=0.02)
        return Scenario(name, start, start + hours * 3600, requests, budget_spans=max(1, len(requests) // 10), budget_period="month")
    start = datetime(2026, 1, 15, tzinfo=timezone.utc).timestamp()
    requests = _waves(rng, start, 24, count, lambda h: daily_wave(h) * (10 if h in (12, 13) else 1), faults)
    return Scenario(name, start, start + 24 * 3600, requests, budget_spans=max(1, count // 10), budget_period="day")


def _waves(rng: random.Random, start: float, hours: int, count: int, weight, faults: Faults, error_rate: float = 0.05) -> List[Request]:
    weights = [weight(h) for h in range(hours)]
    total = sum(weights)
    requests = []
    for hour, w in enumerate(weights):
        n = round(count * w / total)
        base = start + hour * 3600
        requests += [_request(rng, base + (i + rng.random()) * 3600 / max(n, 1), error_rate, faults) for i in range(n)]
    return requests
