"""Zero-code configuration through the SDK's own configurator, and through `opentelemetry-instrument`."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from opentelemetry.sdk._configuration import _import_sampler
from opentelemetry.sdk.trace.sampling import Sampler

from tracesieve import ProbabilitySampler, TraceIdRatioSampler
from tracesieve.entry_points import probability_from_arg, tracer_provider

from helpers import ROOT

NAMES = {"tracesieve_probability": ProbabilitySampler, "tracesieve_traceidratio": TraceIdRatioSampler}


def group(name: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=name)}


@pytest.mark.parametrize("name,cls", NAMES.items())
@pytest.mark.parametrize("arg,rate", [("0.25", 0.25), (None, 1.0), ("", 1.0), (" 1e-3 ", 0.001), ("-0", 0.0)])
def test_configurator_builds_our_sampler_from_env(monkeypatch, name, cls, arg, rate):
    if arg is None:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    sampler = _import_sampler(name)
    assert type(sampler) is cls
    assert sampler.rate == rate
    assert "-" not in sampler.get_description()  # -0 reads as 0


@pytest.mark.parametrize("name,cls", NAMES.items())
def test_declarative_group_factory_takes_no_argument(name, cls):
    factory = group("opentelemetry_sampler")[name].load()
    sampler = factory()
    assert isinstance(sampler, Sampler) and type(sampler) is cls
    assert sampler.rate == 1.0


def test_a_bad_argument_is_logged_and_never_fails_open(monkeypatch, caplog):
    """Regression: a bad OTEL_TRACES_SAMPLER_ARG made the factory raise, the SDK
    logged a WARNING and a confusing "Couldn't recognize sampler", and fell back
    to ParentBased(ALWAYS_ON): 100% of traffic."""
    monkeypatch.delenv("TRACESIEVE_FALLBACK_RATE", raising=False)
    for arg, message in [("ten percent", "'ten percent' is not a number"), ("1.5", "'1.5' is out of range"), ("nan", "out of range")]:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="tracesieve.config"):
            sampler = probability_from_arg(arg)
        assert sampler.get_description() == "ProbabilitySampler{0.01}"
        assert message in caplog.text and "Sampling 1% of traces (TRACESIEVE_FALLBACK_RATE)" in caplog.text
        assert caplog.records[0].levelname == "ERROR"


def test_a_tail_section_the_sampler_entry_point_cannot_apply_is_said_once(tmp_path, monkeypatch, caplog):
    """OTEL_TRACES_SAMPLER=tracesieve builds a sampler, which adds no span
    processor: a file's tail section did nothing without a word (and made the
    sampler record what it drops, for a tail stage that never came). The
    provider's entry point reads it."""
    path = tmp_path / "sampling.toml"
    path.write_text("[probability]\nrate = 0.25\n[tail]\ndecision_wait = 1.0\n")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", str(path))
    with caplog.at_level(logging.WARNING, logger="tracesieve"):
        assert _import_sampler("tracesieve").get_description() == "PipelineSampler{probability}"
    said = [r.getMessage() for r in caplog.records if "tail section" in r.getMessage()]
    assert said == [
        f"tracesieve: {path} has a tail section, which OTEL_TRACES_SAMPLER=tracesieve cannot apply (a sampler adds no span "
        "processor), so no trace is kept after the fact; tracesieve.TracerProvider reads it (TracerProvider.from_config, or "
        "OTEL_PYTHON_TRACER_PROVIDER=tracesieve where the SDK's configurator builds no provider), and the SDK's provider "
        "takes a TailSamplingProcessor in code"
    ]
    caplog.clear()
    path.write_text("[probability]\nrate = 0.25\n")
    with caplog.at_level(logging.WARNING, logger="tracesieve"):
        _import_sampler("tracesieve")
    assert "tail section" not in caplog.text


