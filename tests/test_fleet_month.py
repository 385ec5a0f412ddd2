"""Four processes share one monthly budget through a real redis-server: every
demand level ends within the budget plus its burst, uses at least 95% of it,
and leaves no hour blind; so does a month in which Redis is killed for a day
and comes back empty."""

from __future__ import annotations

from typing import Iterator

import pytest

from redis_fleet import run_redis_month
from tracesieve.local_redis import RedisServer

BUDGET = 2000
#: The budget's burst (an hour of a 30-day month, at least 8 spans) plus as much for children.
BURST = 16


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("demand", [2, 10, 100])
def test_four_processes_keep_one_budget_through_redis(server: RedisServer, demand: float) -> None:
    month = run_redis_month(server, BUDGET, demand, name=f"month{demand}")
    assert month.kept <= BUDGET + BURST, month.kept
    assert month.percent_used >= 95.0, month.percent_used
    assert month.blind_hours == 0
    assert month.degraded_seconds == 0.0


def test_a_day_without_redis_and_a_restart_empty_still_end_within_budget(server: RedisServer) -> None:
    month = run_redis_month(server, BUDGET, 10, outage_days=(15, 15), name="outage")
    assert month.kept <= BUDGET + BURST, month.kept
    assert month.percent_used >= 95.0
    assert month.blind_hours == 0, "the fallback share and the floor keep every hour covered"
    # A process steps when it serves a request: at night (a few requests an
    # hour across the fleet) its first step after the restart may come hours later.
    assert 86_400.0 <= month.degraded_seconds <= 86_400.0 + 12 * 3600.0, month.degraded_seconds
