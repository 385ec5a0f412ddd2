"""``tracesieve bench``: a quick side-by-side timing of the samplers against
the SDK's and the Python references (the full suite is ``pytest benches``)."""

from __future__ import annotations

import argparse
import time
from typing import Any

#: Most calls per sampler: each call's trace id is made in advance, and a million take about a minute.
MAX_CALLS = 1_000_000


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("bench", help="a quick side-by-side timing of the samplers")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per sampler (default 20000)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import random

    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import SpanKind

    from tracesieve import ProbabilitySampler, RuleSampler
    from tracesieve.cli.scenarios import generate
    from tracesieve.cli.usage import UsageError
    from tracesieve.policies import seed_policy
    from tracesieve.reference import ReferenceProbabilitySampler, ReferenceRuleSampler

    calls = args.calls
    if calls <= 0:
        raise UsageError(f"--calls: {calls} is not positive")
    if calls > MAX_CALLS:
        raise UsageError(f"--calls: {calls:,} is more than a quick timing needs (about 55 s at 1,000,000); expected at most {MAX_CALLS:,}")
    rng = random.Random(2)
    ids = [rng.getrandbits(128) for _ in range(calls)]
    requests = generate("traffic", min(calls, 5000), 3).requests
    server = SpanKind.SERVER

    def timed(should_sample: Any, with_attributes: bool) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            if with_attributes:
                for i, trace_id in enumerate(ids):
                    r = requests[i % len(requests)]
                    should_sample(None, trace_id, r.endpoint, server, r.attributes, ())
            else:
                for trace_id in ids:
                    should_sample(None, trace_id, "GET", None, None, ())
            best = min(best, time.perf_counter() - started)
        return best / calls * 1e9

    groups = [
        (
            "should_sample at 10%",
            False,
            [
                ("sdk TraceIdRatioBased(0.1)", TraceIdRatioBased(0.1)),
                ("sdk ParentBased(TraceIdRatioBased(0.1))", ParentBased(TraceIdRatioBased(0.1))),
                ("python reference", ReferenceProbabilitySampler(0.1)),
                ("tracesieve ProbabilitySampler(0.1)", ProbabilitySampler(0.1)),
            ],
        ),
        (
            "should_sample, the example policy's rules",
            True,
            [
                ("sdk TraceIdRatioBased(0.1)", TraceIdRatioBased(0.1)),
                ("python reference", ReferenceRuleSampler(**seed_policy())),
                ("tracesieve RuleSampler", RuleSampler(**seed_policy())),
            ],
        ),
    ]
    for title, with_attributes, samplers in groups:
        print(title)
        base = None
        for name, sampler in samplers:
            ns = timed(sampler.should_sample, with_attributes)
            base = base or ns
            print(f"  {name:42} {ns:9.0f} ns   {ns / base:5.2f}x")
    print("\nbest of 3, on a shared machine: quote ratios. The full suite: pytest benches --benchmark-only")
    return 0
