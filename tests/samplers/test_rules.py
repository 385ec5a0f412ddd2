"""RuleSampler: conditions, priority, routes, multipliers, consistency, rates."""

from __future__ import annotations

import math
import random
import threading
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind

from tracesieve import RuleSampler, _core
from tracesieve.policies import SEED_POLICY, seed_policy
from tracesieve.reference import ReferenceRuleSampler

from helpers import EXAMPLES, ot_value, parent_context

NOON_SEOUL = datetime(2026, 1, 15, 12, tzinfo=timezone.utc).timestamp() - 9 * 3600
NIGHT_SEOUL = NOON_SEOUL + 15 * 3600  # 03:00 the next day in Seoul


def unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def one_rule(condition: dict, attributes=None, name="span", **kw):
    """Does a single rule with `condition` match a span?"""
    sampler = RuleSampler([{"name": "r", **condition, "action": "keep"}], default_rate=0.0)
    return sampler.explain(name, attributes, **kw)["rule"] == "r"


OPERATOR_CASES = [
    ({"match": {"a": "x"}}, {"a": "x"}, True),
    ({"match": {"a": "x"}}, {"a": "y"}, False),
    ({"match": {"a": {"==": 3}}}, {"a": 3.0}, True),
    ({"match": {"a": {"==": 3}}}, {"a": "3"}, False),
    ({"match": {"a": True}}, {"a": True}, True),
    ({"match": {"a": True}}, {"a": 1}, False),
    ({"match": {"a": {"in": ["x", "y", 7]}}}, {"a": "y"}, True),
    ({"match": {"a": {"in": ["x", "y", 7]}}}, {"a": 7}, True),
    ({"match": {"a": {"in": ["x", "y"]}}}, {"a": "z"}, False),
    ({"match": {"a": {"<": 10}}}, {"a": 9.5}, True),
    ({"match": {"a": {"<": 10}}}, {"a": 10}, False),
    ({"match": {"a": {"<=": 10}}}, {"a": 10}, True),
    ({"match": {"a": {">": 1000}}}, {"a": 1000}, False),
    ({"match": {"a": {">": 1000}}}, {"a": 1000.5}, True),
    ({"match": {"a": {">=": 1000}}}, {"a": 1000}, True),
    ({"match": {"a": {">=": 100, "<": 200}}}, {"a": 150}, True),
    ({"match": {"a": {">=": 100, "<": 200}}}, {"a": 200}, False),
    ({"match": {"a": {">": 5}}}, {"a": "9"}, False),
    ({"match": {"a": {">": 5}}}, {"a": True}, False),
    ({"match": {"a": {"exists": True}}}, {"a": [1, 2]}, True),
    ({"match": {"a": {"exists": True}}}, {}, False),
    ({"match": {"a": {"exists": False}}}, {}, True),
    ({"match": {"a": {"exists": False}}}, {"a": None}, False),
    ({"match": {"a": {"glob": "/api/*/login"}}}, {"a": "/api/user/login"}, True),
    ({"match": {"a": {"glob": "v?"}}}, {"a": "v2"}, True),
    ({"match": {"a": {"glob": "v?"}}}, {"a": "v22"}, False),
    ({"match": {"a": {"prefix": "/api/"}}}, {"a": "/api/x"}, True),
    ({"match": {"a": {"prefix": "/api/"}}}, {"a": "/apix"}, False),
    ({"match": {"a": {"prefix": "/api/"}}}, {"a": 5}, False),
    ({"match": {"a": "x", "b": {">": 1}}}, {"a": "x", "b": 2}, True),
    ({"match": {"a": "x", "b": {">": 1}}}, {"a": "x", "b": 0}, False),
]


@pytest.mark.parametrize("condition,attributes,expected", OPERATOR_CASES, ids=repr)
def test_every_operator(condition, attributes, expected):
    assert one_rule(condition, attributes) is expected


