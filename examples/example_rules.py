"""The tutorial's sampling policy as a tracesieve RuleSampler.

Run it to see which rule decides a few typical spans:  python examples/example_rules.py
"""

from opentelemetry.sdk.trace import TracerProvider

from tracesieve import RuleSampler

POLICY = {
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

if __name__ == "__main__":
    sampler = RuleSampler(**POLICY)
    provider = TracerProvider(sampler=sampler)  # that is all the wiring there is
    noon_in_seoul = 1767236400.0  # 2026-01-01T12:00:00+09:00
    for name, attributes in [
        ("POST /api/payment", {"http.route": "/api/payment", "user.tier": "premium"}),
        ("POST /api/payment", {"http.route": "/api/payment", "user.tier": "free", "payment.amount": 2500}),
        ("GET /api/order", {"http.route": "/api/order", "user.tier": "standard"}),
        ("GET /api/health", {"url.path": "/api/health"}),
        ("GET /api/catalog", {"http.route": "/api/catalog", "user.tier": "free"}),
        ("POST /signup", {"business.event": "user.registered"}),
    ]:
        verdict = sampler.explain(name, attributes, now=noon_in_seoul)
        print(f"{name:20} {attributes!s:75} -> {verdict['rule']:16} {verdict['action']:5} p={verdict['probability']:.3f}")
