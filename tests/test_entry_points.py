"""Zero-code configuration through the SDK's own configurator."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import pytest
from opentelemetry.sdk._configuration import _import_sampler
from opentelemetry.sdk.trace.sampling import Sampler

from tracesieve import ProbabilitySampler, TraceIdRatioSampler
from tracesieve.entry_points import probability_from_arg

NAMES = {"tracesieve_probability": ProbabilitySampler, "tracesieve_traceidratio": TraceIdRatioSampler}


def group(name: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=name)}


@pytest.mark.parametrize("name,cls", NAMES.items())
@pytest.mark.parametrize("arg,rate", [("0.25", 0.25), (None, 1.0), ("", 1.0), (" 1e-3 ", 0.001)])
def test_configurator_builds_our_sampler_from_env(monkeypatch, name, cls, arg, rate):
    if arg is None:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    sampler = _import_sampler(name)
    assert type(sampler) is cls
    assert sampler.rate == rate


@pytest.mark.parametrize("name,cls", NAMES.items())
def test_declarative_group_factory_takes_no_argument(name, cls):
    factory = group("opentelemetry_sampler")[name].load()
    sampler = factory()
    assert isinstance(sampler, Sampler) and type(sampler) is cls
    assert sampler.rate == 1.0


def test_bad_argument_is_a_clear_error(monkeypatch, caplog):
    with pytest.raises(ValueError, match=r"OTEL_TRACES_SAMPLER_ARG: 'ten percent' is not a number; expected a sampling rate in \[0, 1\]"):
        probability_from_arg("ten percent")
    with pytest.raises(ValueError, match=r"OTEL_TRACES_SAMPLER_ARG: '1.5' is out of range"):
        probability_from_arg("1.5")
    with pytest.raises(ValueError, match="out of range"):
        probability_from_arg("nan")
    # The configurator logs our message and falls back to the SDK default.
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "ten percent")
    with caplog.at_level(logging.WARNING):
        assert _import_sampler("tracesieve_probability") is None
    assert "is not a number" in caplog.text
