"""Factories for the SDK's sampler entry points.

``opentelemetry_traces_sampler`` factories get the ``OTEL_TRACES_SAMPLER_ARG``
string (or None); ``opentelemetry_sampler`` factories get no argument.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from tracesieve.config import ConfigError
from tracesieve.samplers import ProbabilitySampler, TraceIdRatioSampler

_DEFAULT_RATE = 1.0


def _rate_from_arg(arg: Optional[str]) -> float:
    if arg is None or (isinstance(arg, str) and not arg.strip()):
        return _DEFAULT_RATE
    if isinstance(arg, (int, float)) and not isinstance(arg, bool):
        return float(arg)
    try:
        rate = float(arg)
    except (TypeError, ValueError):
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG: {arg!r} is not a number; expected a sampling rate in [0, 1], such as 0.1") from None
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG: {arg!r} is out of range; expected a sampling rate in [0, 1]")
    return rate


def probability_from_arg(arg: Optional[str] = None) -> ProbabilitySampler:
    """``OTEL_TRACES_SAMPLER=tracesieve_probability``."""
    return ProbabilitySampler(_rate_from_arg(arg))


def traceidratio_from_arg(arg: Optional[str] = None) -> TraceIdRatioSampler:
    """``OTEL_TRACES_SAMPLER=tracesieve_traceidratio``."""
    return TraceIdRatioSampler(_rate_from_arg(arg))


def probability_default() -> ProbabilitySampler:
    """Declarative configuration: a ProbabilitySampler at rate 1.0."""
    return ProbabilitySampler(_DEFAULT_RATE)


def traceidratio_default() -> TraceIdRatioSampler:
    """Declarative configuration: a TraceIdRatioSampler at rate 1.0."""
    return TraceIdRatioSampler(_DEFAULT_RATE)


def rules_from_arg(arg: Optional[str] = None):
    """``OTEL_TRACES_SAMPLER=tracesieve_rules``: the argument (or ``TRACESIEVE_RULES``)
    is the path of a ``.toml``, ``.yaml`` or ``.json`` rules file."""
    import os

    from tracesieve.samplers import RuleSampler

    path = (arg or "").strip() or os.environ.get("TRACESIEVE_RULES", "").strip()
    if not path:
        raise ConfigError(
            "tracesieve_rules needs a rules file: set OTEL_TRACES_SAMPLER_ARG (or TRACESIEVE_RULES) "
            "to the path of a .toml, .yaml or .json file"
        )
    return RuleSampler.from_file(path)


def rules_default():
    """Declarative configuration: the rules file named by ``TRACESIEVE_RULES``."""
    return rules_from_arg(None)


def pipeline_from_arg(arg: Optional[str] = None):
    """``OTEL_TRACES_SAMPLER=tracesieve``: the argument (or ``TRACESIEVE_CONFIG``)
    is the path of a ``.toml``, ``.yaml`` or ``.json`` pipeline configuration."""
    import os

    from tracesieve.pipeline import from_config

    path = (arg or "").strip() or os.environ.get("TRACESIEVE_CONFIG", "").strip()
    if not path:
        raise ConfigError(
            "tracesieve needs a configuration file: set OTEL_TRACES_SAMPLER_ARG (or TRACESIEVE_CONFIG) "
            "to the path of a .toml, .yaml or .json file"
        )
    sampler = from_config(path)
    if sampler.processor is not None:
        _attach_when_installed(sampler)
    return sampler


def _attach_when_installed(sampler: Any, timeout: float = 30.0) -> None:
    """Zero-code setup builds the sampler before the TracerProvider exists, and
    offers no hook for span processors. Watch (briefly, in the background) for
    the global provider that uses this sampler and add the adaptive stage's
    processor to it, so the windows are fed with no code at all."""
    import threading
    import time

    from opentelemetry import trace

    processor = sampler.processor

    def attach() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            provider = trace.get_tracer_provider()
            if getattr(provider, "sampler", None) is sampler and hasattr(provider, "add_span_processor"):
                provider.add_span_processor(processor)
                return
            time.sleep(0.01)

    threading.Thread(target=attach, name="tracesieve-attach-processor", daemon=True).start()


def pipeline_default():
    """Declarative configuration: the pipeline file named by ``TRACESIEVE_CONFIG``."""
    return pipeline_from_arg(None)
