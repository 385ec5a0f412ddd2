"""Ready-made policies, as plain data for ``RuleSampler(**policy)``.

``SEED_POLICY`` is the seed tutorial's ``IntelligentSampler`` done right: the same
routes, tiers, schedule and force-keep events, evaluated natively and consistently.
``examples/example_rules.py`` holds the same data for copying and editing.
"""

from __future__ import annotations

import copy
from typing import Any, Dict

SEED_POLICY: Dict[str, Any] = {
    "rules": [
        # Business events are always kept, whatever the route or the parent said.
        {"name": "payment", "match": {"business.event": "payment"}, "action": "keep"},
        {"name": "order-created", "match": {"business.event": "order.created"}, "action": "keep"},
        {"name": "user-registered", "match": {"business.event": "user.registered"}, "action": "keep"},
        {"name": "security-event", "match": {"security.event": {"exists": True}}, "action": "keep"},
        {"name": "high-value", "match": {"payment.amount": {">": 1000}}, "action": "keep"},
        # Per-route rates (the route is http.route, else url.path, else http.target, else the span name).
        {"name": "payment-api", "route": "/api/payment", "rate": 0.5},
        {"name": "order-api", "route": "/api/order", "rate": 0.3},
        {"name": "login-api", "route": "/api/user/login", "rate": 0.2},
        {"name": "probes", "route": {"in": ["/api/health", "/api/metrics"]}, "rate": 0.01},
    ],
    "default_rate": 0.1,
    "multipliers": [
        {"attribute": "user.tier", "factors": {"premium": 1.5, "standard": 1.0, "free": 0.5}},
        {
            "schedule": {
                "timezone": "Asia/Seoul",
                "windows": [
                    {"start": 9, "end": 18, "factor": 1.5},
                    {"start": 18, "end": 23, "factor": 1.0},
                    {"start": 23, "end": 9, "factor": 0.5},
                ],
            }
        },
    ],
}


def seed_policy() -> Dict[str, Any]:
    """A fresh copy of ``SEED_POLICY`` to edit."""
    return copy.deepcopy(SEED_POLICY)


#: The seed's whole multi-stage decision as a pipeline document (the same as
#: ``examples/example_pipeline.toml``): force-keep, adaptive, rules, budget.
SEED_PIPELINE: Dict[str, Any] = {
    "record_rule": True,
    "force_keep": {
        "rules": [{k: v for k, v in rule.items() if k != "action"} for rule in SEED_POLICY["rules"] if rule.get("action") == "keep"]
    },
    "adaptive": {"error_steps": [[5, 2.0], [10, 3.0]], "slow_threshold": 2.0},
    "rules": {
        "default_rate": SEED_POLICY["default_rate"],
        "rules": [rule for rule in SEED_POLICY["rules"] if "rate" in rule],
        "multipliers": SEED_POLICY["multipliers"],
    },
    "budget": {"budget": 50.0, "cost_per_span": 0.001, "period": "month", "timezone": "Asia/Seoul"},
}


def seed_pipeline() -> Dict[str, Any]:
    """A fresh copy of ``SEED_PIPELINE`` to edit."""
    return copy.deepcopy(SEED_PIPELINE)
