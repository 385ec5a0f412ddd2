"""from_config: the full pipeline from configuration files, zero-code setup,
reload, metrics, and errors that name the file and the key."""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from opentelemetry.sdk._configuration import _import_sampler
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tracesieve import ConfigError, PipelineSampler, _core, from_config, load_config
from tracesieve.cli.ids import SeededIds
from tracesieve.testing import SimClock, month_start

from helpers import EXAMPLES, metric_points, ot_value, parent_context

NOON_SEOUL = month_start(2026, 1) + 3 * 3600


def traced(sampler):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(7))
    if getattr(sampler, "processor", None) is not None:
        provider.add_span_processor(sampler.processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, provider.get_tracer("t"), exporter


def test_seed_pipeline_example_behaves_as_documented():
    clock = SimClock(NOON_SEOUL)
    sampler = from_config(EXAMPLES / "example_pipeline.toml", clock=clock)
    assert sampler.get_description() == "PipelineSampler{force_keep,adaptive,rules,budget}"
    provider, tracer, exporter = traced(sampler)
    # A payment under a parent that was not sampled: forced keep, th:0, named.
    with tracer.start_as_current_span("charge", context=parent_context(7, False), attributes={"business.event": "payment"}):
        pass
    (charge,) = exporter.get_finished_spans()
    assert ot_value(charge.context.trace_state) == "th:0"
    assert charge.attributes["tracesieve.rule"] == "payment"
    # Route rates x tier x daytime schedule go into th, and kept spans say which rule decided:
    # a thousand requests over five hours of a Seoul afternoon. Started mid-month without a
    # record (a simulated clock keeps it in memory), the budget assumes its calendar share
    # and burst were spent and eases in at the calendar's pace, which th also records; the
    # floor's keeps are certain (th 0).
    exporter.clear()
    for _ in range(1000):
        clock.now += 18
        with tracer.start_as_current_span("GET", attributes={"http.route": "/api/order", "user.tier": "free"}):
            pass
    spans = exporter.get_finished_spans()
    expected = _core.threshold_for_probability(0.3 * 0.5 * 1.5)
    thresholds = [_core.read_ot(ot_value(s.context.trace_state))[0] for s in spans]
    floor = thresholds.count(0)
    assert 1 <= floor <= 6, "the visibility floor keeps at most the first span of an hour with nothing kept"
    assert all(th == 0 or th >= expected for th in thresholds), "the pace only lowers the probability"
    assert max(set(thresholds) - {0}, key=thresholds.count) == expected
    assert {s.attributes["tracesieve.rule"] for s in spans} == {"order-api"}
    # Estimates from th stay unbiased: the adjusted counts add up to the requests.
    estimate = sum(_core.adjusted_count(th) for th in thresholds)
    assert 700 < estimate < 1300, estimate
    # Errors feed the adaptive stage through the processor.
    for _ in range(12):
        with tracer.start_as_current_span("GET", attributes={"http.route": "/api/order"}) as span:
            span.set_status(Status(StatusCode.ERROR))
    clock.now += 2
    stats = sampler.stats()
    assert stats["boost"] >= 2.0
    assert stats["rules"]["payment"] == {"decisions": 1, "sampled": 1}
    status = sampler.budget_status()
    assert status["budget_spans"] == 50_000 and status["used_spans"] - status["assumed_spans"] == stats["sampled"]
    provider.shutdown()


def test_payment_service_example_keeps_payments_paces_and_limits():
    # The first second of March in Berlin: nothing of the month can have been spent
    # (mid-month, without a state file, it would assume its calendar share was).
    clock = SimClock(month_start(2026, 3) - 3600 + 0.5)
    sampler = from_config(EXAMPLES / "payment_service.yaml", clock=clock)
    assert sampler.processor is None
    provider, tracer, exporter = traced(sampler)
    for _ in range(500):
        with tracer.start_as_current_span("GET /orders"):
            with tracer.start_as_current_span("db.query"):
                pass
    spans = exporter.get_finished_spans()
    assert len([s for s in spans if s.parent is None]) == 100  # the burst of the 50/s limit, at one instant
    assert len(spans) == 200, "children of kept traces are never cut by the limit"
    # The rest were paced out before the limit: at the period's first instant the spend
    # line is at 0, so the pace eases off as the burst above it fills (and th says so).
    assert 0 < sampler.stats()["rate_limited"] < 400
    roots = [s for s in spans if s.parent is None]
    assert any(_core.read_ot(ot_value(s.context.trace_state))[0] > 0 for s in roots)
    exporter.clear()
    with tracer.start_as_current_span("POST /payments/42"):  # forced: not limited
        pass
    with tracer.start_as_current_span("GET", attributes={"http.route": "/healthz"}):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["POST /payments/42"]
    assert sampler.budget_status()["timezone"] == "Europe/Berlin"
    status = sampler.budget_status()
    assert status["used_spans"] - status["assumed_spans"] == 201
    provider.shutdown()


def test_api_example_drops_probes_and_boosts_on_error_rate():
    clock = SimClock(month_start(2026, 1))
    sampler = from_config(EXAMPLES / "api_pipeline.yaml", clock=clock)
    provider, tracer, exporter = traced(sampler)
    for i in range(200):
        with tracer.start_as_current_span("GET /healthz", attributes={"http.route": "/healthz"}):
            pass
        with tracer.start_as_current_span("GET /admin/users", attributes={"http.route": "/admin/users"}) as span:
            if i % 10 == 0:
                span.set_status(Status(StatusCode.ERROR))  # 10% of kept admin spans fail
    names = {s.name for s in exporter.get_finished_spans()}
    assert names == {"GET /admin/users"}
    clock.now += 2
    assert sampler.stats()["boost"] == 5.0  # 10% errors against a 1% target, capped at max_boost 5
    provider.shutdown()


def test_dict_source_and_empty_config():
    assert from_config({}).should_sample(None, 1, "x").decision.is_sampled()
    sampler = from_config({"probability": {"rate": 0.25}, "respect_parent": False})
    result = sampler.should_sample(parent_context(1, True), (1 << 56) - 1, "x")
    assert ot_value(result.trace_state) == "th:c"


@pytest.mark.parametrize("name", ["example_pipeline.toml", "payment_service.yaml", "api_pipeline.yaml"])
def test_entry_point_loads_through_the_sdk_configurator(monkeypatch, name):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", str(EXAMPLES / name))
    sampler = _import_sampler("tracesieve")
    assert isinstance(sampler, PipelineSampler)


def test_tracesieve_config_variable_and_declarative_group(monkeypatch, caplog):
    from importlib.metadata import entry_points

    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    monkeypatch.setenv("TRACESIEVE_CONFIG", str(EXAMPLES / "api_pipeline.yaml"))
    assert isinstance(_import_sampler("tracesieve"), PipelineSampler)
    (factory,) = [ep for ep in entry_points(group="opentelemetry_sampler") if ep.name == "tracesieve"]
    assert isinstance(factory.load()(), PipelineSampler)
    monkeypatch.delenv("TRACESIEVE_CONFIG")
    with caplog.at_level("ERROR", logger="tracesieve.config"):
        assert factory.load()().get_description() == "ProbabilitySampler{0.01}", "never fails open"
    assert "OTEL_TRACES_SAMPLER_ARG: missing; set it (or TRACESIEVE_CONFIG)" in caplog.text


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD_CONFIGS = [
    ("typo.toml", "[rulez]\ndefault_rate = 0.1\n", 'typo.toml: rulez: unknown stage or setting (did you mean "rules"?)'),
    (
        "field.toml",
        "[rules]\ndefault_rate = 0.1\nrules = []\nmultiplier = []\n",
        'field.toml: rules.multiplier: unknown field (did you mean "multipliers"?)',
    ),
    (
        "type.toml",
        '[rules]\ndefault_rate = "high"\nrules = []\n',
        'type.toml: rules.default_rate: expected a number, got the string "high"',
    ),
    (
        "range.toml",
        "[rules]\ndefault_rate = 1.5\nrules = []\n",
        "range.toml: rules.default_rate: 1.5 is out of range; expected a number in [0, 1]",
    ),
    (
        "rule.yaml",
        "rules:\n  default_rate: 0.1\n  rules:\n    - {route: /x, rate: 0.1}\n    - {match: {payment.amount: {'=>': 1000}}, rate: 1}\n",
        'rule.yaml: rules.rules[1].match["payment.amount"]: unknown operator "=>"',
    ),
    ("order.toml", "[budget]\nbudget = 100\n[rules]\ndefault_rate = 0.1\nrules = []\n", "order.toml: rules: comes after budget"),
    (
        "last.yaml",
        "rate_limit: {traces_per_second: 5}\nrules: {default_rate: 0.1, rules: []}\n",
        "last.yaml: rules: comes after rate_limit",
    ),
    ("zone.toml", '[budget]\nbudget = 10\ntimezone = "Asia/Seol"\n', 'zone.toml: budget.timezone: unknown time zone "Asia/Seol"'),
    (
        "steps.yaml",
        "adaptive: {error_steps: [[10, 2.0], [5, 3.0]]}\n",
        "steps.yaml: adaptive.error_steps[1]: (5, 3) after (10, 2) is not monotone",
    ),
    ("broken.toml", "[rules\n", "broken.toml: invalid TOML: "),
    ("broken.yaml", "rules: [unclosed\n", "broken.yaml: invalid YAML at line 2, column 1: "),
    ("list.yaml", "- a\n- b\n", "list.yaml: expected a table of stages and settings at the top level, got list"),
    ("evil.yaml", "rules: !!python/object/apply:os.system ['echo pwned']\n", "evil.yaml: invalid YAML"),
    ("rules.ini", "[rules]\n", "rules.ini: unknown file type '.ini'"),
]


@pytest.mark.parametrize("name,text,message", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_every_mistake_fails_at_load_naming_file_and_key(tmp_path, name, text, message):
    with pytest.raises(ConfigError) as info:
        from_config(write(tmp_path / name, text))
    assert str(info.value).startswith(str(tmp_path / message.split(":", 1)[0]) + ":" + message.split(":", 1)[1])
    assert "Traceback" not in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml: no such file; expected a tracesieve configuration"):
        from_config(tmp_path / "nope.toml")
    assert isinstance(ConfigError("x"), ValueError)


def test_reload_applies_good_files_and_keeps_the_old_policy_on_bad_ones(tmp_path, caplog):
    path = write(tmp_path / "sampling.toml", "[probability]\nrate = 1.0\n")
    sampler = from_config(path)
    assert sampler.should_sample(None, 1, "x").decision.is_sampled()
    write(path, "[probability]\nrate = 0.0\n")
    assert sampler.reload()
    assert not sampler.should_sample(None, 1, "x").decision.is_sampled()
    write(path, "[probability]\nrate = 7\n")
    with caplog.at_level(logging.ERROR, logger="tracesieve.config"):
        assert not sampler.reload()
    assert "keeping the current sampling policy" in caplog.text and "probability.rate: 7 is out of range" in caplog.text
    assert not sampler.should_sample(None, 1, "x").decision.is_sampled()
    stats = sampler.stats()
    assert (stats["reloads"], stats["reload_failures"], stats["decisions"]) == (1, 1, 3)


def test_a_relative_source_still_reloads_after_the_working_directory_changes(tmp_path, monkeypatch):
    """Regression: from_config("sampling.toml") kept the relative name, so a daemon
    that went on to chdir("/") reloaded from /sampling.toml: its watcher saw no
    file and the policy never changed again, without a word."""
    (tmp_path / "sampling.toml").write_text("[probability]\nrate = 0.3\n")
    monkeypatch.chdir(tmp_path)
    sampler = from_config("sampling.toml", reload=False)
    assert sampler.source == tmp_path / "sampling.toml"
    monkeypatch.chdir("/")
    (tmp_path / "sampling.toml").write_text("[probability]\nrate = 0.6\n")
    sampler.reload()
    assert sampler.resolved["stages"] == [{"stage": "probability", "rate": 0.6}]


def test_a_reload_moves_the_budget_state_file_with_the_document(tmp_path, caplog):
    """Regression: the state file stayed the one of the first document. A
    reload that took the budget out made the saver raise every second and a
    traceback at exit; one that named another state_path kept saving to the old."""
    import json

    clock = SimClock(month_start(2026, 1) + 3600)

    def document(budget):
        return {"probability": {"rate": 1.0}, "store": "memory", **({"budget": budget} if budget else {})}

    path = tmp_path / "sampling.json"
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    budget = {"budget": 10**6, "period": "day", "state_path": str(first), "save_interval": 3600}
    path.write_text(json.dumps(document(budget)))
    sampler = from_config(path, clock=clock)

    def spend(n):
        for _ in range(n):
            clock.advance(1)
            sampler.should_sample(None, int(clock.now), "x")
        return sampler.budget_status()["used_spans"]

    spent = spend(5)
    path.write_text(json.dumps(document({**budget, "state_path": str(second)})))
    assert sampler.reload()
    assert json.loads(first.read_text())["used_spans"] == spent, "the old file gets the last count it was keeping"
    carried = sampler.budget_status()["used_spans"]
    assert carried == spent
    spent = spend(5)
    sampler.save_state()
    assert json.loads(second.read_text())["used_spans"] == spent, "the count carried on, saved where the document says"
    assert json.loads(first.read_text())["used_spans"] == carried, "and no longer to the old file"

    path.write_text(json.dumps(document(None)))
    with caplog.at_level(logging.ERROR):
        assert sampler.reload()
        sampler.save_state()  # nothing to save: no budget (it raised TypeError, as the saver did every second and at exit)
    assert "Traceback" not in caplog.text and "failed" not in caplog.text
    assert json.loads(second.read_text())["used_spans"] == spent

    # A state_path that names a folder is refused as at a start, and the policy in force stays.
    path.write_text(json.dumps(document({**budget, "state_path": str(tmp_path)})))
    with caplog.at_level(logging.ERROR, logger="tracesieve.config"):
        assert not sampler.reload()
    assert "is a directory; expected the path of a state file" in caplog.text
    with pytest.raises(TypeError, match="needs a pipeline with a budget stage"):
        sampler.budget_status()
    # So is one that names another tool's file: refused before anything changes, and the file left as it was.
    foreign = tmp_path / "app.env"
    foreign.write_text("DATABASE_URL=postgres://app@db/app\n")
    foreign.chmod(0o600)
    path.write_text(json.dumps(document({**budget, "state_path": str(foreign)})))
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="tracesieve.config"):
        assert not sampler.reload()
    assert "holds something other than a tracesieve budget state" in caplog.text
    sampler.save_state()
    assert foreign.read_text() == "DATABASE_URL=postgres://app@db/app\n"

    # A budget added by a reload starts from its state file, as a start does.
    path.write_text(json.dumps(document(budget)))
    assert sampler.reload()
    assert sampler.budget_status()["used_spans"] == carried
    sampler.close()


def test_a_reload_that_adds_an_adaptive_stage_says_nothing_feeds_it(tmp_path, caplog):
    """Regression: it was applied without a word, and the description showed a
    boost that no processor could ever raise."""
    path = write(tmp_path / "sampling.toml", "[probability]\nrate = 0.1\n")
    sampler = from_config(path)
    write(path, "[adaptive]\nwindow = 60\n[probability]\nrate = 0.1\n")
    with caplog.at_level(logging.WARNING, logger="tracesieve.config"):
        assert sampler.reload()
    assert "the reloaded policy adds an adaptive stage, but nothing feeds it errors" in caplog.text
    assert sampler.processor is None
    caplog.clear()
    adaptive = from_config(path)  # built with the stage: its processor feeds it, so a reload is quiet
    write(path, "[adaptive]\nwindow = 30\n[probability]\nrate = 0.2\n")
    with caplog.at_level(logging.WARNING, logger="tracesieve.config"):
        assert adaptive.reload()
    assert "nothing feeds it" not in caplog.text


def test_a_relative_state_path_in_a_file_is_beside_the_file(tmp_path, monkeypatch):
    """Regression: it was taken from the process's working directory, so a
    service started from / wrote /budget.json (or failed to), whatever folder
    its configuration was in."""
    config = tmp_path / "etc"
    config.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        config / "sampling.toml", 'store = "memory"\n[probability]\nrate = 1.0\n[budget]\nbudget = 1000\nstate_path = "state/budget.json"\n'
    )
    sampler = from_config(path)
    assert sampler.resolved["stages"][-1]["state_path"] == str(config / "state" / "budget.json")
    sampler.close()
    assert (config / "state" / "budget.json").is_file() and not any(elsewhere.iterdir())
    # A document given as a dict has no folder of its own: the working directory, as for BudgetSampler(state_path=).
    in_code = from_config({"store": "memory", "probability": {"rate": 1.0}, "budget": {"budget": 1000, "state_path": "budget.json"}})
    in_code.close()
    assert (elsewhere / "budget.json").is_file()


