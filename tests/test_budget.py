"""BudgetSampler: month-long pacing on a simulated clock, roll-over, threads,
clock jumps, persistence, bad input."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracesieve import BudgetSampler, ConfigError, ProbabilitySampler, RuleSampler, _core
from tracesieve.cli.ids import SeededIds
from tracesieve.state import ESTIMATES
from tracesieve.testing import SimClock, month_start, run_month

from helpers import ot_value

BUDGET = 10_000
JAN = month_start(2026, 1)


def paced_month(demand, spike=None, budget=BUDGET):
    clock = SimClock(JAN)
    sampler = BudgetSampler(1.0, budget=budget, clock=clock)
    should_sample = sampler.should_sample
    result = run_month(
        lambda trace_id: should_sample(None, trace_id, "GET").decision.is_sampled(),
        clock,
        budget,
        demand,
        spike=spike,
        used=lambda: sampler.budget_status()["used_spans"],
    )
    return sampler, result


def test_half_the_budget_of_demand_is_kept_whole():
    _, result = paced_month(0.5)
    assert result.kept == result.offered


@pytest.mark.parametrize("demand", [2, 10, 100])
def test_demand_above_budget_uses_95_percent_never_more_and_never_goes_blind(demand):
    sampler, result = paced_month(demand)
    assert 0.95 <= result.utilisation <= 1.0, result.utilisation
    assert result.blind_hours == 0
    status = sampler.budget_status()
    assert status["used_spans"] == result.kept <= BUDGET


def test_a_spike_day_does_not_exhaust_the_budget():
    # Usual demand 10x the budget; day 15 brings 20x the usual traffic.
    _, result = paced_month(10, spike=(15, 20.0))
    assert 0.95 <= result.utilisation <= 1.0
    assert result.exhausted_at_hour is None or result.exhausted_at_hour > 30 * 24
    after_spike = result.kept_by_hour[15 * 24 :]
    assert all(kept > 0 for kept in after_spike)


def test_kept_spans_carry_inner_times_pacing_in_th():
    clock = SimClock(JAN)
    sampler = BudgetSampler(0.5, budget=1000, period="day", clock=clock)
    rng = random.Random(3)
    for i in range(20_000):  # a day's demand far above budget
        clock.now = JAN + i * 4.0
        sampler.should_sample(None, rng.getrandbits(128), "GET")
    pace = sampler.budget_status()["pacing_probability"]
    assert pace < 1.0
    expected = f"th:{_core.encode_th(_core.threshold_for_probability(0.5 * pace))}"
    kept = None
    for _ in range(5000):
        result = sampler.should_sample(None, rng.getrandbits(128), "GET")
        if result.decision.is_sampled():
            kept = result
            break
    assert kept is not None and ot_value(kept.trace_state) == expected


def test_children_of_kept_traces_count_against_the_budget():
    clock = SimClock(JAN)
    sampler = BudgetSampler(1.0, budget=300, period="day", clock=clock)
    exporter = InMemorySpanExporter()
    # Seeded trace ids: the pace draws on them (15 seeds used 282 to 294 of the 300).
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(7))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for i in range(3000):
        clock.now = JAN + i * 28.0
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("child"):
                with tracer.start_as_current_span("grandchild"):
                    pass
    exported = len(exporter.get_finished_spans())
    status = sampler.budget_status()
    assert exported == status["used_spans"] <= 300
    assert exported >= 0.95 * 300 - 3
    provider.shutdown()


def test_threads_sampling_at_once_never_overshoot():
    sampler = BudgetSampler(1.0, budget=5000, period="day")
    barrier = threading.Barrier(8)

    def hammer(seed):
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(5000):
            sampler.should_sample(None, rng.getrandbits(128), "GET")

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats, status = sampler.stats(), sampler.budget_status()
    assert status["used_spans"] <= 5000  # the stated bound: zero overshoot
    # Started mid-day on the real clock, it assumes the day's share so far was spent.
    assert stats["sampled"] == status["used_spans"] - status["assumed_spans"]
    assert stats["budget_refused"] == status["refused_spans"]


def test_december_rolls_into_january_and_clock_jumps_are_safe():
    dec = month_start(2026, 12)
    clock = SimClock(dec + 86400)
    rng = random.Random(101)
    sampler = BudgetSampler(1.0, budget=100, clock=clock)
    for i in range(2000):
        clock.now = dec + 86400 + i * 60.0
        sampler.should_sample(None, rng.getrandbits(128), "x")
    used = sampler.budget_status()["used_spans"]
    assert 0 < used <= 100
    clock.jump(-40 * 86400)  # the wall clock steps back into October, for good: spending is not reset
    for _ in range(200):
        clock.advance(60.0)
        sampler.should_sample(None, rng.getrandbits(128), "x")
    status = sampler.budget_status()
    assert status["used_spans"] >= used
    assert status["period_start"].startswith("2026-12-01"), "a period never rolls back"
    clock.jump(40 * 86400)
    for i in range(20_000):
        clock.now = dec + 20 * 86400 + i * 47.0  # on to the month's last hour, far above budget
        sampler.should_sample(None, rng.getrandbits(128), "x")
    assert clock.now < month_start(2027, 1)
    # A start with no record (a clock, so memory) may take one trace for its floor past the
    # budget at the period's end (pacing.md, starts): 101 for 7 of 120 seeds, never more.
    assert 90 <= sampler.budget_status()["used_spans"] <= 100 + 1
    clock.now = month_start(2027, 1) + 10
    assert sampler.should_sample(None, (1 << 56) - 1, "x").decision.is_sampled()
    status = sampler.budget_status()
    assert status["period_start"].startswith("2027-01-01") and status["used_spans"] == 1 and status["assumed_spans"] == 0


def test_money_budget_and_status():
    clock = SimClock(JAN)
    sampler = BudgetSampler(1.0, budget=50.0, cost_per_span=0.001, clock=clock)
    for i in range(1000):
        clock.now = JAN + i * 60.0
        sampler.should_sample(None, (1 << 56) - 1 - i, "x")
    status = sampler.budget_status()
    assert status["budget_spans"] == 50_000
    assert status["used_spans"] == sampler.stats()["sampled"] == 1000, "under the line, everything is kept"
    assert status["assumed_spans"] == 0, "a period's start assumes nothing"
    assert status["used"] == pytest.approx(1.0)
    assert status["remaining"] == pytest.approx(49.0)
    assert status["percent_used"] == pytest.approx(2.0)
    assert status["allowed_spans"] == pytest.approx(50_000 * 999 * 60 / (31 * 86400), rel=1e-6)
    assert status["burst_spans"] == pytest.approx(50_000 / 720 * 2)
    assert 0 <= status["pacing_probability"] <= 1
    assert status["period"] == "month" and status["period_end"].startswith("2026-02-01")
    assert set(status) >= {"budget", "used", "remaining", "percent_used", "pacing_probability", "projected_spend"}


def test_spending_survives_a_restart_and_bad_state_is_ignored(tmp_path, caplog):
    path = tmp_path / "state" / "budget.json"
    clock = SimClock(JAN + 5 * 86400)
    first = BudgetSampler(1.0, budget=1000, clock=clock, state_path=path)
    for i in range(1200):
        clock.advance(10.0)
        first.should_sample(None, i, "x")
    first.close()  # a last save, as at exit
    saved = json.loads(path.read_text())
    counted = first.budget_status()["used_spans"]
    assert saved["used_spans"] == counted and saved["kind"] == "tracesieve.budget" and saved["version"] == 2
    assert saved["estimates"] is not None
    second = BudgetSampler(1.0, budget=1000, clock=clock, state_path=path)
    assert second.budget_status()["used_spans"] == counted
    assert second.budget_status()["pacing_probability"] == pytest.approx(first.budget_status()["pacing_probability"], rel=0.25)
    second.close()
    # Next month: the old spending does not carry over.
    clock.now = month_start(2026, 2) + 60
    third = BudgetSampler(1.0, budget=1000, clock=clock, state_path=path)
    assert third.budget_status()["used_spans"] == third.budget_status()["assumed_spans"] < counted
    third.close()
    clock.now = JAN + 5 * 86400
    with caplog.at_level(logging.WARNING, logger="tracesieve.budget"):
        for content in [
            json.dumps({**saved, "timezone": "Asia/Seoul"}),
            json.dumps({**saved, "used_spans": -5}),
            # Regressions: these raised from the constructor, or were trusted.
            json.dumps({**saved, "used_spans": 2**64}),
            json.dumps({**saved, "used_spans": 2**70}),
            json.dumps({**saved, "used_spans": 5000, "budget_spans": 1000}),
            # Found by fuzzing: integers no float can hold raised OverflowError from the constructor.
            json.dumps({**saved, "period_start": 10**400}),
            json.dumps({**saved, "saved_at": -(10**400)}),
            json.dumps({**saved, "estimates": dict.fromkeys(ESTIMATES, 10**400)}),
            json.dumps({**saved, "period_start": 0}).replace('"period_start": 0', '"period_start": ' + "9" * 5000),
        ]:
            path.write_text(content)
            fresh = BudgetSampler(1.0, budget=1000, clock=clock, state_path=path)
            status = fresh.budget_status()
            assert status["used_spans"] == status["assumed_spans"], "nothing restored: only the calendar's share assumed"
            fresh.close()
    assert caplog.text.count("ignoring") == 9
    assert "period_start an integer of about 401 digits is not a time" in caplog.text
    assert "used_spans 5000 is more than the file's own budget of 1000" in caplog.text


@pytest.mark.parametrize(
    "content, why",
    [
        (b"{not json", "it is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "200,000 bytes, more than a budget state holds"),
        (b"[" * 30_000 + b"]" * 30_000, "it is not JSON"),
        (b"DATABASE_URL=postgres://app@db/app\n", "it is not JSON"),
        (json.dumps([1, 2]).encode(), 'it is JSON, but not a budget state (no "kind": "tracesieve.budget")'),
        (json.dumps({"kind": "other", "used_spans": 1}).encode(), "it is JSON, but not a budget state"),
        (b"\xff\xfe\x00binary", "it is not text"),
        (b"x" * 70_000, "70,000 bytes, more than a budget state holds"),
    ],
)
def test_a_state_path_holding_another_files_data_is_refused_and_left_alone(tmp_path, capsys, content, why):
    """Regression: a state_path naming a file that was not a budget state (a
    typo'd path, another tool's file) was "ignored" at the start and then
    replaced by the first save: its data lost. Now it is a ConfigError, from
    the constructor, a pipeline document and check alike, and the file is
    left as it was."""
    from tracesieve import from_config
    from tracesieve.cli import main

    path = tmp_path / "app.env"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=re.escape(f"state_path: '{path}' holds something other than a tracesieve budget state ({why}")):
        BudgetSampler(1.0, budget=1000, state_path=path, store="memory")
    document = {"store": "memory", "probability": {"rate": 1.0}, "budget": {"budget": 1000, "state_path": str(path)}}
    with pytest.raises(ConfigError, match="holds something other than a tracesieve budget state"):
        from_config(document)
    config = tmp_path / "sampling.json"
    config.write_text(json.dumps(document))
    assert main(["check", str(config)]) == 2
    assert "holds something other than a tracesieve budget state" in capsys.readouterr().err
    import gc

    gc.collect()
    from tracesieve.state import _save_at_exit

    _save_at_exit()  # what the interpreter's exit runs
    assert path.read_bytes() == content, "never written over"


def test_a_state_file_replaced_by_another_tools_data_while_running_is_not_saved_over(tmp_path, caplog):
    path = tmp_path / "budget.json"
    sampler = BudgetSampler(1.0, budget=1000, state_path=path, store="memory")
    sampler.save_state()
    assert json.loads(path.read_text())["kind"] == "tracesieve.budget"
    path.write_text("[settings]\ntoken = 'x'\n")  # a mistake of the operator's, or a deploy's
    with caplog.at_level(logging.ERROR, logger="tracesieve.budget"):
        sampler.save_state()
        sampler.close()
    assert path.read_text() == "[settings]\ntoken = 'x'\n"
    assert caplog.text.count("not saving budget state over a file that is no longer one") == 1, "reported once"


STATE_TEXT = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"kind": st.just("tracesieve.budget")},
        optional={
            "version": st.integers(0, 3),
            "used_spans": st.integers(-5, 10**20) | st.floats(),
            "writer": st.dictionaries(st.sampled_from(["pid", "boot"]), st.integers(-(2**70), 2**70) | st.text(max_size=5)),
        },
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=STATE_TEXT)
def test_whatever_a_state_file_holds_the_constructor_raises_only_config_error_and_never_writes_over_it(tmp_path, content):
    path = tmp_path / "budget.json"
    path.write_bytes(content)
    path.chmod(0o600)
    try:
        sampler = BudgetSampler(1.0, budget=1000, state_path=path, store="memory", save_interval=3600)
    except ConfigError:
        assert path.read_bytes() == content
        return
    sampler.should_sample(None, 1, "x")
    sampler.save_state()  # reads what the file holds (and who wrote it) first
    sampler.close()
    assert json.loads(path.read_text())["kind"] == "tracesieve.budget"


def test_an_empty_state_file_is_taken_as_no_record_and_then_saved(tmp_path, caplog):
    path = tmp_path / "budget.json"
    path.touch(mode=0o600)
    with caplog.at_level(logging.WARNING, logger="tracesieve.budget"):
        sampler = BudgetSampler(1.0, budget=1000, state_path=path, store="memory")
    assert "the file is empty" in caplog.text
    sampler.close()
    assert json.loads(path.read_text())["kind"] == "tracesieve.budget"


NEWER_SAMPLER = """
import sys
from tracesieve import BudgetSampler
from tracesieve.testing import SimClock

