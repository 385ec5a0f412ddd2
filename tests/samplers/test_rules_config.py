"""RuleSampler configuration: clear errors, policy files, entry points,
shipped examples, and the sampler at work in a TracerProvider."""

from __future__ import annotations

import importlib.util
import json

import pytest
from opentelemetry.sdk._configuration import _import_sampler
from opentelemetry.trace import SpanKind

from tracesieve import RuleSampler
from tracesieve.config import load_policy
from tracesieve.policies import SEED_POLICY, seed_policy

from helpers import EXAMPLES, ot_value

BAD_RULES = [
    (
        [{"rate": 0.1}, {"rate": 0.1}, {"match": {"payment.amount": {"=>": 1000}}, "action": "keep"}],
        'rules[2].match["payment.amount"]: unknown operator "=>"; expected one of <, <=, >, >=, ==, in, exists, glob, prefix',
    ),
    ([{"route": "/x", "rate": 2}], "rules[0].rate: 2 is out of range; expected a number in [0, 1]"),
    ([{"route": "/x", "rate": "high"}], 'rules[0].rate: expected a number in [0, 1], got "high"'),
    ([{"route": "/x"}], 'rules[0]: missing rate or action; expected rate: a number in [0, 1], or action: "keep" / "drop"'),
    ([{"route": "/x", "action": "always"}], 'rules[0].action: unknown action "always"; expected "keep" or "drop" (or give a rate instead)'),
    ([{"rout": "/x", "rate": 0.1}], "rules[0].rout: unknown field"),
    (
        [{"kind": "backend", "rate": 0.1}],
        'rules[0].kind: unknown span kind "backend"; expected one of internal, server, client, producer, consumer',
    ),
    ([{"match": {"a": {"in": "abc"}}, "rate": 0.1}], 'rules[0].match.a: operator "in" needs a list, got "abc"'),
    ([{"match": {"a": {">": "big"}}, "rate": 0.1}], 'rules[0].match.a: operator ">" needs a number, got "big"'),
    ([{"match": {"a": {}}, "rate": 0.1}], "rules[0].match.a: empty condition"),
    (
        [{"name": "x", "rate": 0.1}, {"name": "x", "rate": 0.2}],
        'rules[1].name: "x" is already the name of rules[0]; rule names must be unique',
    ),
    ([{"name": "default", "rate": 0.1}], 'rules[0].name: "default" is reserved'),
    (["not a rule"], 'rules[0]: expected a mapping, got the string "not a rule"'),
    ({"not": "a list"}, "rules: expected a list, got a mapping"),
    ([{"match": {"a": object()}, "rate": 0.1}], "rules[0].match.a: object values are not plain data"),
]


@pytest.mark.parametrize("rules,message", BAD_RULES, ids=[m[:40] for _, m in BAD_RULES])
def test_invalid_rules_fail_at_construction_naming_where_and_what(rules, message):
    with pytest.raises((ValueError, TypeError)) as info:
        RuleSampler(rules, default_rate=0.1)
    assert str(info.value).startswith(message)


def schedule(timezone="UTC", windows=None):
    return {"schedule": {"timezone": timezone, "windows": windows or [{"start": 0, "end": 24, "factor": 1.0}]}}