def wait_for(condition, seconds=5.0):
    """Whether ``condition()`` came true within ``seconds`` (a watcher's thread acts on its own time)."""
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.02)
    return condition()


def test_the_file_watcher_reloads_on_change(tmp_path):
    path = write(tmp_path / "live.yaml", "reload: true\nreload_interval: 0.05\nprobability: {rate: 1.0}\n")
    sampler = from_config(path)
    try:
        write(path, "reload: true\nreload_interval: 0.05\nprobability: {rate: 0.0}\n")
        assert wait_for(lambda: sampler.reloads == 1)
        assert not sampler.should_sample(None, 1, "x").decision.is_sampled()
    finally:
        sampler.close()


def test_a_watched_file_that_disappears_is_reported_once_and_reloaded_when_back(tmp_path, caplog):
    """A deleted or unreadable configuration file used to go unmentioned: the
    policy stayed, and nothing said the file was gone."""
    path = write(tmp_path / "live.yaml", "reload: true\nreload_interval: 0.05\nprobability: {rate: 1.0}\n")
    sampler = from_config(path)
    try:
        with caplog.at_level(logging.WARNING, logger="tracesieve.config"):
            path.unlink()
            time.sleep(0.5)
        gone = [r.getMessage() for r in caplog.records if "cannot be read any more" in r.getMessage()]
        assert gone == [f"tracesieve: {path} cannot be read any more; the current policy stays in force until it is back"]
        assert sampler.should_sample(None, 1, "x").decision.is_sampled()
        write(path, "reload: true\nreload_interval: 0.05\nprobability: {rate: 0.0}\n")
        assert wait_for(lambda: sampler.reloads == 1)
        assert not sampler.should_sample(None, 1, "x").decision.is_sampled()
    finally:
        sampler.close()


