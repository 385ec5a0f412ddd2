"""OpenTelemetry's composable samplers (specification: CompositeSampler,
ComposableSampler, OTEP 250), evaluated natively in one call per span.

The names mirror the SDK's ``opentelemetry.sdk.trace._sampling_experimental``,
so code written for it runs on this module by changing the import::

    from tracesieve.composable import (
        composable_parent_threshold, composable_rule_based,
        composable_always_off, composable_traceid_ratio_based, composite_sampler,
    )
    from tracesieve.composable._rule_based import AttributeValuesPredicate

    sampler = composite_sampler(composable_parent_threshold(composable_rule_based([
        (AttributeValuesPredicate("http.route", ["/health"]), composable_always_off()),
        (AlwaysMatchPredicate(), composable_traceid_ratio_based(0.1)),
    ])))

Beyond the SDK: ``composable_annotating``, ``composable_any_of``,
``composable_rate_limited`` and ``composable_pipeline`` (a tracesieve pipeline
as one node). See docs/composable.md.
"""

from tracesieve.composable._always_off import composable_always_off
from tracesieve.composable._always_on import composable_always_on
from tracesieve.composable._composable import ComposableSampler, SamplingIntent
from tracesieve.composable._extensions import (
    composable_annotating,
    composable_any_of,
    composable_pipeline,
    composable_rate_limited,
)
from tracesieve.composable._parent_threshold import composable_parent_threshold
from tracesieve.composable._rule_based import composable_rule_based
from tracesieve.composable._sampler import CompositeSampler, composite_sampler
from tracesieve.composable._traceid_ratio import composable_traceid_ratio_based

__all__ = [
    "ComposableSampler",
    "CompositeSampler",
    "SamplingIntent",
    "composable_always_off",
    "composable_always_on",
    "composable_annotating",
    "composable_any_of",
    "composable_parent_threshold",
    "composable_pipeline",
    "composable_rate_limited",
    "composable_rule_based",
    "composable_traceid_ratio_based",
    "composite_sampler",
]