BAD_MULTIPLIERS = [
    ([schedule("Mars/Olympus_Mons")], 'multipliers[0].schedule.timezone: unknown time zone "Mars/Olympus_Mons"; expected an IANA name'),
    (
        [schedule(windows=[{"start": 9, "end": 18, "factor": 1.5}, {"start": 17, "end": 9, "factor": 1.0}])],
        "multipliers[0].schedule.windows: hour 17 is covered by more than one window; windows must not overlap",
    ),
    (
        [schedule(windows=[{"start": 9, "end": 18, "factor": 1.5}, {"start": 18, "end": 23, "factor": 1.0}])],
        "multipliers[0].schedule.windows: hours 0, 1, 2, 3, 4, 5, 6, 7, 8, 23 are not covered; windows must cover all 24 hours",
    ),
    (
        [schedule(windows=[{"start": 0, "end": 24, "factor": -1}])],
        "multipliers[0].schedule.windows[0].factor: -1 is negative; expected a multiplier >= 0",
    ),
    ([schedule(windows=[{"start": 0, "end": 25, "factor": 1}])], "multipliers[0].schedule.windows[0].end: 25 is not an hour"),
    ([{"attribute": "user.tier", "factors": {"free": -0.5}}], "multipliers[0].factors.free: -0.5 is negative; expected a multiplier >= 0"),
    ([{"attribute": "user.tier", "factors": {"free": 0.5}, "default": -1}], "multipliers[0].default: -1 is negative"),
    ([{"attribute": "user.tier"}], "multipliers[0]: missing field factors"),
    ([{"tier": "user.tier"}], "multipliers[0]: expected either attribute (with factors) or schedule"),
]


@pytest.mark.parametrize("multipliers,message", BAD_MULTIPLIERS, ids=[m[:40] for _, m in BAD_MULTIPLIERS])
def test_invalid_multipliers_fail_at_construction(multipliers, message):
    with pytest.raises(ValueError) as info:
        RuleSampler([], default_rate=0.1, multipliers=multipliers)
    assert str(info.value).startswith(message)


def test_other_settings_are_checked():
    with pytest.raises(ValueError, match=r"^default_rate: 1.5 is out of range"):
        RuleSampler([], default_rate=1.5)
    with pytest.raises(TypeError, match=r"^clock: expected a callable returning Unix time in seconds, got float"):
        RuleSampler([], default_rate=0.5, clock=12.0)
    with pytest.raises(TypeError, match=r"^respect_parent"):
        RuleSampler([], default_rate=0.5, respect_parent=1)


def test_rules_are_plain_data_that_serialise_cleanly():
    assert json.loads(json.dumps(SEED_POLICY)) == SEED_POLICY
    sampler = RuleSampler(**json.loads(json.dumps(SEED_POLICY)))
    assert sampler.rule_names == [rule["name"] for rule in SEED_POLICY["rules"]]
    assert RuleSampler([{"rate": 0.5}], default_rate=0.1).rule_names == ["rules[0]"]
    assert RuleSampler(**SEED_POLICY).get_description() == "RuleSampler{rules=9,default_rate=0.1}"


