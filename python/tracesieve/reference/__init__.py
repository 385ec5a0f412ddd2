"""Pure-Python oracles and baselines: the specification's algorithms written
plainly (tests compare the native samplers against them) and the seed
tutorial's approach (benchmarks and ``tracesieve simulate --compare naive``
run it beside ours). Not for production use; the library never imports this.
"""

from tracesieve.reference.processor import PythonErrorWindowProcessor
from tracesieve.reference.rules import ReferenceRuleSampler
from tracesieve.reference.seed import SeedCostAwareSampler, SeedErrorWindow, SeedPipelineSampler, seed_dedup_key
from tracesieve.reference.spec import ReferenceProbabilitySampler, parse_ot, probability_to_th, th_to_threshold, threshold_to_th

__all__ = [
    "PythonErrorWindowProcessor",
    "ReferenceProbabilitySampler",
    "ReferenceRuleSampler",
    "SeedCostAwareSampler",
    "SeedErrorWindow",
    "SeedPipelineSampler",
    "parse_ot",
    "probability_to_th",
    "seed_dedup_key",
    "th_to_threshold",
    "threshold_to_th",
]