def test_span_name_kind_and_root_conditions():
    assert one_rule({"span_name": "GET /x"}, name="GET /x")
    assert not one_rule({"span_name": "GET /x"}, name="GET /y")
    assert one_rule({"span_name": {"glob": "GET /health*"}}, name="GET /healthz")
    assert one_rule({"kind": "server"}, kind=SpanKind.SERVER)
    assert one_rule({"kind": ["consumer", "Producer"]}, kind=SpanKind.PRODUCER)
    assert not one_rule({"kind": "server"}, kind=SpanKind.CLIENT)
    assert not one_rule({"kind": "server"})  # kind unknown
    assert one_rule({"root": True}, root=True)
    assert not one_rule({"root": True}, root=False)


def test_route_falls_back_through_the_route_attributes_to_the_name():
    sampler = RuleSampler([], default_rate=0.5)
    route = lambda attributes, name="GET /name": sampler.explain(name, attributes)["route"]  # noqa: E731
    assert route({"http.route": "/users/{id}", "url.path": "/users/7", "http.target": "/users/7?x=1"}) == "/users/{id}"
    assert route({"url.path": "/users/7", "http.target": "/users/7?x=1"}) == "/users/7"
    assert route({"http.target": "/users/7?x=1"}) == "/users/7?x=1"
    assert route({"http.route": 42}) == "GET /name"
    assert route(None) == "GET /name"


def test_first_matching_rule_in_list_order_wins():
    rules = [
        {"name": "broad", "route": {"prefix": "/api/"}, "rate": 0.2},
        {"name": "narrow", "route": "/api/order", "action": "drop"},
    ]
    assert RuleSampler(rules, default_rate=1.0).explain("x", {"http.route": "/api/order"})["rule"] == "broad"
    assert RuleSampler(rules[::-1], default_rate=1.0).explain("x", {"http.route": "/api/order"})["rule"] == "narrow"


def test_seed_policy_rates_tiers_and_schedule():
    sampler = RuleSampler(**SEED_POLICY)
    ex = lambda attrs, now=NOON_SEOUL: sampler.explain("span", attrs, now=now)  # noqa: E731
    assert ex({"http.route": "/api/order", "user.tier": "standard"})["probability"] == pytest.approx(0.3 * 1.5)
    assert ex({"http.route": "/api/order", "user.tier": "free"}, NIGHT_SEOUL)["probability"] == pytest.approx(0.3 * 0.5 * 0.5)
    assert ex({"http.route": "/api/payment", "user.tier": "premium"})["probability"] == 1.0  # 0.5*1.5*1.5 clamped
    assert ex({"url.path": "/api/health"})["probability"] == pytest.approx(0.015)
    assert ex({"http.route": "/api/catalog", "user.tier": "gold"})["probability"] == pytest.approx(0.15)
    evening = NOON_SEOUL + 7 * 3600  # 19:00 in Seoul
    assert ex({"http.route": "/api/catalog", "user.tier": "standard"}, evening)["probability"] == pytest.approx(0.1)
    for attrs, rule in [
        ({"business.event": "payment", "http.route": "/api/health"}, "payment"),
        ({"business.event": "order.created"}, "order-created"),
        ({"business.event": "user.registered"}, "user-registered"),
        ({"security.event": "login.bruteforce"}, "security-event"),
        ({"payment.amount": 1000.01}, "high-value"),
    ]:
        assert ex(attrs) == {"rule": rule, "route": attrs.get("http.route", "span"), "action": "keep", "probability": 1.0}


@pytest.mark.parametrize(
    "utc,local_hour",
    [
        ("2026-03-08T06:30:00+00:00", 1),  # 01:30 EST, before spring forward
        ("2026-03-08T07:00:00+00:00", 3),  # 03:00 EDT: 02:00 never happened
        ("2026-03-08T13:30:00+00:00", 9),  # 09:30 EDT
        ("2026-03-07T13:30:00+00:00", 8),  # 08:30 EST the day before
        ("2026-11-01T05:30:00+00:00", 1),  # first 01:30 EDT
        ("2026-11-01T06:30:00+00:00", 1),  # second 01:30 EST
        ("2026-11-01T13:30:00+00:00", 8),  # 08:30 EST after fall back
        ("2026-11-01T14:00:00+00:00", 9),
    ],
)
def test_schedule_follows_local_time_across_dst(utc, local_hour):
    windows = [{"start": h, "end": h + 1, "factor": h / 100} for h in range(24)]
    sampler = RuleSampler([], default_rate=1.0, multipliers=[{"schedule": {"timezone": "America/New_York", "windows": windows}}])
    assert sampler.explain("x", now=unix(utc))["probability"] == pytest.approx(local_hour / 100)


