"""A 3-service chain (frontend -> orders -> payments, separate processes, W3C
context carried between them) sharing one budget through a real redis-server:
the whole fleet's spans stay within the budget, the frontend paces its roots
for the spans each trace causes downstream, and kept traces stay whole."""

from __future__ import annotations

import pytest

from fleet_chain import SPANS, run_chain_day
from tracesieve.local_redis import RedisServer

BUDGET = 3000
#: Spans per request across the chain.
PER_TRACE = sum(SPANS.values())


@pytest.mark.parametrize("demand", [5, 20])
def test_three_services_share_one_budget_and_keep_traces_whole(redis_server: RedisServer, demand: int) -> None:
    day = run_chain_day(f"{redis_server.url}?interval=0#chain{demand}", BUDGET, demand)
    # The whole fleet's spans, not only the frontend's.
    assert 0.9 * BUDGET <= day.kept_spans <= BUDGET, day.kept_spans
    roots, whole = day.whole_traces()
    # The frontend kept about a sixth of the budget in roots: its pace counts
    # the five spans each kept trace causes in orders and payments.
    assert 0.9 * BUDGET / PER_TRACE <= roots <= BUDGET / PER_TRACE + 5, roots
    assert whole >= 0.99 * roots, (whole, roots)
    counts = {status["used_spans"] for status in day.status_by_service.values()}
    assert max(counts) - min(counts) <= PER_TRACE, f"every service saw the fleet's count: {counts}"