def test_an_edit_refused_as_open_to_every_user_is_reloaded_once_the_mode_is_mended(tmp_path, caplog):
    """Regression: the watcher looked at the file's time and size only, so after
    ``chmod o-w`` mended a file refused as open to every user, the edit in it
    was never read (the contents had not changed since the refusal)."""
    path = write(tmp_path / "live.yaml", "reload: true\nreload_interval: 0.05\nprobability: {rate: 1.0}\n")
    sampler = from_config(path)
    try:
        path.chmod(0o666)
        with caplog.at_level(logging.ERROR, logger="tracesieve.config"):
            write(path, "reload: true\nreload_interval: 0.05\nprobability: {rate: 0.0}\n")
            assert wait_for(lambda: sampler.reload_failures == 1)
        assert "not read, as every user may write it (mode 0666)" in caplog.text
        assert sampler.should_sample(None, 1, "x").decision.is_sampled(), "the policy in force stays"
        path.chmod(0o644)
        assert wait_for(lambda: sampler.reloads == 1)
        assert not sampler.should_sample(None, 1, "x").decision.is_sampled()
    finally:
        sampler.close()


def test_a_reload_follows_the_files_own_reload_settings(tmp_path, caplog):
    """Regression: a reloaded file's reload_interval was never applied, and
    `reload: false` left the file watched and reloaded."""

    path = write(tmp_path / "live.yaml", "reload: true\nreload_interval: 0.05\nprobability: {rate: 1.0}\n")
    sampler = from_config(path)
    try:
        write(path, "reload: true\nreload_interval: 0.2\nprobability: {rate: 0.5}\n")
        assert wait_for(lambda: sampler.reloads == 1)
        assert sampler._watcher is not None and sampler._watcher.interval == 0.2
        with caplog.at_level(logging.INFO, logger="tracesieve.config"):
            write(path, "reload: false\nprobability: {rate: 0.0}\n")
            assert wait_for(lambda: sampler.reloads == 2)
        assert "sets reload = false: it is no longer watched" in caplog.text
        write(path, "reload: false\nprobability: {rate: 1.0}   # an edit after watching stopped\n")
        time.sleep(0.5)
        assert sampler.reloads == 2 and not sampler.should_sample(None, 1, "x").decision.is_sampled()
    finally:
        sampler.close()
    # reload= given to the constructor outranks the file's setting.
    write(path, "reload: true\nreload_interval: 0.05\nprobability: {rate: 1.0}\n")
    pinned = from_config(path, reload=True)
    try:
        write(path, "reload: false\nreload_interval: 0.05\nprobability: {rate: 0.0}\n")
        assert wait_for(lambda: pinned.reloads == 1)
        write(path, "reload: false\nreload_interval: 0.05\nprobability: {rate: 0.5}\n")
        assert wait_for(lambda: pinned.reloads == 2), "still watched"
    finally:
        pinned.close()