def test_schedule_uses_the_clock_and_survives_a_broken_one():
    now = [NOON_SEOUL]
    policy = seed_policy()
    sampler = RuleSampler(**policy, clock=lambda: now[0])
    p = lambda: sampler.explain("x", {"http.route": "/api/catalog"})["probability"]  # noqa: E731
    assert p() == pytest.approx(0.15)
    now[0] = NIGHT_SEOUL
    assert p() == pytest.approx(0.05)
    broken = RuleSampler(**policy, clock=lambda: 1 / 0)
    result = broken.should_sample(None, 12345, "x", None, {"http.route": "/api/catalog"})
    assert result.decision in (Decision.DROP, Decision.RECORD_AND_SAMPLE)
    assert broken.stats()["clock_errors"] == 1


def test_kept_spans_carry_th_of_the_effective_probability():
    sampler = RuleSampler(**seed_policy(), clock=lambda: NOON_SEOUL)
    rng = random.Random(5)
    checked = 0
    for _ in range(3000):
        attrs = {"http.route": rng.choice(["/api/order", "/api/catalog", "/api/health"]), "user.tier": rng.choice(["premium", "free"])}
        result = sampler.should_sample(None, rng.getrandbits(128), "span", None, attrs)
        expected = sampler.explain("span", attrs, now=NOON_SEOUL)["th"]
        if result.decision.is_sampled():
            assert ot_value(result.trace_state) == f"th:{expected}"
            checked += 1
    assert checked > 300


def test_two_instances_decide_alike_standing_in_for_two_services():
    a = RuleSampler(**seed_policy(), clock=lambda: NOON_SEOUL)
    b = RuleSampler(**seed_policy(), clock=lambda: NOON_SEOUL)
    rng = random.Random(9)
    for _ in range(5000):
        trace_id = rng.getrandbits(128)
        attrs = {
            "http.route": rng.choice(["/api/order", "/api/user/login", "/x"]),
            "user.tier": rng.choice(["premium", "standard", "free"]),
        }
        ra, rb = a.should_sample(None, trace_id, "s", None, attrs), b.should_sample(None, trace_id, "s", None, attrs)
        assert ra.decision is rb.decision
        assert ot_value(ra.trace_state) == ot_value(rb.trace_state)


@pytest.mark.parametrize(
    "route,rate", [("/api/payment", 0.5), ("/api/order", 0.3), ("/api/user/login", 0.2), ("/api/health", 0.01), ("/other", 0.1)]
)
def test_observed_rates_per_rule_within_binomial_bounds(route, rate):
    policy = seed_policy()
    policy["multipliers"] = []
    sampler = RuleSampler(**policy)
    rng = random.Random(hash(route) & 0xFFFF)
    n = 40_000
    kept = sum(sampler.should_sample(None, rng.getrandbits(128), "s", None, {"http.route": route}).decision.is_sampled() for _ in range(n))
    p = _core.probability_for_threshold(_core.threshold_for_probability(rate))
    assert abs(kept - n * p) <= 6 * math.sqrt(n * p * (1 - p)) + 1
    name = sampler.explain("s", {"http.route": route})["rule"]
    assert sampler.stats()["rules"][name] == {"decisions": n, "sampled": kept}


def test_keep_rules_override_an_unsampled_parent_and_others_follow_it():
    sampler = RuleSampler(**seed_policy())
    unsampled = parent_context(7, False, [("vendor", "v")])
    kept = sampler.should_sample(unsampled, 7, "charge", None, {"business.event": "payment"})
    assert kept.decision is Decision.RECORD_AND_SAMPLE
    assert list(kept.trace_state.items()) == [("ot", "th:0"), ("vendor", "v")]
    followed = sampler.should_sample(unsampled, 7, "GET", None, {"http.route": "/api/payment", "user.tier": "premium"})
    assert followed.decision is Decision.DROP
    sampled = parent_context(7, True)
    assert sampler.should_sample(sampled, 7, "h", None, {"http.route": "/api/health"}).decision.is_sampled()
    stats = sampler.stats()
    assert (stats["forced_keep"], stats["parent_not_sampled"], stats["parent_sampled"]) == (1, 1, 1)
    assert stats["rules"]["payment"] == {"decisions": 1, "sampled": 1}