clock = SimClock(float(sys.argv[2]))
older = BudgetSampler(1.0, budget=10**6, period="day", state_path=sys.argv[1], store="memory", clock=clock)
for i in range(10):
    clock.advance(1)
    older.should_sample(None, i + 1, "x")
newer = BudgetSampler(1.0, budget=10**6, period="day", state_path=sys.argv[1], store="memory", clock=clock)
print(older.budget_status()["used_spans"], newer.budget_status()["used_spans"])
for i in range(20):
    clock.advance(1)
    newer.should_sample(None, 100 + i, "x")
print(newer.budget_status()["used_spans"])
"""  # the older sampler stays alive to the end, as one a reload left referenced does


def test_a_newer_sampler_on_the_same_state_file_takes_it_over(tmp_path):
    """Regression: an older sampler left alive with the same state_path saved
    its older count over the newer one's every few seconds and, last of all,
    at exit, so a restart lost what the newer one had spent (20 of 20 here)."""
    import subprocess
    import sys

    path = tmp_path / "budget.json"
    run = subprocess.run([sys.executable, "-c", NEWER_SAMPLER, str(path), str(JAN + 3600)], capture_output=True, text=True, check=True)
    older, restored, newer = map(int, run.stdout.split())
    assert restored == older, "the older sampler's last count is carried on, as by a restart"
    assert newer == older + 20
    assert json.loads(path.read_text())["used_spans"] == newer, "at exit the file holds the newer count"


STATE_WORKER = """
import sys, time
from tracesieve import BudgetSampler

