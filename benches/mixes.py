"""Which mixes of samplers keep traces whole across two services.

    python benches/mixes.py

Each row sends 20,000 traces through two services (each its own
TracerProvider, context carried in W3C headers) and reports, of the traces the
upstream service kept, how many the downstream service kept too, and how many
the downstream kept without its caller.
"""

from __future__ import annotations

import argparse
import sys

from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tracesieve import ProbabilitySampler, TraceIdRatioSampler
from tracesieve.testing import whole_traces

MIXES = [
    ("ProbabilitySampler(0.1)", lambda: ProbabilitySampler(0.1), "ProbabilitySampler(0.1)", lambda: ProbabilitySampler(0.1)),
    (
        "ProbabilitySampler(0.1)",
        lambda: ProbabilitySampler(0.1),
        "ProbabilitySampler(0.1, respect_parent=False)",
        lambda: ProbabilitySampler(0.1, respect_parent=False),
    ),
    (
        "ProbabilitySampler(0.1)",
        lambda: ProbabilitySampler(0.1),
        "ProbabilitySampler(0.05, respect_parent=False)",
        lambda: ProbabilitySampler(0.05, respect_parent=False),
    ),
    (
        "ProbabilitySampler(0.1)",
        lambda: ProbabilitySampler(0.1),
        "SDK ParentBased(TraceIdRatioBased(0.1))",
        lambda: ParentBased(TraceIdRatioBased(0.1)),
    ),
    (
        "SDK ParentBased(TraceIdRatioBased(0.1))",
        lambda: ParentBased(TraceIdRatioBased(0.1)),
        "ProbabilitySampler(0.1)",
        lambda: ProbabilitySampler(0.1),
    ),
    ("TraceIdRatioSampler(0.1)", lambda: TraceIdRatioSampler(0.1), "SDK TraceIdRatioBased(0.1)", lambda: TraceIdRatioBased(0.1)),
    (
        "SDK ParentBased(TraceIdRatioBased(0.1))",
        lambda: ParentBased(TraceIdRatioBased(0.1)),
        "ProbabilitySampler(0.1, respect_parent=False)",
        lambda: ProbabilitySampler(0.1, respect_parent=False),
    ),
    (
        "TraceIdRatioSampler(0.1)",
        lambda: TraceIdRatioSampler(0.1),
        "ProbabilitySampler(0.1, respect_parent=False)",
        lambda: ProbabilitySampler(0.1, respect_parent=False),
    ),
    ("ProbabilitySampler(0.1)", lambda: ProbabilitySampler(0.1), "SDK TraceIdRatioBased(0.1)", lambda: TraceIdRatioBased(0.1)),
]


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(f"{'upstream':42} {'downstream':48} {'kept up':>8} {'whole':>7} {'orphans':>8}")
    for up_name, up, down_name, down in MIXES:
        result = whole_traces(up(), down(), traces=args.traces)
        print(f"{up_name:42} {down_name:48} {result.kept_upstream:>8,} {result.whole_fraction:>7.1%} {result.orphans:>8,}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