def test_respect_parent_false_lets_rules_decide_children():
    sampler = RuleSampler([{"name": "no-children", "root": False, "action": "drop"}], default_rate=1.0, respect_parent=False)
    assert not sampler.should_sample(parent_context(7, True), 7, "child").decision.is_sampled()
    assert sampler.should_sample(None, 7, "root").decision.is_sampled()


def test_unexpected_attribute_types_do_not_match_and_never_raise():
    sampler = RuleSampler(**seed_policy())
    for value in [None, [1, 2], {"a": 1}, object(), b"bytes", float("nan"), "\udcff"]:
        attrs = {"payment.amount": value, "http.route": value, "user.tier": value, "business.event": value}
        verdict = sampler.explain("s", attrs)
        assert verdict["rule"] == "default"
        sampler.should_sample(None, 1, "s", None, attrs)
    assert sampler.explain("s", {"payment.amount": 10**30})["rule"] == "high-value"  # big ints still compare
    for attrs in ["not a mapping", [("a", 1)], 5]:
        assert sampler.should_sample(None, 1, "s", None, attrs).decision in (Decision.DROP, Decision.RECORD_AND_SAMPLE)
    assert sampler.should_sample(None, 1, 12345, 3, None).decision in (Decision.DROP, Decision.RECORD_AND_SAMPLE)


def test_large_and_non_dict_attribute_mappings_are_read():
    from types import MappingProxyType

    sampler = RuleSampler([{"name": "big", "match": {"payment.amount": {">": 10}}, "action": "keep"}], default_rate=0.0)
    big = {f"k{i}": i for i in range(100)}
    big["payment.amount"] = 50
    assert sampler.explain("s", big)["rule"] == "big"
    assert sampler.explain("s", MappingProxyType({"payment.amount": 50}))["rule"] == "big"


def test_attribute_values_read_are_neither_leaked_nor_over_released():
    """Each value a rule looks up is held for the call and released after it,
    whether read once, read by several rules, absent, or from a non-dict mapping."""
    import sys
    from types import MappingProxyType

    sampler = RuleSampler(**seed_policy())
    amount, route, tier = 10**30, "/".join(["api", "payments"]), "".join(["gol", "d"])
    attrs = {"payment.amount": amount, "http.route": route, "user.tier": tier}
    mappings = (attrs, MappingProxyType(attrs), {"http.route": route})
    before = [sys.getrefcount(value) for value in (amount, route, tier)]
    for mapping in mappings:
        for trace_id in range(2000):
            sampler.should_sample(None, trace_id, "s", None, mapping)
            sampler.explain("s", mapping)
    assert [sys.getrefcount(value) for value in (amount, route, tier)] == before


def test_per_rule_stats_are_exact_under_threads():
    sampler = RuleSampler(**seed_policy())
    routes = ["/api/payment", "/api/order", "/x"]

    def hammer(seed):
        rng = random.Random(seed)
        for i in range(9_999):
            sampler.should_sample(None, rng.getrandbits(128), "s", None, {"http.route": routes[i % 3]})

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = sampler.stats()
    assert stats["decisions"] == 59_994
    assert {name: counts["decisions"] for name, counts in stats["rules"].items() if counts["decisions"]} == {
        "payment-api": 19_998,
        "order-api": 19_998,
        "default": 19_998,
    }
    assert sum(c["sampled"] for c in stats["rules"].values()) == stats["sampled"]


trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)
attribute_sets = st.fixed_dictionaries(
    {},
    optional={
        "http.route": st.sampled_from(["/api/payment", "/api/order", "/api/user/login", "/api/health", "/api/metrics", "/x"]),
        "url.path": st.sampled_from(["/api/order", "/api/health"]),
        "user.tier": st.sampled_from(["premium", "standard", "free", "gold", 3]),
        "business.event": st.sampled_from(["payment", "order.created", "user.registered", "other"]),
        "security.event": st.just("x"),
        "payment.amount": st.one_of(st.integers(-10, 5000), st.floats(0, 5000, allow_nan=False), st.text(max_size=3)),
    },
)


@settings(max_examples=600, deadline=None)
@given(
    trace_id=trace_ids,
    attrs=attribute_sets,
    now=st.floats(min_value=1.6e9, max_value=2.0e9),
    parent=st.sampled_from(["root", "sampled", "unsampled"]),
    respect_parent=st.booleans(),
)
def test_decisions_equal_the_pure_python_reference(trace_id, attrs, now, parent, respect_parent):
    policy = seed_policy()
    ours = RuleSampler(**policy, respect_parent=respect_parent, clock=lambda: now)
    ref = ReferenceRuleSampler(**policy, respect_parent=respect_parent, clock=lambda: now)
    ctx = None if parent == "root" else parent_context(trace_id, parent == "sampled", [("vendor", "v")])
    a = ours.should_sample(ctx, trace_id, "span", SpanKind.SERVER, attrs)
    b = ref.should_sample(ctx, trace_id, "span", SpanKind.SERVER, attrs)
    assert a.decision is b.decision
    state = lambda r: None if r.trace_state is None else list(r.trace_state.items())  # noqa: E731
    assert state(a) == state(b)
    verdict = ours.explain("span", attrs, kind=SpanKind.SERVER, root=parent == "root", now=now)
    assert (verdict["rule"], verdict["action"]) == ref.evaluate("span", SpanKind.SERVER, attrs, parent == "root")[:2]
    assert verdict["probability"] == pytest.approx(ref.evaluate("span", SpanKind.SERVER, attrs, parent == "root")[2])


def test_attribute_keys_are_recognised_whatever_object_carries_them():
    # Fresh, equal-but-distinct key objects each time (beyond the memo's 64
    # slots), interned ones, and look-alike keys that are not ours.
    sampler = RuleSampler([{"name": "pay", "route": "/api/payment", "rate": 1.0}], default_rate=0.0)
    for i in range(300):
        key = "".join(["http", ".", "route"])
        noise = {"".join(["x", str(i)]): 1, "".join(["http.rout", "e2"]): "/api/payment"}
        assert sampler.explain("s", {**noise, key: "/api/payment"})["rule"] == "pay"
        assert sampler.explain("s", {**noise, key: "/api/order"})["rule"] == "default"
    import sys

    assert sampler.explain("s", {sys.intern("http.route"): "/api/payment"})["rule"] == "pay"


def test_the_example_policy_is_the_shipped_seed_policy():
    # examples/example_rules.py spells the policy out for copying; it must not drift from SEED_POLICY.
    import importlib.util

    from tracesieve.policies import SEED_POLICY

    path = EXAMPLES / "example_rules.py"
    spec = importlib.util.spec_from_file_location("seed_policy_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.POLICY == SEED_POLICY


class TextSubclass(str):
    pass


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40), cut=st.integers(0, 40), subclass=st.booleans())
def test_attribute_and_name_text_read_as_python_holds_it(text, cut, subclass):
    # ASCII strings are read in place, others through their UTF-8: both, and
    # str subclasses, must compare as the Python text does. A string that has
    # no UTF-8 (a lone surrogate) is a value of no known type: it only exists.
    value = TextSubclass(text) if subclass else text
    valid = _encodes(text)
    assert one_rule({"match": {"a": text}}, {"a": value}) is valid
    assert one_rule({"match": {"a": {"prefix": text[:cut]}}}, {"a": value}) is valid
    assert one_rule({"match": {"a": text + "x"}}, {"a": value}) is False
    assert one_rule({"match": {"a": {"exists": True}}}, {"a": value}) is True
    sampler = RuleSampler([{"name": "r", "route": "/x", "rate": 1.0}], default_rate=0.0)
    assert sampler.explain(value, None)["route"] == (text if valid else "")