sampler = BudgetSampler(1.0, budget=10**6, period="day", state_path=sys.argv[1], store=sys.argv[3], save_interval=0.1)
deadline = time.monotonic() + float(sys.argv[2])
i = 0
while time.monotonic() < deadline:
    i += 1
    sampler.should_sample(None, i, "x")
    time.sleep(0.001)
"""


def test_processes_given_one_state_path_are_told_they_each_spend_the_budget(tmp_path):
    """Spawned workers given one state_path (and no store) each count their
    own budget, so together they spend it several times over, and each save
    replaces the other's count. Forked ones were warned; spawned ones were
    not. A restart (one process after the other) is not warned of."""
    import subprocess
    import sys

    path = tmp_path / "budget.json"
    said = "is also saved by process"
    alone = subprocess.run([sys.executable, "-c", STATE_WORKER, str(path), "1.0", "memory"], capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", STATE_WORKER, str(path), "1.0", "memory"], capture_output=True, text=True, check=True)
    assert said not in alone.stderr + again.stderr, "one process, then its restart"

    def two_workers(store):
        command = [sys.executable, "-c", STATE_WORKER, str(path), "3.0", store]
        workers = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        errors = [worker.communicate(timeout=60)[1] for worker in workers]
        assert all(worker.returncode == 0 for worker in workers), errors
        return workers, errors

    workers, errors = two_workers("memory")
    assert all(f"{said} {other.pid}:" in error for error, other in zip(errors, reversed(workers))), errors
    assert all(error.count(said) == 1 for error in errors), "once per process"
    # What the warning advises: one count in a store they share, which both save.
    _, errors = two_workers(f"file://{tmp_path / 'shared.tracesieve'}")
    assert not any(said in error for error in errors), errors


def test_a_relative_state_path_stays_where_it_was_when_the_working_directory_changes(tmp_path, monkeypatch):
    """Regression: a relative path was read again at every save, so a daemon
    that changed its working directory after building the sampler (to / as
    daemons do) restored from one file and saved to another."""
    started, later = tmp_path / "started", tmp_path / "later"
    started.mkdir()
    later.mkdir()
    monkeypatch.chdir(started)
    sampler = BudgetSampler(1.0, budget=1000, state_path="budget.json", store="memory")
    monkeypatch.chdir(later)
    sampler.close()
    assert (started / "budget.json").is_file() and not (later / "budget.json").exists()


def test_close_saves_a_last_time_and_stops_saving(tmp_path):
    path = tmp_path / "budget.json"
    clock = SimClock(JAN + 3600)
    sampler = BudgetSampler(1.0, budget=10**6, period="day", state_path=path, save_interval=0.1, clock=clock)
    for i in range(5):
        sampler.should_sample(None, i + 1, "x")
    sampler.close()
    saved = json.loads(path.read_text())["used_spans"]
    assert saved == sampler.budget_status()["used_spans"]
    sampler.should_sample(None, 99, "x")
    time.sleep(0.3)  # three save intervals
    assert json.loads(path.read_text())["used_spans"] == saved
    clock.advance(60)
    assert sampler.should_sample(None, 100, "x").decision.is_sampled(), "a closed sampler still decides"


def test_rule_sampler_inner_and_forced_keeps():
    clock = SimClock(JAN)
    rules = RuleSampler([{"name": "pay", "match": {"business.event": "payment"}, "action": "keep"}], default_rate=1.0, clock=clock)
    sampler = BudgetSampler(rules, budget=10, period="day")
    for i in range(50):
        clock.now = JAN + 86400 - 50 + i  # the day's last minute: the line allows the whole budget
        sampler.should_sample(None, i, "x")
    # New traces stop one span short: it is held back for the children of kept traces.
    assert 9 <= sampler.budget_status()["used_spans"] <= 10
    # Business events are kept past the budget unless cap_forced_keeps=True.
    assert sampler.should_sample(None, 7, "x", None, {"business.event": "payment"}).decision.is_sampled()
    status = sampler.budget_status()
    assert status["keep_rule_spans"] == 1 and status["keep_rules_capped"] is False
    capped = BudgetSampler(rules, budget=1, period="day", cap_forced_keeps=True)
    capped.should_sample(None, 1, "x")
    assert not capped.should_sample(None, 7, "x", None, {"business.event": "payment"}).decision.is_sampled()
    status = capped.budget_status()
    assert status["keep_rule_spans"] == 0 and status["keep_rules_capped"] is True


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"budget": 0}, ValueError, r"^budget: 0 is not a positive number"),
        ({"budget": -5}, ValueError, r"^budget: -5 is not a positive number"),
        ({"budget": 10, "cost_per_span": 0}, ValueError, r"^cost_per_span: 0 is not a positive number"),
        ({"budget": 0.5, "cost_per_span": 1.0}, ValueError, r"buys 0 spans"),
        ({"budget": "100"}, TypeError, r"^budget: expected a positive number, got str"),
        ({"budget": 10, "period": "quarter"}, ValueError, r'^period: unknown period "quarter"; expected one of hour, day, week, month'),
        ({"budget": 10, "timezone": "Mars/Base"}, ValueError, r'^timezone: unknown time zone "Mars/Base"'),
        ({"budget": 10, "clock": 3}, TypeError, r"^clock: expected a callable"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs, error, message):
    with pytest.raises(error, match=message):
        BudgetSampler(0.5, **kwargs)


def test_bad_inner_fails_at_construction():
    from tracesieve import TraceIdRatioSampler

    with pytest.raises(TypeError, match=r"^inner: expected a rate"):
        BudgetSampler("all", budget=10)
    with pytest.raises(ValueError, match="TraceIdRatioSampler decides by the legacy rule"):
        BudgetSampler(TraceIdRatioSampler(0.5), budget=10)
    with pytest.raises(TypeError, match="already a BudgetSampler"):
        BudgetSampler(BudgetSampler(0.5, budget=10), budget=10)
    assert BudgetSampler(ProbabilitySampler(0.5), budget=10).get_description() == "BudgetSampler{ProbabilitySampler{0.5},budget=10/month}"


def test_a_state_path_that_is_a_directory_is_refused_and_leaves_no_files(tmp_path):
    """Regression: a directory as state_path left a temporary file per save (8,640 a day)."""
    with pytest.raises(ConfigError, match=r"state_path: .* is a directory; expected the path of a state file"):
        BudgetSampler(1.0, budget=1000, state_path=tmp_path)
    assert list(tmp_path.iterdir()) == []


SAVE_FOREVER = """
import sys, time
from tracesieve import BudgetSampler
sampler = BudgetSampler(1.0, budget=10**9, state_path=sys.argv[1], save_interval=0.001)
for i in range(10**9):
    sampler.should_sample(None, i, "x")
    if i % 100 == 0:
        sampler.save_state()
