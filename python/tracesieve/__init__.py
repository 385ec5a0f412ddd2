"""tracesieve: smart trace sampling for OpenTelemetry Python, decided in Rust.

    from opentelemetry.sdk.trace import TracerProvider
    from tracesieve import ProbabilitySampler
    provider = TracerProvider(sampler=ProbabilitySampler(0.1))

The library lives here; the ``tracesieve`` command is ``tracesieve.cli`` and
the pure-Python oracles and baselines are ``tracesieve.reference``; neither is
imported by the library.
"""

from tracesieve.adaptive import AdaptiveSampler, ErrorWindowProcessor
from tracesieve.budget import BudgetSampler
from tracesieve.config import ConfigError, load_config
from tracesieve.declarative import from_config
from tracesieve.estimate import adjusted_count
from tracesieve.export import DedupSpanExporter, RetryingSpanExporter
from tracesieve.pipeline import PipelineSampler
from tracesieve.provider import TracerProvider
from tracesieve.remote import JaegerRemoteSampler
from tracesieve.samplers import ProbabilitySampler, RuleSampler, TraceIdRatioSampler
from tracesieve.tail import TailSamplingProcessor
from tracesieve.xray import XRayRemoteSampler

__all__ = [
    "AdaptiveSampler",
    "BudgetSampler",
    "ConfigError",
    "DedupSpanExporter",
    "ErrorWindowProcessor",
    "JaegerRemoteSampler",
    "PipelineSampler",
    "ProbabilitySampler",
    "RetryingSpanExporter",
    "RuleSampler",
    "TailSamplingProcessor",
    "TraceIdRatioSampler",
    "TracerProvider",
    "XRayRemoteSampler",
    "__version__",
    "adjusted_count",
    "from_config",
    "load_config",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("tracesieve")
except Exception:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
