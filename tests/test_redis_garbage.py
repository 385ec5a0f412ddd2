"""Garbage in Redis is data, not orders: values another client wrote into a
fleet's hashes (not finite, out of range, deadlines beyond any lease, forged
members) are repaired or ignored by the fleet scripts, counted and logged,
and the fleet keeps what it kept before. Against a real redis-server."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from tracesieve import AdaptiveSampler, BudgetSampler, from_config
from tracesieve.local_redis import RedisServer


def _keep_for(sampler: Any, seconds: float, forge: Any = None) -> int:
    """Decide as fast as possible for ``seconds``; ``forge()`` every 0.1 s (a persistent attacker)."""
    rng = random.Random(7)
    kept, deadline, next_forge = 0, time.monotonic() + seconds, 0.0
    while time.monotonic() < deadline:
        if forge is not None and time.monotonic() >= next_forge:
            forge()
            next_forge = time.monotonic() + 0.1
        for _ in range(100):
            kept += sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /").decision.is_sampled()
    return kept


def _fleet_info(sampler: Any, kind: str) -> Any:
    return sampler.stats()["store"]["fleet"][kind]


def test_a_rate_limit_with_garbage_tokens_keeps_its_rate(redis_server: RedisServer, caplog: Any) -> None:
    caplog.set_level(logging.WARNING)
    url = f"{redis_server.url}?interval=0.1#garbage"
    sampler = from_config({"store": url, "probability": {"rate": 1.0}, "rate_limit": {"traces_per_second": 200}})
    client = redis_server.client()
    clean = _keep_for(sampler, 2.0)
    for value in (b"-inf", b"nan", b"1e300"):
        client.hset("tracesieve:garbage:rate_limit", "tokens", value)
        time.sleep(0.3)
    client.hset("tracesieve:garbage:rate_limit", "stamp", b"9e15")  # a refill stamp from the far future
    # Each was written once: it used to stop the fleet for good (its TTL renewed by every step).
    forged = _keep_for(sampler, 2.0)
    assert clean >= 0.6 * 200 * 2.0, clean
    assert forged >= 0.5 * clean, f"garbage was obeyed: {forged} kept against {clean}"
    info = _fleet_info(sampler, "rate_limit")
    assert info["repairs"] >= 4 and not info["degraded"], info
    assert "were not valid" in caplog.text


def test_a_forged_member_does_not_starve_the_fleets_budget(redis_server: RedisServer, caplog: Any) -> None:
    caplog.set_level(logging.WARNING)
    url = f"{redis_server.url}?interval=0.1#forged"
    budget = 600 * 86_400  # 600 spans a second at the even pace
    sampler = BudgetSampler(1.0, budget=budget, period="day", store=url)
    client = redis_server.client()
    time.sleep(0.3)
    _keep_for(sampler, 2.0)  # past the start's burst, to the even pace
    clean = _keep_for(sampler, 3.0)
    (key,) = client.keys("tracesieve:forged:budget:*")

    def forge() -> None:
        client.hset(key, mapping={"m:forged": b"1e14 1e300 0", "m:future": f"5 {time.time() * 1000 + 1e9:.0f} 1".encode()})

    forged = _keep_for(sampler, 3.0, forge)
    assert forged >= 0.5 * clean, f"a forged member was obeyed: {forged} kept against {clean}"
    info = _fleet_info(sampler, "budget")
    assert info["repairs"] >= 2 and not info["degraded"], info
    # A count that is garbage is repaired from what the member saw last.
    used = sampler.budget_status()["used_spans"]
    client.hset(key, "used", b"-inf")
    time.sleep(0.5)
    assert sampler.budget_status()["used_spans"] >= used
    assert float(client.hget(key, "used")) >= used - 1
    assert "were not valid" in caplog.text


def test_forged_error_counts_do_not_boost(redis_server: RedisServer) -> None:
    url = f"{redis_server.url}?interval=0.1#signals"
    sampler = AdaptiveSampler(0.1, error_steps=[(5, 2.0), (10, 3.0)], store=url)
    client = redis_server.client()
    time.sleep(0.3)
    (key,) = client.keys("tracesieve:signals:signals")
    stop = threading.Event()

    def forge() -> None:
        while not stop.is_set():
            until = time.time() * 1000 + 5000
            words = " ".join(["1e300"] * 40)
            client.hset(key, mapping={"m:huge": f"{until:.0f} {words}".encode(), "m:inf": f"{until:.0f} inf".encode()})
            time.sleep(0.05)

    forger = threading.Thread(target=forge)
    forger.start()
    try:
        time.sleep(1.0)
        assert sampler.boost == 1.0, "forged error counts were believed"
    finally:
        stop.set()
        forger.join()
    assert _fleet_info(sampler, "signals")["repairs"] >= 2


def test_a_script_reply_of_any_shape_is_refused_not_raised(redis_server: RedisServer, monkeypatch: Any) -> None:
    """What a Redis (or something in its place) answers is data: a reply of
    any shape counts as a failed step with a reason, never an exception in the
    step (the fleet's thread) or in the application."""
    from tracesieve import fleet

    sampler = BudgetSampler(1.0, budget=10_000, period="day", store=f"{redis_server.url}?interval=0#shapes")
    fleet.sync(sampler)
    assert _fleet_info(sampler, "budget")["failures"] == 0
    (worker,) = [w for w in fleet._WORKERS.values() if sampler in list(w._owners)]
    replies = ([], [b"ok"], [b"ok", b"taken"], [b"taken", b"ok"], [b"ok"] + [b"1"] * 10 + [b"taken"], [b"x"] * 40, b"ok", 7, None)
    for number, reply in enumerate(replies, start=1):
        monkeypatch.setitem(worker._scripts, "budget", lambda keys, args, reply=reply: reply)
        fleet.sync(sampler)
        info = _fleet_info(sampler, "budget")
        assert info["failures"] == number and "unexpected" in info["problem"], (reply, info)
        monkeypatch.undo()
    fleet.sync(sampler)
    assert _fleet_info(sampler, "budget")["problem"] is None, "answers as it should again"