"""


def test_temporary_files_never_pile_up_even_after_kill_9(tmp_path):
    """Regression: kill -9 during saves left 102 temporary files in 150 trials."""
    import random
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "budget.json"
    rng = random.Random(4)
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(path)])
        time.sleep(0.5 + rng.random() * 0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 8, "at most one per killed process"
    BudgetSampler(1.0, budget=10**9, state_path=path).save_state()  # a new start cleans up after the dead
    assert [p.name for p in tmp_path.iterdir()] == ["budget.json"]
    assert json.loads(path.read_text())["kind"] == "tracesieve.budget", "the state file itself is always whole"


def test_saving_state_never_writes_through_a_planted_link_and_files_are_private(tmp_path):
    """Regression: a symlink at the predictable ``state.json.<pid>.tmp`` made
    ``save_state()`` write into the file it pointed to."""
    import os

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "state.json"
    for name in (f"state.json.{os.getpid()}.tmp", f".state.json.{os.getpid()}.tmp"):
        (tmp_path / name).symlink_to(victim)
    sampler = BudgetSampler(1.0, budget=1000, state_path=path)
    sampler.save_state()
    assert victim.read_text() == "precious\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["kind"] == "tracesieve.budget"
    temporaries = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]
    assert temporaries == [], "nothing left behind"


def test_a_state_paths_missing_directories_are_made_private(tmp_path):
    tmp_path.chmod(0o755)
    path = tmp_path / "var" / "budget" / "state.json"
    BudgetSampler(1.0, budget=1000, state_path=path).save_state()
    for made in (path.parent, path.parent.parent):
        assert made.stat().st_mode & 0o777 == 0o700, made
    assert tmp_path.stat().st_mode & 0o777 == 0o755  # what was there is left as it was


def test_a_state_file_others_may_write_or_another_user_owns_is_ignored(tmp_path, caplog):
    import os

    path = tmp_path / "state.json"
    clock = SimClock(JAN + 10 * 86_400)
    first = BudgetSampler(1.0, budget=1000, state_path=path, clock=clock)
    for t in range(1, 31):
        first.should_sample(None, t, "x")
    first.close()
    os.chmod(path, 0o666)
    ignored = BudgetSampler(1.0, budget=1000, state_path=path, clock=clock)
    assert "others may write it" in caplog.text
    assert ignored.budget_status()["used_spans"] != first.budget_status()["used_spans"]
    ignored.close()
    if os.geteuid() == 0:
        os.chmod(path, 0o600)
        os.chown(path, 65534, 65534)
        BudgetSampler(1.0, budget=1000, state_path=path, clock=clock).close()
        assert "belongs to user 65534" in caplog.text
    link = tmp_path / "link.json"
    link.symlink_to(path)
    BudgetSampler(1.0, budget=1000, state_path=link, clock=clock)
    assert "ignoring unreadable budget state" in caplog.text
    # A named pipe planted at the path: refused at once, not waited on for a writer.
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe, 0o600)
    BudgetSampler(1.0, budget=1000, state_path=pipe, clock=clock)
    assert "pipe.json: not a regular file but a named pipe" in caplog.text


def test_explain_gives_the_probability_the_next_decision_keeps_with():
    """Regression: explain() showed the pace its last update set, without the
    easing near the limit that decisions multiply in: 85 of 160 kept spans here
    carried a th other than the one explain() had just given."""
    from tracesieve import from_config

    clock = SimClock(JAN + 3 * 3600)
    document = {"store": "memory", "rules": {"default_rate": 0.5, "rules": []}, "budget": {"budget": 2000, "period": "day"}}
    sampler = from_config(document, clock=clock)
    rng = random.Random(11)
    compared = differed = 0
    for i in range(40_000):  # ten times the day's budget: the pace eases near the limit
        clock.now = JAN + 3 * 3600 + i * 0.2
        explained = sampler.explain("GET", {"http.route": "/"})
        result = sampler.should_sample(None, rng.getrandbits(128), "GET", attributes={"http.route": "/"})
        if result.decision.is_sampled() and ot_value(result.trace_state) not in ("th:0", None):
            compared += 1
            differed += ot_value(result.trace_state) != f"th:{explained['th']}"
    # Only a decision that falls due for the pace's update (every few seconds) differs: 4 of 160.
    assert compared >= 100 and differed <= 0.05 * compared, (compared, differed)


def test_explain_at_a_given_time_reads_the_budget_at_that_time():
    """Regression: explain(now=...) read the budget's line with the wall time
    as its monotonic time (about 1.8 billion seconds on, where the line has
    long reached the whole budget), so a budget at its limit showed pacing 1,
    and so did `tracesieve explain`, which always passes the time."""
    from tracesieve import from_config

    clock = SimClock(JAN + 3 * 3600)
    document = {"store": "memory", "rules": {"default_rate": 0.5, "rules": []}, "budget": {"budget": 2000, "period": "day"}}
    sampler = from_config(document, clock=clock)
    rng = random.Random(13)
    for i in range(20_000):  # ten times the day's budget: at its limit
        clock.now = JAN + 3 * 3600 + i * 0.2
        sampler.should_sample(None, rng.getrandbits(128), "GET", attributes={"http.route": "/"})
    live = sampler.explain("GET", {"http.route": "/"})
    assert 0.0 < live["probability"] < 0.25, live
    assert sampler.explain("GET", {"http.route": "/"}, now=clock.now) == live
    # An hour on, with nothing spent meanwhile, the line has risen: the pace no lower, and short of pacing 1.
    later = sampler.explain("GET", {"http.route": "/"}, now=clock.now + 3600)
    assert live["probability"] <= later["probability"] < 0.5, (live, later)


def test_an_idle_services_status_is_the_new_periods_once_its_period_ended():
    """Regression: budget_status() (and the tracesieve.budget.spans gauge read
    from it) kept showing the ended period's spending until the service's
    next decision: a daily budget spent by evening read 100% used all night."""
    clock = SimClock(JAN + 18 * 3600)
    sampler = BudgetSampler(1.0, budget=1_000, period="day", clock=clock)
    rng = random.Random(4)
    for i in range(10_000):  # a request every two seconds until midnight
        clock.now = JAN + 18 * 3600 + 2 * i
        sampler.should_sample(None, rng.getrandbits(128), "GET")
    evening = sampler.budget_status()
    assert evening["used_spans"] > 950 and evening["period_start"] == "2026-01-01T00:00:00+00:00", evening
    clock.now = JAN + 86_400 + 7 * 3600  # 07:00 the next day, nothing decided since
    morning = sampler.budget_status()
    assert morning["period_start"] == "2026-01-02T00:00:00+00:00", morning
    assert (morning["used_spans"], morning["remaining_spans"], morning["refused_spans"]) == (0, 1_000, 0)
    assert morning["pacing_probability"] == 1.0
    sampler.should_sample(None, rng.getrandbits(128), "GET")
    status = sampler.budget_status()
    assert status["period_start"] == morning["period_start"] and status["used_spans"] == 1, "the decision began that period"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_a_storm_of_keep_rules_the_trickle_leaves_no_request_out_of_the_estimate(seed):
    """A two-hour storm of keep-rule spans (30% of requests) runs the count
    about 17 hours ahead of the line. The head sample trickles there instead
    of pausing, so the estimate read from the kept spans covers every request.
    Before the trickle the head paused: about 23,000 of the 113,000 other
    requests were decided at probability 0, and the estimate was 16% to 24%
    low against a stated standard error of 2%."""
    from tracesieve import from_config
    from tracesieve.estimate import estimate

    clock = SimClock(JAN)
    document = {
        "store": "memory",
        "force_keep": {"rules": [{"name": "pay", "match": {"http.route": "/pay"}}]},
        "budget": {"budget": 30_000, "period": "month"},
    }
    sampler = from_config(document, clock=clock)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop")
    rng = random.Random(seed)
    others = 0
    for i in range(115_200):  # a request every 3 s for four days (30 times the budget's demand)
        clock.now = JAN + i * 3.0
        storm = 60 * 3600 <= i * 3.0 < 62 * 3600
        route = "/pay" if rng.random() < (0.3 if storm else 0.01) else "/"
        others += route == "/"
        tracer.start_span("GET", attributes={"http.route": route}).end()
    result = estimate([s for s in exporter.get_finished_spans() if s.attributes["http.route"] == "/"])
    status = sampler.budget_status()
    assert status["zero_probability_spans"] == 0 and status["trickle_spans"] > 0, status
    assert abs(result.total - others) <= 3 * result.standard_error, (result, others)


def test_decisions_the_limit_gave_probability_zero_are_counted():
    """Where the budget gives the head sample probability 0, no kept span
    stands for those spans, so budget_status() counts them for whoever reads
    estimates from kept spans (``zero_probability_spans``). Here a start with
    no record waits for the line: nothing ran ahead of it (no keep rule, no
    tail keep), so there is no room for the trickle."""
    from tracesieve import from_config

    clock = SimClock(JAN + 3 * 3600)
    document = {"store": "memory", "rules": {"default_rate": 0.5, "rules": []}, "budget": {"budget": 2000, "period": "day"}}
    sampler = from_config(document, clock=clock)
    rng = random.Random(12)
    at_zero = 0
    for i in range(40_000):
        clock.now = JAN + 3 * 3600 + i * 0.2
        at_zero += sampler.explain("GET", {"http.route": "/"})["probability"] == 0.0
        sampler.should_sample(None, rng.getrandbits(128), "GET", attributes={"http.route": "/"})
    counted = sampler.budget_status()["zero_probability_spans"]
    # explain() reads the state a decision would; an update falling due between them may differ.
    assert 100 <= at_zero <= 10_000 and abs(counted - at_zero) <= 0.02 * at_zero, (counted, at_zero)


def test_the_docs_name_every_key_of_budget_status():
    """samplers.md lists what budget_status() gives: a key added without a
    word there fails here (period_start and period_end were unnamed)."""
    from helpers import ROOT

    text = (ROOT / "docs" / "samplers.md").read_text()
    start = text.index("`budget_status()` gives")
    documented = set(re.findall(r"`([a-z_]+)`", text[start : text.index("\n\n", start)]))
    assert set(BudgetSampler(1.0, budget=1_000, store="memory").budget_status()) <= documented
