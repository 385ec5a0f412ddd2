"""No credential leaves the connection settings: a Redis password given in the
URL's userinfo, in a query option or in ``TRACESIEVE_REDIS_PASSWORD`` appears
in no output, object attribute, log or error, on every surface that shows a
store or a sharing link."""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys

import pytest
import redis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracesieve
from tracesieve import BudgetSampler, ConfigError, TailSamplingProcessor, fleet, from_config
from tracesieve._redis import Secret
from tracesieve.local_redis import RedisServer

SECRET = "hunter2-very-secret"


def _url_forms(port):
    return {
        "userinfo": f"redis://:{SECRET}@127.0.0.1:{port}/0",
        "user and password": f"redis://default:{SECRET}@127.0.0.1:{port}/0",
        "query": f"redis://127.0.0.1:{port}/0?password={SECRET}",
        "query with user": f"redis://127.0.0.1:{port}/0?username=default&password={SECRET}",
    }


def _walk(value, seen=None, depth=0):
    """Every string reachable from ``value`` through our objects' attributes,
    containers and reprs (redis-py's own objects are not ours to walk)."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 8:
        return
    seen.add(id(value))
    yield repr(value)
    yield str(value)
    if isinstance(value, Secret):
        return  # the one place the credential lives: it shows as ***
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(key, seen, depth + 1)
            yield from _walk(item, seen, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _walk(item, seen, depth + 1)
    elif type(value).__module__.startswith("tracesieve"):
        for name in dir(value):
            if name.startswith("__"):
                continue
            try:
                attribute = getattr(value, name)
            except Exception:
                continue
            if callable(attribute) and not isinstance(attribute, type):
                continue
            yield from _walk(attribute, seen, depth + 1)
        for attribute in getattr(value, "__dict__", {}).values():
            yield from _walk(attribute, seen, depth + 1)


def _assert_clean(*things):
    for thing in things:
        for text in _walk(thing):
            assert SECRET not in text, f"the password leaked in {text[:200]!r}"


@pytest.fixture
def protected_redis():
    server = RedisServer(password=SECRET).start()
    try:
        yield server
    finally:
        server.stop()


def test_simulate_processes_gives_its_redis_a_password_of_its_own(monkeypatch, capsys):
    """The server listens on loopback, which every user of the host shares: with
    no password, any of them could read and write the run's shared state."""
    from tracesieve import local_redis
    from tracesieve.cli import main

    refused = []

    class Watched(local_redis.RedisServer):
        def start(self) -> Watched:
            super().start()
            try:
                redis.Redis(port=self.port).ping()
            except redis.AuthenticationError:
                refused.append(self.port)
            return self

    monkeypatch.setattr(local_redis, "RedisServer", Watched)
    assert main(["simulate", "--processes", "--requests", "60", "--approaches", "shared", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"]["shared tail (decisions shared)"]
    assert result["error_traces_whole"] == result["error_traces"] > 0
    assert len(refused) == 1


@pytest.mark.parametrize("form", ["userinfo", "user and password", "query", "query with user"])
def test_no_surface_shows_the_password(protected_redis, form, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    url = _url_forms(protected_redis.port)[form] + "#creds"
    sampler = BudgetSampler(0.5, budget=10_000, store=url)
    for trace_id in range(1, 200):
        sampler.should_sample(None, trace_id, "GET /")
    fleet.sync(sampler)
    processor = TailSamplingProcessor(InMemorySpanExporter(), share=url, decision_wait=0.1)
    try:
        document = {"store": url, "probability": {"rate": 0.5}, "budget": {"budget": 10_000}}
        config = tmp_path / "sampling.json"
        config.write_text(json.dumps(document))
        pipeline = from_config(config)
        with pytest.raises(ConfigError) as bad_option:
            BudgetSampler(0.5, budget=10_000, store=url.replace("#creds", "&interval=soon#creds").replace("/0#", "/0?x=1&interval=soon#"))
        checked = subprocess.run([sys.executable, "-m", "tracesieve", "check", str(config)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        # A copy is built from the arguments, password and all: they are kept as a Secret.
        twin = copy.deepcopy(sampler)
        assert twin.stats()["store"]["url"] == sampler.stats()["store"]["url"]
        _assert_clean(
            twin,
            sampler,
            sampler.stats(),
            sampler.description,
            sampler.get_description(),
            sampler.budget_status(),
            fleet.worker_stats(),
            processor,
            processor.stats(),
            pipeline,
            pipeline.settings,
            pipeline.resolved,
            pipeline.description,
            pipeline.stats(),
            str(bad_option.value),
            checked.stdout + checked.stderr,
        )
        assert "***" in sampler.stats()["store"]["url"]
        assert "***" in pipeline.settings["store"]
    finally:
        processor.shutdown()
    assert SECRET not in caplog.text


def test_a_password_with_an_unencoded_at_sign_is_hidden_whole(tmp_path, caplog, capsys):
    """Regression: the scrubber hid a password only up to its first @, while URL
    parsers (redis-py's among them) read it to the authority's last: with
    redis://:p@ss@host, every message showed ":***@ss@host"."""
    from tracesieve.cli import main

    password = "p@ss-very-secret"
    server = RedisServer(password=password).start()
    caplog.set_level(logging.INFO)
    try:
        url = f"redis://:{password}@127.0.0.1:{server.port}/0"
        sampler = BudgetSampler(0.5, budget=10_000, store=f"{url}#at")
        fleet.sync(sampler)
        assert sampler.stats()["store"]["fleet"]["budget"]["members"] == 1  # the password reached Redis whole
        config = tmp_path / "sampling.json"
        config.write_text(json.dumps({"store": f"{url}?interval=soon#at", "budget": {"budget": 10_000}}))
        with pytest.raises(ConfigError) as bad_option:
            from_config(config)
        refused = BudgetSampler(0.5, budget=10_000, store=f"redis://:wrong@{password}@127.0.0.1:{server.port}/0?interval=0#at")
        fleet.sync(refused)
        assert main(["simulate", "--config", f"http://user:{password}@host/policy.yaml"]) == 2
        shown = [
            str(sampler.stats()),
            *sampler.description,
            str(bad_option.value),
            str(refused.stats()),
            caplog.text,
            capsys.readouterr().err,
        ]
        for text in shown:
            assert "ss-very-secret" not in text, text[:300]
        assert ":***@127.0.0.1" in str(bad_option.value)
    finally:
        server.stop()


def test_a_refused_password_is_logged_without_it(protected_redis, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    wrong = f"redis://127.0.0.1:{protected_redis.port}/0?password={SECRET}-wrong#refused"
    sampler = BudgetSampler(0.5, budget=10_000, store=wrong)
    fleet.sync(sampler)
    assert "cannot be used" in caplog.text and "Error" in caplog.text, caplog.text
    processor = TailSamplingProcessor(InMemorySpanExporter(), share=wrong, decision_wait=0.1)
    processor.force_flush()
    processor.shutdown()
    # From the environment: never in the URL, never shown.
    monkeypatch.setenv("TRACESIEVE_REDIS_PASSWORD", SECRET + "-env")
    from_env = BudgetSampler(0.5, budget=10_000, store=f"redis://127.0.0.1:{protected_redis.port}/0#env")
    fleet.sync(from_env)
    _assert_clean(sampler, sampler.stats(), from_env, from_env.stats(), fleet.worker_stats())
    assert SECRET not in caplog.text


def test_an_option_the_client_refuses_fails_at_construction_without_the_password():
    url = f"redis://127.0.0.1:1/0?password={SECRET}&ssl_password={SECRET}#x"
    with pytest.raises(ConfigError, match="store: the Redis client does not take") as error:
        BudgetSampler(0.5, budget=10_000, store=url)
    assert SECRET not in str(error.value)
    with pytest.raises(ConfigError, match="share: the Redis client does not take") as error:
        TailSamplingProcessor(InMemorySpanExporter(), share=url)
    assert SECRET not in str(error.value)


@pytest.mark.parametrize(
    "entry_point",
    ["tracesieve", "tracesieve_probability", "tracesieve_rules"],
)
def test_an_argument_meant_for_another_sampler_is_logged_without_its_password(entry_point, tmp_path):
    """Found by fuzzing the zero-code variables: switching OTEL_TRACES_SAMPLER from jaeger_remote
    to a tracesieve sampler but leaving the argument made the error log quote it, password included."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACESIEVE_"))},
        "OTEL_TRACES_SAMPLER": entry_point,
        "OTEL_TRACES_SAMPLER_ARG": f"endpoint=http://collector:{SECRET}@127.0.0.1:5778,pollingIntervalMs=5000",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "TRACESIEVE_STATE_DIR": str(tmp_path),
    }
    code = (
        "import logging, sys; logging.basicConfig(level=logging.WARNING, stream=sys.stderr)\n"
        "from opentelemetry.sdk._configuration import _OTelSDKConfigurator; _OTelSDKConfigurator().configure()\n"
        "from opentelemetry import trace; print(trace.get_tracer_provider().sampler.get_description())"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ProbabilitySampler{0.01}", "the conservative fallback, never failing open"
    assert "ERROR:tracesieve.config" in done.stderr and "collector:***@127.0.0.1" in done.stderr, done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_the_command_line_echoes_no_password(capsys):
    from tracesieve.cli import main

    assert main(["check", f"redis://:{SECRET}@127.0.0.1:6379/0.toml"]) == 2
    assert main(["simulate", "--config", f"http://user:{SECRET}@host/policy.yaml"]) == 2
    err = capsys.readouterr().err
    assert SECRET not in err and err.count(":***@") == 2, err


@pytest.mark.parametrize(
    "text,shown",
    [
        (f"endpoint=http://u:{SECRET}@127.0.0.1:1,x=1", "endpoint=http://u:***@127.0.0.1:1,x=1"),
        (f"http:/u:{SECRET}@host/x.toml: no such file", "http:/u:***@host/x.toml: no such file"),
        (f"redis://:{SECRET}@host:6379/0", "redis://:***@host:6379/0"),
        (f"redis://host/0?username=a&password={SECRET}", "redis://host/0?username=a&password=***"),
        ("redis://user@host/0 and rules[0].rate: 3 is out of range", "redis://user@host/0 and rules[0].rate: 3 is out of range"),
    ],
)
def test_scrub_hides_passwords_and_leaves_the_rest(text, shown):
    from tracesieve._scrub import scrub

    assert scrub(text) == shown


@pytest.mark.parametrize(
    "build",
    [
        lambda: from_config({"jaeger_remote": {"service_name": "a", "endpoint": f"ftp://u:{SECRET}@host:1"}}),
        lambda: from_config({"probability": {"rate": 0.5}, "store": f"bogus://:{SECRET}@host/0"}),
        lambda: BudgetSampler(budget=10, store=f"file://u:{SECRET}@host/x"),
    ],
)
def test_configuration_errors_quoting_a_url_hide_its_password(build):
    """Found by the same fuzzing: these errors quoted the URL as given, password and all."""
    with pytest.raises(ConfigError) as raised:
        build()
    assert SECRET not in str(raised.value) and ":***@" in str(raised.value), str(raised.value)


LONG_SECRET = "S3CRET" * 20


@pytest.mark.parametrize(
    "build",
    [
        lambda: tracesieve.XRayRemoteSampler(endpoint=f"ftp://user:{LONG_SECRET}@host:2000/", start=False),
        lambda: tracesieve.JaegerRemoteSampler("svc", endpoint=f"ftp://user:{LONG_SECRET}@host:5778", start=False),
        lambda: from_config({"xray_remote": {"endpoint": f"ftp://u:{LONG_SECRET}@h:1/x"}}),
        lambda: tracesieve.TracerProvider(share=[f"redis://u:{LONG_SECRET}@h"], shutdown_on_exit=False),
        lambda: BudgetSampler(budget=10, store="memory", period=f"http://u:{LONG_SECRET}@h"),
    ],
    ids=["xray endpoint", "jaeger endpoint", "pipeline endpoint", "a URL in a list", "text a native check quotes"],
)
def test_a_long_password_is_hidden_where_a_message_clips_the_value(build):
    """Messages quote a value's first 80 characters; clipped before it was masked, a
    URL lost the @ that marks its password, and 70 characters of it showed."""
    with pytest.raises(ConfigError) as raised:
        build()
    assert "S3C" not in str(raised.value) and ":***@" in str(raised.value), str(raised.value)


def test_a_strategy_source_with_credentials_is_never_shown_with_them(caplog):
    from tracesieve import JaegerRemoteSampler

    with caplog.at_level(logging.INFO, logger="tracesieve.remote"):
        sampler = JaegerRemoteSampler("checkout", endpoint=f"http://collector:{SECRET}@127.0.0.1:1", polling_interval=60, timeout=0.5)
        try:
            sampler.poller.poll()  # refused: the failure is logged, quoting the source
            status = sampler.remote_status()
        finally:
            sampler.shutdown()
    assert status["fetch_failures"] >= 1 and status["source"].startswith("http://collector:***@127.0.0.1:1")
    assert "collector:***@" in caplog.text and SECRET not in caplog.text + repr(status)


def test_every_tracesieve_logger_scrubs_its_lines_and_tracebacks(caplog):
    from tracesieve._scrub import scrubbed_logger

    logger = scrubbed_logger("tracesieve.remote")
    assert scrubbed_logger("tracesieve.remote").filters == logger.filters, "the filter is added once"
    with caplog.at_level(logging.INFO, logger="tracesieve.remote"):
        logger.warning("the source %s failed", f"http://u:{SECRET}@host")
        try:
            raise OSError(f"connecting to redis://:{SECRET}@host:6379")
        except OSError:
            logger.exception("a worker failed")
    text = caplog.text + "".join(record.exc_text or "" for record in caplog.records)
    assert SECRET not in text and text.count(":***@") >= 2, text


def test_text_that_is_not_utf8_is_scrubbed_and_logged_not_raised(caplog):
    """Regression: a message quoting a file name with bytes that are not UTF-8 made the
    scrubbing raise UnicodeEncodeError: a logging call raised into its caller and a
    ConfigError could not be made."""
    from tracesieve._scrub import scrub, scrubbed_logger

    assert scrub(f"redis://:{SECRET}@host/0 /tmp/caf\udce9") == "redis://:***@host/0 /tmp/caf\\udce9"
    with caplog.at_level(logging.INFO, logger="tracesieve.remote"):
        scrubbed_logger("tracesieve.remote").warning("cannot read %s", "/tmp/caf\udce9")
    assert "cannot read /tmp/caf\\udce9" in caplog.text
    assert str(ConfigError("/tmp/caf\udce9: no such file")) == "/tmp/caf\\udce9: no such file"


def test_a_password_with_an_unencoded_slash_is_refused_without_showing_it(tmp_path):
    """Regression: a base64 password holds '/', which ends a URL's authority:
    redis://u:12/ab@host/0 read as host u, port 12, path /ab@host/0, and the
    error named that path, the password's tail. Percent-encoded, it works."""
    password = "12/ab+very-secret="
    server = RedisServer(password=password).start()
    try:
        plain = f"redis://default:{password}@127.0.0.1:{server.port}/0"
        for build in (
            lambda: BudgetSampler(0.5, budget=10_000, store=f"{plain}#slash"),
            lambda: TailSamplingProcessor(InMemorySpanExporter(), share=f"{plain}#slash"),
            lambda: BudgetSampler(0.5, budget=10_000, store=f"redis://default:12?x=ab-very-secret@127.0.0.1:{server.port}"),
        ):
            with pytest.raises(ConfigError) as refused:
                build()
            assert "very-secret" not in str(refused.value) and "percent-encoded" in str(refused.value), str(refused.value)
        encoded = plain.replace("12/ab+", "12%2Fab%2B")
        sampler = BudgetSampler(0.5, budget=10_000, store=f"{encoded}#slash")
        fleet.sync(sampler)
        assert sampler.stats()["store"]["fleet"]["budget"]["members"] == 1  # the password reached Redis whole
        assert "very-secret" not in str(sampler.stats()) + "".join(sampler.description)
    finally:
        server.stop()
