"""Host stores: budget, rate limit and error windows shared by every process
on the host that names the same file (spawned or forked, joining, leaving and
killed), never over budget, exact under threads and processes, with clear
errors for bad input and a counted local fallback when the file is unusable."""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import time

import pytest

from store_fleet import START, Worker, boost_seen, hammer_budget, hammer_rate_limit, run_fleet_month
from tracesieve import AdaptiveSampler, BudgetSampler, ConfigError, ErrorWindowProcessor, from_config
from tracesieve.testing import SimClock

BUDGET = 2000


@pytest.fixture
def store(tmp_path):
    return f"file://{tmp_path}/sampling.tracesieve"


@pytest.mark.parametrize("mode", ["spawn", "fork"])
@pytest.mark.parametrize("demand", [2, 10, 100])
def test_four_processes_keep_one_budget_over_a_month(store, mode, demand):
    month = run_fleet_month(store, BUDGET, demand, [Worker()] * 4, mode=mode)
    assert month.used <= BUDGET, month.used
    assert month.used >= 0.95 * BUDGET, month.used
    assert month.blind_hours == 0
    assert sum(month.kept_by_hour) == month.used, "every admitted span was a kept span"


@pytest.mark.parametrize("mode", ["spawn", "fork"])
def test_under_budget_everything_is_kept(store, mode):
    month = run_fleet_month(store, BUDGET, 0.5, [Worker()] * 4, mode=mode)
    assert month.used == month.offered == sum(month.kept_by_hour)


# One process serves the whole month; one joins on day 6 and leaves on day 21;
# one joins on day 11 and is killed with SIGKILL half-way through its part; one leaves on day 16.
CHURN = [Worker(), Worker(first_hour=24 * 5, last_hour=24 * 20), Worker(first_hour=24 * 10, killed=True), Worker(last_hour=24 * 15)]


@pytest.mark.parametrize("demand", [0.5, 2, 10, 100])
def test_processes_that_start_stop_and_die_during_the_month_share_the_budget(store, demand):
    month = run_fleet_month(store, BUDGET, demand, CHURN)
    assert month.blind_hours == 0
    assert month.used == sum(month.kept_by_hour)
    if demand < 1:
        assert month.used == month.offered, "under budget every request is kept, the killed process's included"
    else:
        assert 0.95 * BUDGET <= month.used <= BUDGET


