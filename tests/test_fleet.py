"""The Redis fleet store against a real redis-server: leases, the fleet's
count and demand, every fault the docs state a bound for, and credentials."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import time
from typing import Any, List

import pytest

from store_fleet import hammer_rate_limit
from tracesieve import AdaptiveSampler, BudgetSampler, ConfigError, fleet, from_config
from tracesieve.local_redis import RedisServer, free_port
from tracesieve.testing import SimClock

DAY_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def manual(url: str, name: str = "t") -> str:
    return f"{url}?interval=0#{name}"


def decide(sampler: Any, n: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    return sum(sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /").decision.is_sampled() for _ in range(n))


def clear_of_utc_midnight(margin: float = 90.0) -> None:
    """A test on the real clock with a day's budget waits out the day's last
    seconds: its Redis keys are per day, and a new day mid-test is a new fleet."""
    left = 86_400 - time.time() % 86_400
    if left < margin:
        time.sleep(left + 1)


def budget_info(sampler: Any) -> Any:
    return sampler.stats()["store"]["fleet"]["budget"]


def test_two_members_share_one_count_and_spend_only_what_they_lease(redis_server: RedisServer) -> None:
    clock = SimClock(DAY_START + 43_200.0)  # noon: half the day's budget is the line
    store = manual(redis_server.url)
    a = BudgetSampler(1.0, budget=10_000, period="day", store=store, clock=clock)
    b = BudgetSampler(1.0, budget=10_000, period="day", store=store, clock=clock)
    assert decide(a, 50) <= 1, "no lease before the first step: only the hour's floor keep"
    fleet.sync(a, b)
    # A cold start asks for a quarter of the budget's own burst (14 spans): 4 each.
    assert budget_info(a)["lease_left"] == budget_info(b)["lease_left"] == 4
    # b may keep its hour's floor span too when the slot is its turn (a floor keep spends no lease).
    kept = decide(a, 1000, 1) + decide(b, 1000, 2)
    floors = a.budget_status()["floor_spans"] + b.budget_status()["floor_spans"]
    assert kept == 8 + floors - 1 and 1 <= floors <= 2, (kept, floors)
    fleet.sync(a, b)
    fleet.sync(a, b)  # a learns what b reported after it
    used_a, used_b = a.budget_status()["used_spans"], b.budget_status()["used_spans"]
    assert used_a == used_b == 5000 + floors + 8, "both see the fleet's count: the assumed half, the floor keeps, 8 leased"
    raw = redis_server.client().hgetall(f"tracesieve:t:budget:{DAY_START:.0f}")
    assert int(float(raw[b"used"])) == used_a
    assert raw[b"settings"].startswith(b"budget=10000 spans")
    # The count never passes the line plus the burst, however much is offered.
    for _ in range(20):
        clock.now += 60
        fleet.sync(a, b)
        decide(a, 500, 3)
        decide(b, 500, 4)
    fleet.sync(a, b)
    status = a.budget_status()
    assert status["used_spans"] <= status["allowed_spans"] + status["burst_spans"] + 1


def test_other_settings_are_a_problem_reported_not_trusted(redis_server: RedisServer, caplog: Any) -> None:
    clock = SimClock(DAY_START)
    a = BudgetSampler(1.0, budget=10_000, period="day", store=manual(redis_server.url), clock=clock)
    b = BudgetSampler(1.0, budget=20_000, period="day", store=manual(redis_server.url), clock=clock)
    with caplog.at_level(logging.WARNING, logger="tracesieve.fleet"):
        fleet.sync(a)
        fleet.sync(b)
    assert budget_info(a)["syncs"] == 1 and budget_info(a)["problem"] is None
    info = budget_info(b)
    assert info["syncs"] == 0 and info["degraded"], info
    assert "budget=10000 spans" in info["problem"], info["problem"]


def test_bad_urls_fail_at_construction_without_the_password() -> None:
    with pytest.raises(ConfigError) as error:
        BudgetSampler(1.0, budget=10, store="redis://app:hunter2@localhost:6379/0?interval=500")
    assert "store" in str(error.value) and "interval=500" in str(error.value) and "hunter2" not in str(error.value)
    with pytest.raises(ConfigError, match="unknown scheme"):
        BudgetSampler(1.0, budget=10, store="memcached://localhost")


def test_credentials_never_appear_in_stats_logs_or_errors(caplog: Any) -> None:
    server = RedisServer(password="s3cr3t-pw").start()
    try:
        clock = SimClock(DAY_START)
        good = BudgetSampler(1.0, budget=10_000, period="day", store=manual(server.url, "auth"), clock=clock)
        fleet.sync(good)
        assert budget_info(good)["syncs"] == 1
        shown = str(good.stats()) + repr(good) + str(good.description)
        assert "s3cr3t-pw" not in shown and "***" in good.stats()["store"]["url"]
        # The password from the documented variable when the URL has none.
        os.environ[fleet.PASSWORD_VARIABLE] = "s3cr3t-pw"
        try:
            from_env = BudgetSampler(
                1.0, budget=10_000, period="day", store=manual(f"redis://127.0.0.1:{server.port}/0", "auth"), clock=clock
            )
            fleet.sync(from_env)
            assert budget_info(from_env)["syncs"] == 1
        finally:
            del os.environ[fleet.PASSWORD_VARIABLE]
        wrong = BudgetSampler(
            1.0, budget=10_000, period="day", store=manual(server.url.replace("s3cr3t-pw", "wr0ng-pw"), "auth"), clock=clock
        )
        with caplog.at_level(logging.WARNING, logger="tracesieve.fleet"):
            fleet.sync(wrong)
        info = budget_info(wrong)
        assert info["degraded"] and "wr0ng-pw" not in str(info) and "wr0ng-pw" not in caplog.text
        assert "cannot be used" in caplog.text
    finally:
        server.stop()


def test_tls_with_rediss() -> None:
    server = RedisServer(tls=True).start()
    try:
        clock = SimClock(DAY_START)
        sampler = BudgetSampler(1.0, budget=10_000, period="day", store=f"{server.url}&interval=0#tls", clock=clock)
        fleet.sync(sampler)
        assert budget_info(sampler)["syncs"] == 1, budget_info(sampler)
        assert server.client().exists(f"tracesieve:tls:budget:{DAY_START:.0f}")
    finally:
        server.stop()


def test_unreachable_at_start_takes_the_fallback_share_then_reconciles(caplog: Any) -> None:
    server = RedisServer()  # not started yet
    clock = SimClock(DAY_START)
    budget = 86_400  # one span a second: the line's slope
    sampler = BudgetSampler(1.0, budget=budget, period="day", store=f"{server.url}?interval=0&fallback_share=0.25#away", clock=clock)
    with caplog.at_level(logging.WARNING, logger="tracesieve.fleet"):
        fleet.sync(sampler)
    info = budget_info(sampler)
    assert info["degraded"] and info["fallback_share"] == 0.25 and "cannot be used" in caplog.text
    kept = 0
    for _ in range(60):  # an hour, a step a minute, ten requests a second
        clock.now += 60
        fleet.sync(sampler)
        kept += decide(sampler, 600, int(clock.now))
    # A quarter of the line (3,600 spans an hour), plus a quarter of the burst, and the
    # floor's keep of the hour (a floor keep spends no lease).
    burst = sampler.budget_status()["burst_spans"]
    assert 0.2 * 3600 <= kept <= 0.25 * (3600 + burst) + 2, kept
    assert budget_info(sampler)["degraded_seconds"] >= 3600
    server.start()
    try:
        fleet.sync(sampler)
        info = budget_info(sampler)
        assert not info["degraded"] and info["syncs"] == 1
        raw = server.client().hgetall(f"tracesieve:away:budget:{DAY_START:.0f}")
        assert int(float(raw[b"used"])) >= kept, "what was spent while away is counted"
    finally:
        server.stop()


def test_a_worker_backs_off_while_redis_is_gone() -> None:
    port = free_port()  # nothing listens here
    sampler = BudgetSampler(1.0, budget=10_000, period="day", store=f"redis://127.0.0.1:{port}/0?interval=0.05#gone")
    time.sleep(3.0)
    worker = next(w for w in fleet.worker_stats() if w["url"].endswith("#gone"))
    # Steps every 0.05 s (about 60 in 3 s), but calls only after a backoff
    # doubling from the interval: 0.05, 0.1, 0.2, ... at most 7 or so attempts.
    assert worker["steps"] >= 30 and 2 <= worker["failures"] <= 8, worker
    info = budget_info(sampler)
    assert info["degraded"] and info["failures"] >= worker["steps"] - 2, "every step without Redis is counted"
    assert str(port) in info["problem"]


def test_redis_restarted_empty_rebuilds_the_count_from_the_members(redis_server: RedisServer) -> None:
    clock = SimClock(DAY_START)
    store = manual(redis_server.url, "restart")
    a = BudgetSampler(1.0, budget=100_000, period="day", store=store, clock=clock)
    b = BudgetSampler(1.0, budget=100_000, period="day", store=store, clock=clock)
    for _ in range(30):
        clock.now += 60
        fleet.sync(a, b)
        decide(a, 300, int(clock.now))
        decide(b, 300, int(clock.now) + 1)
    fleet.sync(a, b)
    fleet.sync(a, b)  # a learns b's last report
    before = a.budget_status()["used_spans"]
    assert before > 1000
    redis_server.kill()
    redis_server.start()  # empty
    fleet.sync(b, a)
    key = f"tracesieve:restart:budget:{DAY_START:.0f}"
    rebuilt = int(float(redis_server.client().hget(key, "used")))
    assert rebuilt == before, "the members' view of the count, not zero"
    assert a.budget_status()["used_spans"] >= before


def _hold_a_lease_and_die(url: str, ready: Any) -> None:
    # A budget the day's end cannot exhaust: with 1,000 a day, after about 23:50 UTC no lease was left to hold.
    sampler = BudgetSampler(1.0, budget=10**9, period="day", store=url)
    deadline = time.monotonic() + 5
    while budget_info(sampler)["lease_left"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    ready.put(budget_info(sampler)["lease_left"])
    time.sleep(60)


def test_a_dead_members_lease_returns_to_the_fleet_when_it_expires(redis_server: RedisServer) -> None:
    clear_of_utc_midnight()
    url = f"{redis_server.url}?interval=0.2#dead"
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    holder = context.Process(target=_hold_a_lease_and_die, args=(url, ready))
    holder.start()
    held = ready.get(timeout=30)
    assert held > 0
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    key = f"tracesieve:dead:budget:{DAY_START:.0f}"
    client = redis_server.client()
    members = [f for f in client.hkeys(key) if f.startswith(b"m:")] if client.exists(key) else []
    assert members or held  # the lease is recorded while it lives
    # Its lease (3 steps of 0.2 s) expires within a second: the next member sees it gone.
    time.sleep(1.0)
    survivor = BudgetSampler(1.0, budget=10**9, period="day", store=url.replace("interval=0.2", "interval=0"))
    fleet.sync(survivor)
    assert budget_info(survivor)["members"] == 1, "only the survivor is live"


def test_a_paused_redis_never_stalls_a_span(redis_server: RedisServer) -> None:
    sampler = from_config(
        {"store": f"{redis_server.url}?interval=0.1#pause", "probability": {"rate": 1.0}, "rate_limit": {"traces_per_second": 1000}}
    )
    time.sleep(0.3)
    redis_server.pause()
    try:
        rng = random.Random(5)
        slowest = 0.0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            start = time.perf_counter()
            sampler.should_sample(None, rng.getrandbits(128) | 1, "GET /")
            slowest = max(slowest, time.perf_counter() - start)
        assert slowest < 0.05, f"a decision took {slowest * 1000:.1f} ms while Redis was paused"
        time.sleep(0.5)
        assert sampler.stats()["store"]["fleet"]["rate_limit"]["failures"] >= 1
    finally:
        redis_server.resume()
    deadline = time.monotonic() + 10
    while sampler.stats()["store"]["fleet"]["rate_limit"]["degraded"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sampler.stats()["store"]["fleet"]["rate_limit"]["degraded"], "back within the backoff"


def test_a_fleet_budget_changed_by_a_rolling_restart_is_taken_over_once_the_old_processes_are_gone(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the fleet's budget hash kept the old settings for the rest of
    the period (it outlives the period by a day), so processes restarted with a
    changed budget found it "made with other settings" and ran on their
    fallback share, as if Redis were down, until the period ended. While a
    process under the old settings holds a lease (a rolling restart under way,
    or two budgets given one fleet) they still do; once none does, the new
    settings take the count over, as a reload does."""
    clock = SimClock(DAY_START + 43_200.0)
    key = f"tracesieve:rolling:budget:{DAY_START:.0f}"
    old = BudgetSampler(1.0, budget=10_000, period="day", store=manual(redis_server.url, "rolling"), clock=clock)
    fleet.sync(old)
    decide(old, 200, 1)
    fleet.sync(old)
    counted = old.budget_status()["used_spans"]
    new = BudgetSampler(1.0, budget=12_000, period="day", store=manual(redis_server.url, "rolling"), clock=clock)
    fleet.sync(new)
    info = budget_info(new)
    assert info["degraded"] and "budget=10000 spans" in info["problem"], "the old process's lease still runs"
    client = redis_server.client()
    (lease,) = [value for field, value in client.hgetall(key).items() if field.startswith(b"m:")]
    seconds, micros = client.time()
    time.sleep((float(lease.split()[1]) - (seconds * 1000 + micros / 1000)) / 1000 + 0.1)  # until the old lease ran out
    caplog.clear()
    fleet.sync(new)
    info = budget_info(new)
    assert not info["degraded"] and info["syncs"] == 1, info
    assert new.budget_status()["used_spans"] == counted, "the count carried over, not afresh"
    assert client.hget(key, "settings").startswith(b"budget=12000 spans")
    # Said once, by the process that took it over (before, a takeover went unsaid).
    (said,) = [r.getMessage() for r in caplog.records if "was held with other settings" in r.getMessage()]
    assert said.startswith(f"tracesieve: the fleet's budget {key} was held with other settings (budget=10000 spans"), said
    assert f"its count this period ({counted:,} spans) carried over" in said and "(budget=12000 spans" in said, said
    fleet.sync(new)
    assert len([r for r in caplog.records if "was held with other settings" in r.getMessage()]) == 1
    # The old settings' last processes, still running somewhere, are the ones refused now.
    fleet.sync(old)
    assert "budget=12000 spans" in budget_info(old)["problem"], "it spends its lease, then its fallback share"