def test_shipped_examples_hold_the_seed_policy():
    spec = importlib.util.spec_from_file_location("seed_policy_example", EXAMPLES / "example_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.POLICY == SEED_POLICY
    assert load_policy(EXAMPLES / "example_rules.json") == SEED_POLICY


def test_api_example_drops_probes_and_keeps_admin():
    sampler = RuleSampler.from_file(EXAMPLES / "api_with_health_checks.toml")
    assert sampler.explain("GET /healthz", {"http.route": "/healthz"})["action"] == "drop"
    assert sampler.explain("GET /metrics")["action"] == "drop"
    assert sampler.explain("GET", {"http.route": "/admin/users"})["probability"] == 1.0
    assert sampler.explain("GET", {"http.route": "/api/search"}, kind=SpanKind.SERVER)["probability"] == 0.05
    assert sampler.explain("GET", {"http.route": "/api/search"}, kind=SpanKind.CLIENT)["rule"] == "default"


def test_policy_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ValueError, match=r"nope.toml: no such file; expected a tracesieve configuration"):
        RuleSampler.from_file(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("default_rate = \n")
    with pytest.raises(ValueError, match=r"broken.toml: invalid TOML: "):
        RuleSampler.from_file(broken)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{"rules": [}')
    with pytest.raises(ValueError, match=r"broken.json: invalid JSON at line 1, column 12"):
        RuleSampler.from_file(broken_json)
    typo = tmp_path / "typo.toml"
    typo.write_text("default_rat = 0.1\n")
    with pytest.raises(
        ValueError, match=r"typo.toml: default_rat: unknown key \(did you mean 'default_rate'\?\); expected one of rules, default_rate"
    ):
        RuleSampler.from_file(typo)
    bad_rule = tmp_path / "bad.toml"
    bad_rule.write_text('default_rate = 0.1\n[[rules]]\nroute = "/x"\nrate = 3\n')
    with pytest.raises(ValueError, match=r"bad.toml: rules\[0\].rate: 3 is out of range"):
        RuleSampler.from_file(bad_rule)
    other = tmp_path / "rules.ini"
    other.write_text("rules: []")
    with pytest.raises(ValueError, match=r"unknown file type '.ini'; expected .toml, .yaml, .yml or .json"):
        RuleSampler.from_file(other)
    as_yaml = tmp_path / "rules.yaml"
    as_yaml.write_text("default_rate: 0.2\nrules:\n  - {route: /x, rate: 1.0}\n")
    assert RuleSampler.from_file(as_yaml).explain("s", {"http.route": "/x"})["probability"] == 1.0


def test_entry_point_loads_a_rules_file_through_the_sdk_configurator(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", str(EXAMPLES / "api_with_health_checks.toml"))
    sampler = _import_sampler("tracesieve_rules")
    assert isinstance(sampler, RuleSampler)
    assert sampler.rule_names[0] == "health-checks"
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG")
    monkeypatch.setenv("TRACESIEVE_RULES", str(EXAMPLES / "example_rules.json"))
    from importlib.metadata import entry_points

    (declarative,) = [ep for ep in entry_points(group="opentelemetry_sampler") if ep.name == "tracesieve_rules"]
    assert declarative.load()().rule_names == [rule["name"] for rule in SEED_POLICY["rules"]]
    monkeypatch.delenv("TRACESIEVE_RULES")
    # Without a file the factory does not raise (the SDK would keep everything): it logs and falls back.
    with caplog.at_level("ERROR", logger="tracesieve.config"):
        assert declarative.load()().get_description() == "ProbabilitySampler{0.01}"
    assert "OTEL_TRACES_SAMPLER_ARG: missing; set it (or TRACESIEVE_RULES)" in caplog.text


def test_through_a_tracer_provider(provider_factory):
    noon_seoul = 1768446000.0  # 2026-01-15T12:00:00+09:00
    policy = seed_policy()
    sampler = RuleSampler(**policy, clock=lambda: noon_seoul)
    provider, exporter = provider_factory(sampler)
    tracer = provider.get_tracer("t")
    for i in range(2000):
        route = ["/api/payment", "/api/health", "/api/catalog"][i % 3]
        with tracer.start_as_current_span("GET " + route, kind=SpanKind.SERVER, attributes={"http.route": route, "user.tier": "free"}):
            with tracer.start_as_current_span("db.query"):
                pass
            if i % 50 == 0:
                # A business event inside a trace that may have been dropped: always kept.
                with tracer.start_as_current_span("charge", attributes={"business.event": "payment", "payment.amount": 10}):
                    pass
    spans = exporter.get_finished_spans()
    charges = [s for s in spans if s.name == "charge"]
    assert len(charges) == 40
    assert all(ot_value(s.context.trace_state) == "th:0" for s in charges)
    assert all(s.attributes["business.event"] == "payment" for s in charges)
    roots = [s for s in spans if s.parent is None]
    by_route = {}
    for span in roots:
        by_route.setdefault(span.attributes["http.route"], set()).add(ot_value(span.context.trace_state))
    # Effective probability = route rate x free-tier 0.5 x daytime 1.5, recorded as th.
    assert by_route["/api/payment"] == {"th:a"}  # 0.375 -> threshold 0xa
    assert by_route["/api/catalog"] == {"th:ecccd"}  # 0.075
    children = [s for s in spans if s.name == "db.query"]
    assert len(children) == len(roots), "children follow their root"
    stats = sampler.stats()
    assert stats["rules"]["payment"]["decisions"] == 40
    assert stats["decisions"] == 2000 + 2000 + 40
