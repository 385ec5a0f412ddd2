"""`should_sample` with budget, rate limit and error windows on a Redis fleet
store beside the same plan on the local store, in one run. The fleet's worker
renews its leases in the background (every 0.2 s here) while the benchmark runs.

Run: pytest benches/test_fleet_speed.py --benchmark-only
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from test_store_speed import pipeline

from workloads import BATCH, mix_runner

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from tracesieve.local_redis import RedisServer


@pytest.fixture(scope="module")
def redis_url():
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.benchmark(group=f"should_sample, adaptive+budget+rate_limit, local vs Redis store, x{BATCH}")
@pytest.mark.parametrize("impl", ["local store (baseline)", "redis store"])
def test_should_sample_on_redis(benchmark, impl, mix_10pct, redis_url):
    sampler = pipeline(None if impl.startswith("local") else f"{redis_url}?interval=0.2#bench")
    run = mix_runner(sampler.should_sample, mix_10pct)
    if not impl.startswith("local"):
        time.sleep(0.5)  # the first leases
        for _ in range(20):
            run()
        time.sleep(0.5)  # leases sized by the measured rate
    benchmark(run)
