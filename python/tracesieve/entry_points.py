"""Factories for the SDK's sampler entry points.

``opentelemetry_traces_sampler`` factories get the ``OTEL_TRACES_SAMPLER_ARG``
string (or None); ``opentelemetry_sampler`` factories get no argument.

A factory never fails open. When the SDK's configurator calls a factory that
raises, it logs a warning and falls back to ``ParentBased(ALWAYS_ON)``: every
trace kept, the opposite of what someone who configured a budget wants. So a
configuration mistake here is logged as an ERROR naming the file, the key and
the fix, and the factory returns a conservative sampler instead: consistent
probability sampling at ``TRACESIEVE_FALLBACK_RATE`` (default 0.01), following
the parent's decision.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Set

from opentelemetry.sdk.trace.sampling import Sampler

from tracesieve._checks import FALLBACK_VARIABLE, fallback_rate, parse_rate, quoted
from tracesieve._scrub import scrub, scrubbed_logger
from tracesieve.config import ConfigError
from tracesieve.samplers import ProbabilitySampler, TraceIdRatioSampler

_logger = scrubbed_logger("tracesieve.config")
_DEFAULT_RATE = 1.0


def _never_fail_open(entry_point: str, build: Callable[[], Sampler], what: str = "") -> Sampler:
    """``build()``, or, on a configuration mistake, the logged conservative fallback."""
    try:
        return build()
    except ConfigError as error:
        rate = fallback_rate()
        _logger.error(
            "tracesieve: %s is misconfigured: %s. Sampling %g%% of traces (%s) until it is fixed; "
            "`tracesieve check FILE` validates a configuration file.",
            what or f"OTEL_TRACES_SAMPLER={entry_point}",
            scrub(str(error)),  # the argument may be a URL with a password, meant for another sampler
            rate * 100,
            FALLBACK_VARIABLE,
        )
        return ProbabilitySampler(rate)


def _rate_from_arg(arg: Optional[str]) -> float:
    if arg is None or (isinstance(arg, str) and not arg.strip()):
        return _DEFAULT_RATE
    if isinstance(arg, (int, float)) and not isinstance(arg, bool):
        return float(arg)
    return parse_rate("OTEL_TRACES_SAMPLER_ARG", arg)


def probability_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=tracesieve_probability``."""
    return _never_fail_open("tracesieve_probability", lambda: ProbabilitySampler(_rate_from_arg(arg)))


def traceidratio_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=tracesieve_traceidratio``."""
    return _never_fail_open("tracesieve_traceidratio", lambda: TraceIdRatioSampler(_rate_from_arg(arg)))


def probability_default() -> ProbabilitySampler:
    """Declarative configuration: a ProbabilitySampler at rate 1.0."""
    return ProbabilitySampler(_DEFAULT_RATE)


def traceidratio_default() -> TraceIdRatioSampler:
    """Declarative configuration: a TraceIdRatioSampler at rate 1.0."""
    return TraceIdRatioSampler(_DEFAULT_RATE)


def _path(arg: Optional[str], variable: str, what: str) -> str:
    path = (arg or "").strip() or os.environ.get(variable, "").strip()
    if not path:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG: missing; set it (or {variable}) to the path of a .toml, .yaml or .json {what}")
    # A leading ~ is the home directory, as in a shell: a Dockerfile's ENV and
    # systemd's Environment= pass it on as it is.
    return os.path.expanduser(path)


def rules_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=tracesieve_rules``: the argument (or ``TRACESIEVE_RULES``)
    is the path of a ``.toml``, ``.yaml`` or ``.json`` rules file."""
    from tracesieve.samplers import RuleSampler

    return _never_fail_open("tracesieve_rules", lambda: RuleSampler.from_file(_path(arg, "TRACESIEVE_RULES", "rules file")))


def rules_default() -> Sampler:
    """Declarative configuration: the rules file named by ``TRACESIEVE_RULES``."""
    return rules_from_arg(None)