def test_unexpected_data_is_treated_as_down(redis_server: RedisServer) -> None:
    clock = SimClock(DAY_START)
    sampler = BudgetSampler(1.0, budget=10_000, period="day", store=manual(redis_server.url, "odd"), clock=clock)
    key = f"tracesieve:odd:budget:{DAY_START:.0f}"
    redis_server.client().set(key, "not a hash")
    fleet.sync(sampler)
    assert budget_info(sampler)["degraded"] and "WRONGTYPE" in budget_info(sampler)["problem"]
    client = redis_server.client()
    client.delete(key)
    seconds, micros = client.time()
    live = f"1 {seconds * 1000 + micros // 1000 + 30_000} 0"  # a lease that runs 30 s more, in the server's time
    client.hset(key, mapping={"epoch": "1", "used": "-5", "settings": "x", "m:other": live})
    fleet.sync(sampler)
    assert budget_info(sampler)["syncs"] == 0, "a piece a live member holds with other settings is not trusted"
    client.hdel(key, "m:other")
    fleet.sync(sampler)
    assert budget_info(sampler)["syncs"] == 1 and not budget_info(sampler)["degraded"], "no live member: taken over"
    assert float(client.hget(key, "used")) >= 0 and client.hget(key, "settings").startswith(b"budget=10000 spans"), (
        "the garbage count repaired"
    )


