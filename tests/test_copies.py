"""Samplers copy and pickle as the SDK's do: ``copy.deepcopy`` and ``pickle``
build a sampler anew from its arguments (it decides as the original does, with
state of its own unless its store is shared), ``copy.copy`` shares the state.
The native objects themselves can be neither copied nor pickled."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import random
from typing import Any, Callable, Dict, List

import pytest
from opentelemetry.sdk.resources import Resource

from tracesieve import (
    AdaptiveSampler,
    BudgetSampler,
    ErrorWindowProcessor,
    JaegerRemoteSampler,
    PipelineSampler,
    ProbabilitySampler,
    RuleSampler,
    TraceIdRatioSampler,
    XRayRemoteSampler,
    composable,
)

from helpers import metric_points

RULES: Dict[str, Any] = {"rules": [{"name": "search", "route": "/api/search", "rate": 0.1}], "default_rate": 0.4}
BUILDERS: Dict[str, Callable[[], Any]] = {
    "probability": lambda: ProbabilitySampler(0.3),
    "traceidratio": lambda: TraceIdRatioSampler(0.25, respect_parent=False),
    "rules": lambda: RuleSampler(**RULES),
    "budget": lambda: BudgetSampler(RuleSampler(**RULES), budget=10**9, store="memory"),
    "adaptive": lambda: AdaptiveSampler(0.2),
    "pipeline": lambda: PipelineSampler({"rules": RULES, "rate_limit": {"traces_per_second": 10**6}}),
    "jaeger": lambda: JaegerRemoteSampler("checkout", initial_rate=0.05, start=False),
    "xray": lambda: XRayRemoteSampler(start=False),
    # The SDK's Resource holds a lock, so it deep-copies but does not pickle.
    "xray_resource": lambda: XRayRemoteSampler(Resource.create({"service.name": "checkout"}), start=False),
    "composite": lambda: composable.composite_sampler(
        composable.composable_parent_threshold(composable.composable_traceid_ratio_based(0.5))
    ),
    "composite_spec": lambda: composable.CompositeSampler.from_spec({"parent_threshold": {"root": {"probability": {"ratio": 0.25}}}}),
}
WAYS: Dict[str, Callable[[Any], Any]] = {"deepcopy": copy.deepcopy, "pickle": lambda sampler: pickle.loads(pickle.dumps(sampler))}


def _decisions(sampler: Any, seed: int = 7, count: int = 2_000) -> List[bool]:
    rng = random.Random(seed)
    routes = ["/api/search", "/api/order"]
    return [
        sampler.should_sample(None, rng.getrandbits(128) | 1, "GET", attributes={"http.route": routes[i % 2]}).decision.is_sampled()
        for i in range(count)
    ]


def _close(*samplers: Any) -> None:
    for sampler in samplers:
        if callable(getattr(sampler, "shutdown", None)):
            sampler.shutdown()


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_copy_is_built_anew_and_decides_as_the_original(name: str, way: str) -> None:
    if name == "xray_resource" and way == "pickle":
        with pytest.raises(TypeError, match=r"cannot pickle '_thread\.lock'"):
            pickle.dumps(BUILDERS[name]())
        return
    original = BUILDERS[name]()
    made = WAYS[way](original)
    try:
        assert type(made) is type(original) and made is not original and made._native is not original._native
        assert made.get_description() == original.get_description()
        decided = _decisions(made)
        assert decided == _decisions(original) and 0 < sum(decided) < len(decided)
        assert made.stats()["decisions"] == original.stats()["decisions"] == 2_000, "each counts its own decisions"
    finally:
        _close(original, made)


def _spent(sampler: BudgetSampler) -> int:
    """Spans kept this period (what a start mid-period assumes spent left out)."""
    status = sampler.budget_status()
    return int(status["used_spans"] - status["assumed_spans"])


def test_a_shallow_copy_shares_the_state() -> None:
    original = BudgetSampler(1.0, budget=10**9, store="memory")
    shallow = copy.copy(original)
    kept = sum(_decisions(shallow, count=100))
    assert original.stats()["decisions"] == 100 and _spent(original) == kept > 90


def test_a_deep_copy_of_a_memory_budget_starts_afresh_and_of_a_host_record_shares_it() -> None:
    alone = BudgetSampler(1.0, budget=10**9, store="memory", name="copies")
    kept = sum(_decisions(alone, count=100))
    assert _spent(alone) == kept > 90 and _spent(copy.deepcopy(alone)) == 0
    recorded = BudgetSampler(1.0, budget=10**9, name="copies")
    twin = copy.deepcopy(recorded)
    before = _spent(recorded)
    kept = sum(_decisions(twin, count=100))
    assert recorded.stats()["store"]["url"] == twin.stats()["store"]["url"] is not None
    assert _spent(recorded) == before + kept and kept > 90, "the host record is the budget's, whichever copy spends it"


def _child_decisions(sampler: Any) -> List[bool]:
    return _decisions(sampler)


def test_a_sampler_pickled_into_a_spawned_process_decides_there_as_here() -> None:
    sampler = RuleSampler(**RULES)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_child_decisions, (sampler,)) == _decisions(sampler)


def test_a_processor_a_pipeline_made_is_copied_with_its_pipeline_only() -> None:
    pipeline = PipelineSampler({"adaptive": {}, "probability": {"rate": 0.3}})
    assert isinstance(pipeline.processor, ErrorWindowProcessor)
    for way in WAYS.values():
        with pytest.raises(TypeError, match="part of the sampler that made it: copy or pickle that sampler instead"):
            way(pipeline.processor)
    assert isinstance(copy.deepcopy(pipeline).processor, ErrorWindowProcessor)


def test_a_deep_copy_shares_the_meter_provider_and_the_processor_it_was_given() -> None:
    """Found copying a pipeline built with meter_provider=: the deep copy tried
    to copy the meter provider itself and raised "cannot pickle '_thread.lock'"."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    twin = copy.deepcopy(PipelineSampler({"probability": {"rate": 0.5}}, meter_provider=meters))
    _decisions(twin, count=10)
    names = {name for name, _ in metric_points(reader)}
    assert any(name.startswith("tracesieve.") for name in names), names
    processor = ErrorWindowProcessor()
    assert copy.deepcopy(AdaptiveSampler(0.2, processor=processor)).processor is processor
    meters.shutdown()