def pipeline_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=tracesieve``: the argument (or ``TRACESIEVE_CONFIG``)
    is the path of a ``.toml``, ``.yaml`` or ``.json`` pipeline configuration."""
    from tracesieve.pipeline import from_config

    def build() -> Sampler:
        sampler = from_config(_path(arg, "TRACESIEVE_CONFIG", "pipeline configuration"))
        if sampler.processor is not None:
            _attach_when_installed(sampler)
        if sampler._tail_section is not None:
            # A sampler adds no span processor: the tail section would do nothing, silently.
            _logger.warning(
                "tracesieve: %s has a tail section, which OTEL_TRACES_SAMPLER=tracesieve cannot apply (a sampler adds no "
                "span processor), so no trace is kept after the fact; tracesieve.TracerProvider reads it (TracerProvider."
                "from_config, or OTEL_PYTHON_TRACER_PROVIDER=tracesieve where the SDK's configurator builds no provider), "
                "and the SDK's provider takes a TailSamplingProcessor in code",
                sampler.source,
            )
        return sampler

    return _never_fail_open("tracesieve", build)


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


def pipeline_default() -> Sampler:
    """Declarative configuration: this sampler's ``tracesieve`` node of the file
    ``OTEL_CONFIG_FILE`` names (a pipeline, or a composite section), else the
    pipeline file ``TRACESIEVE_CONFIG`` names."""
    from tracesieve import declarative

    def build() -> Sampler:
        node = declarative.next_plugin_node()
        if node is None:
            return pipeline_from_arg(None)
        where, path, spec, service = node
        sampler = declarative.plugin_sampler(spec, path, where, service)
        if getattr(sampler, "processor", None) is not None:
            _attach_when_installed(sampler)
        return sampler

    return _never_fail_open(declarative.PLUGIN, build, f"the tracesieve sampler in {declarative.CONFIG_FILE_VARIABLE}")


def _arg_settings(arg: Optional[str], keys: Set[str], expected: str) -> Dict[str, str]:
    """``OTEL_TRACES_SAMPLER_ARG`` as comma-separated ``key=value`` settings, each one of ``keys``."""
    settings: Dict[str, str] = {}
    for part in (arg or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in keys:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG: {quoted(part.strip())} is not a setting; expected comma-separated {expected}")
        settings[key] = value.strip()
    return settings


#: The specification's argument keys for the Jaeger remote sampler.
_JAEGER_KEYS = {"endpoint", "pollingIntervalMs", "initialSamplingRate"}


def _jaeger_remote(arg: Optional[str], respect_parent: bool, entry_point: str) -> Sampler:
    from tracesieve.remote import DEFAULT_ENDPOINT, JaegerRemoteSampler, resource_service_name

    def build() -> Sampler:
        settings = _arg_settings(arg, _JAEGER_KEYS, "endpoint=URL, pollingIntervalMs=N, initialSamplingRate=P")
        interval_ms = _parse_number("pollingIntervalMs", settings.get("pollingIntervalMs", "60000"))
        rate = parse_rate("initialSamplingRate", settings.get("initialSamplingRate", "0.001"))
        return JaegerRemoteSampler(
            resource_service_name(),
            endpoint=settings.get("endpoint", DEFAULT_ENDPOINT),
            polling_interval=interval_ms / 1000.0,
            initial_rate=rate,
            respect_parent=respect_parent,
        )

    return _never_fail_open(entry_point, build)


def _parse_number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: {quoted(text)} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name}: {quoted(text)} is out of range; expected a positive number")
    return value


def jaeger_remote_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=jaeger_remote``: every span decided by the remote
    strategy (``OTEL_TRACES_SAMPLER_ARG=endpoint=...,pollingIntervalMs=...,initialSamplingRate=...``)."""
    return _jaeger_remote(arg, respect_parent=False, entry_point="jaeger_remote")


def parentbased_jaeger_remote_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=parentbased_jaeger_remote``: root spans by the remote
    strategy, children follow their parent."""
    return _jaeger_remote(arg, respect_parent=True, entry_point="parentbased_jaeger_remote")


#: The AWS samplers' argument keys (``OTEL_TRACES_SAMPLER_ARG=endpoint=...,polling_interval=...``).
_XRAY_KEYS = {"endpoint", "polling_interval"}


def _xray_remote(arg: Optional[str], respect_parent: bool, entry_point: str) -> Sampler:
    from tracesieve.xray import DEFAULT_ENDPOINT, DEFAULT_POLLING_INTERVAL, XRayRemoteSampler

    def build() -> Sampler:
        settings = _arg_settings(arg, _XRAY_KEYS, "endpoint=URL, polling_interval=SECONDS")
        interval = _parse_number("polling_interval", settings.get("polling_interval", str(DEFAULT_POLLING_INTERVAL)))
        return XRayRemoteSampler(
            None, endpoint=settings.get("endpoint", DEFAULT_ENDPOINT), polling_interval=interval, respect_parent=respect_parent
        )

    return _never_fail_open(entry_point, build)


def xray_remote_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=xray_remote``: every span decided by AWS X-Ray's
    sampling rules (``OTEL_TRACES_SAMPLER_ARG=endpoint=...,polling_interval=...``)."""
    return _xray_remote(arg, respect_parent=False, entry_point="xray_remote")


def parentbased_xray_remote_from_arg(arg: Optional[str] = None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=parentbased_xray_remote``: root spans by X-Ray's
    rules, children follow their parent."""
    return _xray_remote(arg, respect_parent=True, entry_point="parentbased_xray_remote")


def tracer_provider() -> Any:
    """``OTEL_PYTHON_TRACER_PROVIDER=tracesieve``: a ``tracesieve.TracerProvider``
    from the document ``TRACESIEVE_CONFIG`` names (its stages the head
    sampler, its ``tail`` section the tail settings); without one, on the
    defaults. A mistake in the document is logged and the provider is built
    on the defaults with the conservative fallback sampler (never failing open)."""
    from tracesieve.provider import TracerProvider

    path = os.path.expanduser(os.environ.get("TRACESIEVE_CONFIG", "").strip())
    if not path:
        return TracerProvider()
    try:
        return TracerProvider.from_config(path)
    except ConfigError as error:
        rate = fallback_rate()
        _logger.error(
            "tracesieve: TRACESIEVE_CONFIG is misconfigured: %s. Recording with tail decisions on the defaults and a head "
            "sample of %g%% (%s) until it is fixed; `tracesieve check FILE` validates a configuration file.",
            scrub(str(error)),
            rate * 100,
            FALLBACK_VARIABLE,
        )
        return TracerProvider(sampler=ProbabilitySampler(rate, defer=True))