def test_a_reload_that_changes_the_tail_settings_says_they_stay(tmp_path, caplog):
    """The provider reads them once; they used to change in the file with no effect and no word."""
    path = write(tmp_path / "sampling.yaml", "probability: {rate: 0.1}\ntail: {latency_threshold: 1.0}\n")
    sampler = from_config(path)
    write(path, "probability: {rate: 0.2}\ntail: {latency_threshold: 1.0}\n")
    with caplog.at_level(logging.WARNING, logger="tracesieve.config"):
        assert sampler.reload()
        assert "tail settings changed" not in caplog.text
        write(path, "probability: {rate: 0.2}\ntail: {latency_threshold: 5.0}\n")
        assert sampler.reload()
    assert "the tail settings changed, and a reload leaves them as they were" in caplog.text


def test_threads_sample_while_a_reload_happens(tmp_path):
    path = write(tmp_path / "sampling.toml", "[probability]\nrate = 0.5\n")
    sampler = from_config(path)
    provider, tracer, exporter = traced(sampler)
    stop = threading.Event()
    errors = []

    def work():
        try:
            while not stop.is_set():
                with tracer.start_as_current_span("s"):
                    pass
        except Exception as error:  # pragma: no cover - a failure is what this test looks for
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        write(path, f"[probability]\nrate = {0.1 + i * 0.04:.2f}\n")
        assert sampler.reload()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert sampler.stats()["sampled"] == len(exporter.get_finished_spans())
    provider.shutdown()


