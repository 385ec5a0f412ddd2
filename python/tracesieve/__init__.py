"""tracesieve: smart trace sampling for OpenTelemetry Python, decided in Rust.

    from opentelemetry.sdk.trace import TracerProvider
    from tracesieve import ProbabilitySampler
    provider = TracerProvider(sampler=ProbabilitySampler(0.1))
"""

from tracesieve._adaptive import AdaptiveSampler, ErrorWindowProcessor
from tracesieve._budget import BudgetSampler
from tracesieve._export import DedupSpanExporter, RetryingSpanExporter
from tracesieve._pipeline import ConfigError, PipelineSampler, from_config, load_config
from tracesieve._samplers import ProbabilitySampler, RuleSampler, TraceIdRatioSampler
from tracesieve._tail import TailSamplingProcessor

__all__ = [
    "AdaptiveSampler",
    "BudgetSampler",
    "ConfigError",
    "DedupSpanExporter",
    "ErrorWindowProcessor",
    "PipelineSampler",
    "ProbabilitySampler",
    "RetryingSpanExporter",
    "RuleSampler",
    "TailSamplingProcessor",
    "TraceIdRatioSampler",
    "__version__",
    "from_config",
    "load_config",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("tracesieve")
except Exception:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