def test_four_processes_of_four_threads_never_overspend_and_counts_are_exact(store):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    calls = 5_000
    processes = [context.Process(target=hammer_budget, args=(store, 10_000, START, 4, calls, results)) for _ in range(4)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    clock = SimClock(START)
    clock.now = START + 86_399.0
    status = BudgetSampler(1.0, budget=10_000, period="day", store=store, clock=clock).budget_status()
    sampled = sum(kept for kept, _, _ in outcomes)
    assert all(kept == counted for kept, _, counted in outcomes), outcomes
    assert sum(decisions for _, decisions, _ in outcomes) == 4 * 4 * calls
    assert status["used_spans"] == sampled <= 10_000
    assert sampled >= 9_000, "the day's last second allows nearly the whole budget"


def test_n_processes_share_one_rate_limit(store):
    rate, seconds, workers = 200.0, 2.0, 4
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.monotonic() + 3.0  # after the interpreters have started
    processes = [context.Process(target=hammer_rate_limit, args=(store, rate, start_at, seconds, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    kept = sum(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
    # R*t plus the initial burst (R), less what millisecond bookkeeping can lose (<2%).
    assert 0.97 * rate * seconds <= kept <= rate * seconds + rate + 2, kept
    assert kept < 0.5 * workers * rate * seconds, "not N x R x t"


def test_an_error_burst_in_one_process_boosts_every_process(store):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    recorded = context.Event()
    processes = [context.Process(target=boost_seen, args=(store, errors, recorded, results)) for errors in (12, 0, 0, 0)]
    for process in processes:
        process.start()
    boosts = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    assert sorted(boosts) == [(0, 3.0), (0, 3.0), (0, 3.0), (12, 3.0)]


def _in_child(body):
    """Run ``body()`` in a forked child; its return value (an int) is the exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_sampler_built_before_fork_shares_its_budget_with_its_children(store):
    clock = SimClock(START)
    sampler = BudgetSampler(1.0, budget=BUDGET, store=store, clock=clock)
    clock.now = START + 31 * 86_400 - 10  # the month's end: the line allows it all

    def child():
        kept = sum(sampler.should_sample(None, t, "x").decision.is_sampled() for t in range(1, 101))
        return 0 if kept == 100 else 1

    assert [_in_child(child) for _ in range(3)] == [0, 0, 0]
    assert sampler.budget_status()["used_spans"] == 300


def test_a_forked_child_with_the_local_store_is_warned_once(tmp_path):
    sampler = BudgetSampler(1.0, budget=BUDGET, store="memory")
    assert sampler.stats()["store"] == {"url": None, "shared": [], "local": ["budget"], "fallbacks": 0, "problem": None, "fleet": None}
    shared = BudgetSampler(1.0, budget=BUDGET, store=f"file://{tmp_path}/s.tracesieve")  # noqa: F841  (no warning for this one)
    log = tmp_path / "children.log"
    handler = logging.FileHandler(log)
    logger = logging.getLogger("tracesieve.store")
    logger.addHandler(handler)
    try:
        # The child forks a grandchild: the warning comes once, from the child.
        assert _in_child(lambda: _in_child(lambda: 0)) == 0
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = log.read_text()
    assert text.count("each forked child now has its own") == 1, text
    assert "BudgetSampler" in text and "had kept their budget" in text and "store=" in text


def test_pieces_with_other_settings_are_refused_naming_both(store):
    BudgetSampler(0.5, budget=1000, store=store)
    with pytest.raises(ConfigError) as error:
        BudgetSampler(0.5, budget=1000, period="day", store=store)
    assert "period: month in the file, day here" in str(error.value)
    BudgetSampler(0.5, budget=1000, period="day", store=store + "#daily")  # another name, another piece
    ErrorWindowProcessor(window=60, store=store)
    with pytest.raises(ConfigError, match="window: 60 s in the file, 120 s here"):
        ErrorWindowProcessor(window=120, store=store)
    doc = {"store": store, "probability": {"rate": 1.0}, "rate_limit": {"traces_per_second": 10}}
    from_config(doc)
    with pytest.raises(ConfigError, match="traces_per_second: 10 in the file, 20 here"):
        from_config({**doc, "rate_limit": {"traces_per_second": 20}})


@pytest.mark.parametrize(
    "value, expected",
    [
        ("memcached://localhost:11211", 'unknown scheme "memcached"'),
        ("/var/run/app.tracesieve", "has no scheme"),
        ("file://host/run/app.tracesieve", "absolute path"),
        ("file:///proc/tracesieve-store", "cannot be created"),
        ("file:///no/such/directory/app.tracesieve", "/no/such/directory does not exist"),
        (42, "expected None or a store URL"),
    ],
)
def test_bad_stores_are_config_errors(value, expected):
    with pytest.raises(ConfigError, match=expected) as error:
        BudgetSampler(0.5, budget=1000, store=value)
    assert str(error.value).startswith("store: ")


def test_a_directory_or_another_programs_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        ErrorWindowProcessor(store=f"file://{tmp_path}")
    foreign = tmp_path / "notes.txt"
    foreign.write_text("shopping list\n")
    with pytest.raises(ConfigError, match="is not a tracesieve store"):
        from_config({"store": f"file://{foreign}", "probability": {"rate": 0.5}, "budget": {"budget": 10}})
    assert foreign.read_text() == "shopping list\n"
    with pytest.raises(ConfigError, match="store: expected a string"):
        from_config({"store": 3, "probability": {"rate": 0.5}})


def test_the_file_is_private_and_lists_its_pieces(store, tmp_path):
    BudgetSampler(0.5, budget=1000, store=store)
    AdaptiveSampler(0.1, store=store)
    path = tmp_path / "sampling.tracesieve"
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_unusable_file_falls_back_to_this_process_logged_and_counted(tmp_path):
    log = tmp_path / "fallback.log"

    def child():
        # A file-size limit of 4 KiB: the store cannot be created, as on a full disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        logging.getLogger("tracesieve.store").addHandler(logging.FileHandler(log))
        sampler = BudgetSampler(1.0, budget=100, store=f"file://{tmp_path}/full.tracesieve")
        info = sampler.stats()["store"]
        sampler.should_sample(None, 5, "x")  # decides, on this process's own state
        decided = sampler.stats()["decisions"] == 1
        ok = info["local"] == ["budget"] and info["fallbacks"] == 1 and "cannot be created" in info["problem"] and decided
        return 0 if ok else 1

    assert _in_child(child) == 0
    assert "cannot be used" in log.read_text()


def test_a_deleted_file_keeps_the_mapping_working(store, tmp_path):
    clock = SimClock(START)
    sampler = BudgetSampler(1.0, budget=BUDGET, store=store, clock=clock)
    (tmp_path / "sampling.tracesieve").unlink()
    clock.now = START + 31 * 86_400 - 10
    assert all(sampler.should_sample(None, t, "x").decision.is_sampled() for t in range(1, 11))
    assert sampler.budget_status()["used_spans"] == 10


def test_state_persists_across_restarts_of_every_process(store):
    clock = SimClock(START)
    first = BudgetSampler(1.0, budget=BUDGET, store=store, clock=clock)
    clock.now = START + 31 * 86_400 - 10
    kept = sum(first.should_sample(None, t, "x").decision.is_sampled() for t in range(1, 21))
    assert kept == 20
    del first
    again = BudgetSampler(1.0, budget=BUDGET, store=store, clock=clock)
    assert again.budget_status()["used_spans"] == 20, "the count is the file's, not a restart's assumption"


def test_a_reload_keeps_the_shared_state_and_the_plan_says_where_it_lives(store, tmp_path):
    import json

    path = tmp_path / "sampling.json"
    document = {"store": store, "probability": {"rate": 1.0}, "budget": {"budget": 10**9, "period": "day"}}
    path.write_text(json.dumps(document))
    sampler = from_config(path)
    for t in range(1, 51):
        sampler.should_sample(None, t, "x")
    used = sampler.budget_status()["used_spans"]
    path.write_text(json.dumps({**document, "probability": {"rate": 0.5}}))
    assert sampler.reload()
    assert sampler.budget_status()["used_spans"] == used, "the same shared pacer carries on"
    assert f"state (budget) shared by every process of this host naming {store}" in sampler.description
    path.write_text(json.dumps({**document, "budget": {"budget": 10**8, "period": "day"}}))
    assert not sampler.reload(), "another budget in the same piece is refused; the old policy stays"
    assert sampler.budget_status()["used_spans"] == used