def test_metrics_appear_in_an_in_memory_reader():
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    clock = SimClock(NOON_SEOUL)
    sampler = from_config(EXAMPLES / "example_pipeline.toml", clock=clock, meter_provider=meters)
    for _i in range(200):
        sampler.should_sample(None, random.getrandbits(128), "GET", None, {"http.route": "/api/order"})
    sampler.should_sample(None, 1, "charge", None, {"business.event": "payment"})
    points = metric_points(reader)
    stats = sampler.stats()
    assert points[("tracesieve.sampler.decisions", (("outcome", "sampled"),))] == stats["sampled"]
    # Totals and per-rule counts are separate instruments: summing either by outcome counts each decision once.
    totals = sum(v for (name, _), v in points.items() if name == "tracesieve.sampler.decisions")
    assert totals == stats["decisions"]
    by_rule = sum(v for (name, _), v in points.items() if name == "tracesieve.sampler.rule_decisions")
    assert by_rule == sum(c["decisions"] for c in stats["rules"].values())
    assert points[("tracesieve.sampler.rule_decisions", (("outcome", "sampled"), ("rule", "payment")))] == 1
    assert points[("tracesieve.budget.spans", (("state", "used"),))] == stats["sampled"] + sampler.budget_status()["assumed_spans"]
    assert points[("tracesieve.adaptive.boost", ())] == 1.0
    # Past the period's end, with no decision since, the gauge reads the new period (it read the old one's).
    end = datetime.fromisoformat(sampler.budget_status()["period_end"]).timestamp()
    clock.now = end + 3600
    points = metric_points(reader)
    budget = sampler.budget_status()["budget_spans"]
    assert points[("tracesieve.budget.spans", (("state", "used"),))] == 0
    assert points[("tracesieve.budget.spans", (("state", "remaining"),))] == budget
    meters.shutdown()