def test_four_processes_share_one_rate_limit(redis_server: RedisServer) -> None:
    rate, seconds = 200.0, 3.0
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.monotonic() + 3.0
    url = f"{redis_server.url}?interval=0.2#rl"
    workers = [context.Process(target=hammer_rate_limit, args=(url, rate, start_at, seconds, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    kept: List[int] = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join()
    total = sum(kept)
    # R·t + the burst (R) + what was leased when the window began (a few steps of R).
    assert 0.8 * rate * seconds <= total <= rate * seconds + rate + 3 * rate * 0.2 * 4, kept


def _boost_after(url: str, errors: int, results: Any, joined: Any, looked: Any) -> None:
    sampler = AdaptiveSampler(0.1, error_steps=[(5, 2.0), (10, 3.0)], store=url)
    if errors:
        sampler.record_error(errors)
    # Every member is in the fleet before any looks, and stays until all have looked: a member
    # spawned late on a loaded machine once found the others gone, with their windows.
    joined.wait(timeout=60)
    deadline = time.monotonic() + 10
    while sampler.boost < 3.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    results.put(sampler.boost)
    looked.wait(timeout=60)


def test_error_windows_are_summed_across_the_fleet(redis_server: RedisServer) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    joined, looked = context.Barrier(3), context.Barrier(3)
    url = f"{redis_server.url}?interval=0.2#windows"
    workers = [context.Process(target=_boost_after, args=(url, errors, results, joined, looked)) for errors in (6, 6, 0)]
    for worker in workers:
        worker.start()
    boosts = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join()
    assert boosts == [3.0, 3.0, 3.0], "6 + 6 errors in the fleet's window pass the step at 10 everywhere"


def test_a_document_shares_budget_and_windows_and_forked_children_are_new_members(redis_server: RedisServer) -> None:
    sampler = from_config(
        {
            "store": f"{redis_server.url}?interval=0#doc",
            "probability": {"rate": 1.0},
            "adaptive": {},
            "budget": {"budget": 1_000_000, "period": "day"},
        }
    )
    fleet.sync(sampler)
    info = sampler.stats()["store"]
    assert set(info["fleet"]) == {"budget", "signals"} and set(info["shared"]) == {"budget", "signals"}
    assert any(line.startswith("state (adaptive windows, budget) leased from Redis by every process") for line in sampler.description)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a new member, nothing leased from its parent
        status = sampler.stats()["store"]["fleet"]["budget"]
        fleet.sync(sampler)
        after = sampler.stats()["store"]["fleet"]["budget"]
        os.write(write, f"{status['lease_left']} {after['members']}".encode())
        os._exit(0)
    os.waitpid(pid, 0)
    left, members = os.read(read, 64).decode().split()
    assert left == "0" and members == "2"