@pytest.mark.parametrize("variable", ["OTEL_TRACES_SAMPLER_ARG", "TRACESIEVE_CONFIG"])
def test_a_tilde_in_a_configuration_path_is_the_home_directory(tmp_path, monkeypatch, variable):
    """Regression: OTEL_TRACES_SAMPLER_ARG=~/sampling.toml, as a Dockerfile's ENV
    or systemd's Environment= pass it (no shell to expand it), was "no such file",
    and the service ran on the 1% fallback."""
    (tmp_path / "sampling.toml").write_text("[probability]\nrate = 0.25\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    monkeypatch.setenv(variable, "~/sampling.toml")
    assert _import_sampler("tracesieve").get_description() == "PipelineSampler{probability}"
    if variable == "TRACESIEVE_CONFIG":
        provider = tracer_provider()
        assert provider.sampler.get_description() == "PipelineSampler{probability}"
        provider.shutdown()


@pytest.mark.parametrize(
    "name,arg,description",
    [
        ("tracesieve_probability", "0.25", "ProbabilitySampler{0.25}"),
        ("tracesieve_traceidratio", "0.5", "TraceIdRatioSampler{0.5}"),
        ("tracesieve_rules", None, "ProbabilitySampler{0.01}"),  # no rules file named: tracesieve's own fallback
        ("traceidratio", "0.1", "TraceIdRatioBased{0.1}"),  # the SDK's own names, as the SDK reads them
        ("parentbased_always_off", None, "ParentBased{root:AlwaysOffSampler,"),
    ],
)
def test_the_provider_builds_the_sampler_the_environment_names(monkeypatch, name, arg, description):
    """Regression: with no sampler passed (OTEL_PYTHON_TRACER_PROVIDER=tracesieve
    under opentelemetry-instrument, or TracerProvider() in code), a package's
    sampler named in OTEL_TRACES_SAMPLER was "Couldn't recognize sampler" to
    the SDK's provider, which then kept every trace."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    monkeypatch.delenv("TRACESIEVE_CONFIG", raising=False)
    monkeypatch.delenv("TRACESIEVE_RULES", raising=False)
    if arg is None:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    provider = tracer_provider()
    try:
        assert provider.sampler.get_description().startswith(description)
    finally:
        provider.shutdown()


def test_a_sampler_name_no_package_provides_is_an_error_and_the_fallback(monkeypatch, caplog):
    from tracesieve import TracerProvider

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "tracesieve_probabilty")
    monkeypatch.setenv("TRACESIEVE_FALLBACK_RATE", "0.05")
    with caplog.at_level(logging.ERROR, logger="tracesieve.provider"):
        provider = TracerProvider()
    try:
        assert provider.sampler.get_description() == "ProbabilitySampler{0.05}"
        assert (
            "OTEL_TRACES_SAMPLER=tracesieve_probabilty gives no sampler (ValueError: no installed package provides a sampler of that "
            "name; the SDK's own are always_on, " in caplog.text
        )
        assert "sampling 5% of traces (TRACESIEVE_FALLBACK_RATE) until it is fixed" in caplog.text
    finally:
        provider.shutdown()


RUN_CONFIGURATOR = """
import logging, sys
from opentelemetry import trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
_OTelSDKConfigurator().configure()
print(trace.get_tracer_provider().sampler.get_description())
"""


@pytest.mark.parametrize(
    "name,content,fallback,expected,logged",
    [
        (
            "rules.toml",
            "default_rate = 0.2\n[[rules]]\nrate = 3\n",
            None,
            "ProbabilitySampler{0.01}",
            "rules.toml: rules[0].rate: 3 is out of range",
        ),
        (
            "pipeline.yaml",
            "probability: {rate: 0.5}\nrecord_rule: yes please\n",
            "0",
            "ProbabilitySampler{0}",
            "pipeline.yaml: record_rule: expected true or false",
        ),
        ("pipeline.yaml", "default_rate: 0.2\nrules: []\n", "0.05", "ProbabilitySampler{0.05}", "this looks like a rules file"),
    ],
)
def test_the_sdk_configurator_gets_the_conservative_fallback_and_an_error(tmp_path, name, content, fallback, expected, logged):
    path = tmp_path / name
    path.write_text(content)
    entry_point = "tracesieve_rules" if name.startswith("rules") else "tracesieve"
    env = {
        **os.environ,
        "OTEL_TRACES_SAMPLER": entry_point,
        "OTEL_TRACES_SAMPLER_ARG": str(path),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    env.pop("TRACESIEVE_FALLBACK_RATE", None)
    if fallback is not None:
        env["TRACESIEVE_FALLBACK_RATE"] = fallback
    done = subprocess.run([sys.executable, "-c", RUN_CONFIGURATOR], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
    assert "ERROR:tracesieve.config" in done.stderr and logged in done.stderr
    assert "Couldn't recognize sampler" not in done.stderr


INSTRUMENTED_APP = """
from opentelemetry import trace
tracer = trace.get_tracer("app")
with tracer.start_as_current_span("charge", attributes={"business.event": "payment", "payment.amount": 25}):
    pass
for _ in range(200):
    with tracer.start_as_current_span("GET /api/health", attributes={"http.route": "/api/health"}):
        pass
provider = trace.get_tracer_provider()
provider.force_flush()
print("sampler:", provider.sampler.get_description())
print("processors:", sorted(type(p).__name__ for p in provider._active_span_processor._span_processors))
"""


@pytest.mark.parametrize(
    "sampler,arg,description,health_kept",
    [
        ("tracesieve", "example_pipeline.toml", "PipelineSampler{force_keep,adaptive,rules,budget}", range(21)),
        ("tracesieve_probability", "1", "ProbabilitySampler{1}", range(200, 201)),
    ],
)
def test_opentelemetry_instrument_runs_our_samplers(tmp_path, sampler, arg, description, health_kept):
    """The command the docs give, `opentelemetry-instrument python app.py` with the distro's
    configurator, end to end: the sampler it builds, what the console exporter prints, and
    (for a pipeline with an adaptive stage) the error-window processor it adds."""
    (tmp_path / "app.py").write_text(INSTRUMENTED_APP)
    argument = str(ROOT / "examples" / arg) if arg.endswith(".toml") else arg
    env = {
        **os.environ,
        "OTEL_TRACES_SAMPLER": sampler,
        "OTEL_TRACES_SAMPLER_ARG": argument,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "TRACESIEVE_STATE_DIR": str(tmp_path / "state"),
    }
    instrument = shutil.which("opentelemetry-instrument")
    assert instrument, "opentelemetry-instrument comes with the test extras (opentelemetry-distro)"
    done = subprocess.run([instrument, sys.executable, "app.py"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"sampler: {description}" in done.stdout, done.stdout[-2000:] + done.stderr
    spans = [json.loads(text) for text in re.findall(r"^\{\n.*?^\}$", done.stdout, flags=re.S | re.M)]
    charges = [span for span in spans if span["name"] == "charge"]
    assert len(charges) == 1 and charges[0]["context"]["trace_state"] == "['{key=ot, value=th:0}']"
    assert len([span for span in spans if span["name"] == "GET /api/health"]) in health_kept
    if sampler == "tracesieve":
        assert charges[0]["attributes"]["tracesieve.rule"] == "payment"
        assert "processors: ['BatchSpanProcessor', 'ErrorWindowProcessor']" in done.stdout