def test_samplers_sharing_a_meter_provider_are_all_counted():
    """Regression: a meter keeps the first instrument of a name and ignores the
    callbacks of any later one, so a second sampler on the same meter provider
    (another pipeline, a Jaeger remote sampler) was never counted."""
    from tracesieve import JaegerRemoteSampler

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    samplers = [
        PipelineSampler({"probability": {"rate": 0.5}}, meter_provider=meters),
        PipelineSampler({"probability": {"rate": 0.1}}, meter_provider=meters),
        JaegerRemoteSampler("checkout", initial_rate=0.2, start=False, meter_provider=meters),
    ]
    for number, sampler in enumerate(samplers):
        for trace_id in range(1, 300 * (number + 1)):
            sampler.should_sample(None, trace_id * 0x9E3779B97F4A7C15 % (1 << 128) | 1, "GET")
    points = metric_points(reader)
    for outcome in ("sampled", "dropped"):
        assert points[("tracesieve.sampler.decisions", (("outcome", outcome),))] == sum(s.stats()[outcome] for s in samplers)
    samplers[2].shutdown()
    meters.shutdown()


def test_zero_code_setup_attaches_the_adaptive_processor(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text(
        "import time\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk._configuration import _OTelSDKConfigurator\n"
        "from opentelemetry.trace import Status, StatusCode\n"
        "_OTelSDKConfigurator().configure()\n"
        "sampler = trace.get_tracer_provider().sampler\n"
        "for _ in range(100):\n"
        "    if sampler.processor.counts()['spans'] or time.sleep(0.02):\n"
        "        break\n"
        "    with trace.get_tracer('t').start_as_current_span('x') as s:\n"
        "        s.set_status(Status(StatusCode.ERROR))\n"
        "print(type(sampler).__name__, sampler.processor.counts()['errors'] > 0)\n"
    )
    env = {
        **__import__("os").environ,
        "OTEL_TRACES_SAMPLER": "tracesieve",
        "OTEL_TRACES_SAMPLER_ARG": str(EXAMPLES / "api_pipeline.yaml"),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "PipelineSampler True", out.stderr


def test_zero_code_example_runs():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(EXAMPLES / "zero_code.py")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "sampler: PipelineSampler{force_keep,adaptive,rules,budget}" in out.stdout
    assert '"tracesieve.rule": "payment"' in out.stdout


def test_the_packaged_seed_pipeline_is_the_example_file():
    from tracesieve.policies import SEED_PIPELINE

    assert load_config(EXAMPLES / "example_pipeline.toml") == SEED_PIPELINE
