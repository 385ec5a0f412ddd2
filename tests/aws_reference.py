"""The AWS distribution's own X-Ray sampler (``aws-opentelemetry-distro``),
which the differential tests and benchmarks run beside ours. Its package
pins older OpenTelemetry releases, so the README's test command installs it
without its dependencies into ``.reference/aws``, read from there alone."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REFERENCE = Path(__file__).resolve().parents[1] / ".reference" / "aws"
INSTALL = "pip install --no-deps --target .reference/aws aws-opentelemetry-distro==0.21.0"


def load() -> SimpleNamespace:
    """The AWS sampler's modules; a clear failure naming the install command when absent."""
    if not (REFERENCE / "amazon").is_dir():
        raise RuntimeError(f"the AWS X-Ray sampler is not installed for the differential tests; run: {INSTALL}")
    if str(REFERENCE) not in sys.path:
        sys.path.append(str(REFERENCE))
    from amazon.opentelemetry.distro.sampler import _clock, _fallback_sampler, _rule_cache, _sampling_rule, _sampling_target
    from amazon.opentelemetry.distro.sampler.aws_xray_remote_sampler import AwsXRayRemoteSampler

    return SimpleNamespace(
        Clock=_clock._Clock,
        FallbackSampler=_fallback_sampler._FallbackSampler,
        RuleCache=_rule_cache._RuleCache,
        SamplingRule=_sampling_rule._SamplingRule,
        SamplingTargetResponse=_sampling_target._SamplingTargetResponse,
        AwsXRayRemoteSampler=AwsXRayRemoteSampler,
    )


def sim_clock_for(aws: SimpleNamespace, clock: Any) -> Any:
    """The AWS sampler's clock, reading a ``tracesieve.testing.SimClock``."""

    class SimulatedClock(aws.Clock):  # type: ignore[name-defined,misc]
        def now(self) -> datetime.datetime:
            return datetime.datetime.fromtimestamp(clock.now)

    return SimulatedClock()


def rule_cache(aws: SimpleNamespace, resource: Any, clock: Any, records: list) -> Any:
    """The AWS rule cache (what its sampler decides with) holding ``records``."""
    import threading

    cache = aws.RuleCache(resource, aws.FallbackSampler(clock), "0" * 24, clock, threading.Lock())
    cache.update_sampling_rules([aws.SamplingRule(**record["SamplingRule"]) for record in records])
    return cache
