"""A budget's record by default: with no store and no state file, a budget
keeps its record in a host store of the user's state directory, one file per
service, pieces keyed by settings, private to the user; shared by every worker
of the service (spawned, forked, recycled) and kept across restarts; memory
with one warning when no state directory is usable; never dark after a start."""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

from store_fleet import recycled, run_fleet_month
from tracesieve import BudgetSampler, JaegerRemoteSampler, _core, from_config
from tracesieve.record import service_name

BUDGET = 2_000


def _kept(sampler, n, seed=1):
    rng = random.Random(seed)
    return sum(sampler.should_sample(None, rng.getrandbits(128), "GET /").decision.is_sampled() for _ in range(n))


def test_the_default_record_is_a_private_file_named_for_the_service(private_state_dir, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    sampler = BudgetSampler(1.0, budget=10**9)
    info = sampler.stats()["store"]
    path = private_state_dir / "checkout.tracesieve"
    assert info["url"] == f"file://{path}" and info["shared"] == ["budget"], info
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert any(f"recorded on this host in {path}" in line for line in sampler.description)
    # Another process of the service, same settings: the same record.
    again = BudgetSampler(1.0, budget=10**9)
    _kept(sampler, 100)
    assert again.budget_status()["used_spans"] == sampler.budget_status()["used_spans"]
    # Another budget of the same service: another piece, never shared by accident.
    other = BudgetSampler(1.0, budget=10**8)
    assert other.stats()["store"]["url"] == info["url"]
    assert other.budget_status()["used_spans"] != sampler.budget_status()["used_spans"]
    # Opting out.
    assert BudgetSampler(1.0, budget=10**9, store="memory").stats()["store"]["url"] is None


def test_the_state_directory_is_made_private(tmp_path, monkeypatch):
    tmp_path.chmod(0o755)
    state = tmp_path / "deep" / "state"
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", str(state))
    BudgetSampler(1.0, budget=1_000)
    # The parents it had to make too, as the XDG base directory specification asks.
    for made in (state, state.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # what was there is left as it was


def test_the_service_name_comes_from_the_setting_then_opentelemetry_then_the_program(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=billing%20api")
    assert re.fullmatch(r"billing_api-[0-9a-f]{8}", service_name())
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders")
    assert service_name() == "orders"
    assert re.fullmatch(r"payments_v2-[0-9a-f]{8}", service_name("payments/v2"))
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    monkeypatch.setattr(sys, "argv", ["/srv/app/worker.py"])
    assert re.fullmatch(r"worker-[0-9a-f]{8}", service_name())
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/site-packages/gunicorn/__main__.py", "billing:app"])
    assert re.fullmatch(r"gunicorn-[0-9a-f]{8}", service_name())
    monkeypatch.setattr(sys, "argv", ["-"])  # python - < script.py: no name, as python -c
    assert re.fullmatch(r"python-[0-9a-f]{8}", service_name())
    # A record's file never begins with a dash, which rm and ls would read as an option.
    assert re.fullmatch(r"rf-[0-9a-f]{8}", service_name("-rf"))
    assert BudgetSampler(1.0, budget=1_000, name="search").name == "search"


def test_two_services_run_by_one_launcher_never_share_a_record(monkeypatch, tmp_path):
    """Regression: with no service name set, a record was named after the
    program alone, so `gunicorn billing:app` and `gunicorn orders:app` on one
    host (or two services' app.py) shared one budget, each spending the other's."""
    for variable in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    names = set()
    for argv in (["/usr/bin/gunicorn", "billing:app"], ["/usr/bin/gunicorn", "orders:app"]):
        monkeypatch.setattr(sys, "argv", argv)
        names.add(service_name())
    (tmp_path / "billing").mkdir()
    (tmp_path / "orders").mkdir()
    for directory in ("billing", "orders"):
        monkeypatch.chdir(tmp_path / directory)
        monkeypatch.setattr(sys, "argv", ["app.py"])
        names.add(service_name())
    assert len(names) == 4, names
    # One service's workers and restarts: the same command in the same directory, the same record.
    assert service_name() == service_name()


def test_a_pipeline_budget_keeps_its_record_too_and_store_memory_opts_out(private_state_dir):
    pipeline = from_config({"probability": {"rate": 1.0}, "budget": {"budget": 10_000, "name": "search"}})
    assert pipeline.stats()["store"]["url"] == f"file://{private_state_dir / 'search.tracesieve'}"
    assert pipeline.resolved["stages"][-1]["record"] == f"file://{private_state_dir / 'search.tracesieve'}"
    memory = from_config({"store": "memory", "probability": {"rate": 1.0}, "budget": {"budget": 10_000}})
    assert memory.stats()["store"]["url"] is None
    host = from_config({"store": "host", "probability": {"rate": 1.0}, "rate_limit": {"traces_per_second": 5}})
    assert host.stats()["store"]["shared"] == ["rate_limit"]


@pytest.mark.parametrize(
    "spoil, why",
    [
        (lambda d: d.write_text("a file, not a directory"), "is not a directory"),
        (lambda d: (d.mkdir(), d.chmod(0o777)), "may be written by others"),
        (lambda d: (d.mkdir(), os.chown(d, 65534, 65534)), "belongs to user 65534"),
    ],
    ids=["a file", "open to all", "another user's"],
)
def test_an_unusable_state_directory_leaves_the_budget_in_memory_with_one_warning(tmp_path, monkeypatch, caplog, spoil, why):
    if "65534" in why and os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root (CI runs as root)")
    state = tmp_path / "state"
    spoil(state)
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", str(state))
    caplog.set_level(logging.WARNING, logger="tracesieve.budget")
    first = BudgetSampler(1.0, budget=1_000)
    BudgetSampler(1.0, budget=1_000)
    assert first.stats()["store"]["url"] is None
    warnings = [r.getMessage() for r in caplog.records if "memory only" in r.getMessage()]
    assert len(warnings) == 1 and str(state) in warnings[0] and why in warnings[0], warnings


def test_a_tilde_in_the_state_directory_is_the_home_directory(tmp_path, monkeypatch):
    """Regression: TRACESIEVE_STATE_DIR=~/records, as a Dockerfile's ENV or systemd's
    Environment= pass it (no shell to expand it), made a folder named ~ in the
    working directory and kept the record there."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", "~/records")
    sampler = BudgetSampler(1.0, budget=1_000)
    assert sampler.stats()["store"]["url"].startswith(f"file://{tmp_path / 'home' / 'records'}/")
    assert list(work.iterdir()) == []


def test_a_relative_state_directory_leaves_the_budget_in_memory(tmp_path, monkeypatch, caplog):
    """A relative TRACESIEVE_STATE_DIR would move with each process's working
    directory (a daemon's is /), so workers would not share one record: it is
    refused, as XDG refuses relative paths in its own variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", "records")
    caplog.set_level(logging.WARNING, logger="tracesieve.budget")
    sampler = BudgetSampler(1.0, budget=1_000)
    assert sampler.stats()["store"]["url"] is None
    warnings = [r.getMessage() for r in caplog.records if "memory only" in r.getMessage()]
    assert len(warnings) == 1 and "records is a relative path; expected an absolute one" in warnings[0], warnings
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given", [None, "~/records"])
def test_a_user_with_no_home_directory_runs_in_memory(monkeypatch, caplog, given):
    """Regression: in a container run as an arbitrary user id (no entry in the
    user database) with HOME unset, building any budget raised RuntimeError
    ("could not determine the home directory") into the application."""
    import pwd

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    if given is None:
        monkeypatch.delenv("TRACESIEVE_STATE_DIR", raising=False)
    else:
        monkeypatch.setenv("TRACESIEVE_STATE_DIR", given)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    caplog.set_level(logging.WARNING, logger="tracesieve.budget")
    sampler = BudgetSampler(1.0, budget=1_000)
    BudgetSampler(1.0, budget=1_000)
    assert sampler.stats()["store"]["url"] is None
    warnings = [r.getMessage() for r in caplog.records if "memory only" in r.getMessage()]
    assert len(warnings) == 1 and "cannot be placed: this user has no home directory" in warnings[0], warnings


def test_a_state_directory_whose_name_is_not_utf8_leaves_the_budget_in_memory(tmp_path, monkeypatch, caplog):
    """Regression: a directory named with bytes that are not UTF-8 (TRACESIEVE_STATE_DIR
    set by a shell in a Latin-1 locale) raised UnicodeEncodeError from BudgetSampler: a
    store is named by a URL, which is text."""
    state = tmp_path / "caf\udce9"
    state.mkdir(mode=0o700)
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", str(state))
    caplog.set_level(logging.WARNING, logger="tracesieve.budget")
    sampler = BudgetSampler(1.0, budget=1_000)
    assert sampler.stats()["store"]["url"] is None
    warnings = [r.getMessage() for r in caplog.records if "memory only" in r.getMessage()]
    assert len(warnings) == 1 and "caf\\udce9" in warnings[0] and "not UTF-8 text" in warnings[0], warnings


UNUSABLE_HOME = """
import logging, os, sys
logging.basicConfig(level=logging.WARNING)
from tracesieve import BudgetSampler
print(BudgetSampler(1.0, budget=1000).stats()["store"]["url"])
"""


def test_a_home_that_cannot_hold_state_runs_in_memory(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory: nothing can be made under it")
    env = {key: value for key, value in os.environ.items() if key not in ("TRACESIEVE_STATE_DIR", "XDG_STATE_HOME")}
    done = subprocess.run([sys.executable, "-c", UNUSABLE_HOME], capture_output=True, text=True, check=True, env={**env, "HOME": str(home)})
    assert done.stdout.strip() == "None"
    assert "memory only" in done.stderr and str(home) in done.stderr and "cannot be made" in done.stderr, done.stderr


def test_a_home_that_does_not_exist_is_not_made(tmp_path):
    """Regression: with HOME=/nonexistent (as Debian gives system users) or a
    Dockerfile's HOME never made, a process run as root made the home itself,
    root's, to put the state directory in."""
    home = tmp_path / "nonexistent"
    env = {key: value for key, value in os.environ.items() if key not in ("TRACESIEVE_STATE_DIR", "XDG_STATE_HOME")}
    done = subprocess.run([sys.executable, "-c", UNUSABLE_HOME], capture_output=True, text=True, check=True, env={**env, "HOME": str(home)})
    assert done.stdout.strip() == "None"
    assert f"the state directory {home}/.local/state/tracesieve is in the home directory {home}, which does not exist" in done.stderr
    assert not home.exists()
    # A directory named by a variable is made whole, as asked.
    state = tmp_path / "state" / "records"
    done = subprocess.run(
        [sys.executable, "-c", UNUSABLE_HOME],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "HOME": str(home), "TRACESIEVE_STATE_DIR": str(state)},
    )
    assert done.stdout.strip().startswith(f"file://{state}/")
    # An existing home gets its .local/state/tracesieve, each part private.
    home.mkdir()
    done = subprocess.run([sys.executable, "-c", UNUSABLE_HOME], capture_output=True, text=True, check=True, env={**env, "HOME": str(home)})
    assert done.stdout.strip().startswith(f"file://{home}/.local/state/tracesieve/")
    assert (home / ".local").stat().st_mode & 0o777 == 0o700


SIXTY_FIFTH_BUDGET = """
from tracesieve import BudgetSampler
sampler = BudgetSampler(1.0, budget=10**9 + 64)
print(sampler.stats()["store"]["url"], sampler.budget_status()["used_spans"])
"""


def test_a_service_whose_budget_changed_64_times_still_shares_its_record(private_state_dir, monkeypatch, caplog):
    """Regression: a record holds 64 budgets; the 65th set of settings a service
    ever used ran in each process's memory (with a warning), so its workers
    no longer shared one budget: N workers, up to N times the bill."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tuned")
    for change in range(64):
        BudgetSampler(1.0, budget=10**9 + change)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tracesieve"):
        sampler = BudgetSampler(1.0, budget=10**9 + 64)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "starts a new count" in said[0] and "64 other budgets" in said[0], said
    overflow = private_state_dir / "tuned+2.tracesieve"
    assert sampler.stats()["store"]["url"] == f"file://{overflow}"
    assert sampler.stats()["store"]["shared"] == ["budget"]
    assert any(f"recorded on this host in {overflow}" in line for line in sampler.description)
    assert stat.S_IMODE(overflow.stat().st_mode) == 0o600
    _kept(sampler, 500)
    used = sampler.budget_status()["used_spans"]
    assert used >= 490
    # Another process with the same settings finds the same budget and its count.
    out = subprocess.run([sys.executable, "-c", SIXTY_FIFTH_BUDGET], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == [f"file://{overflow}", str(used)], out
    # The budgets of the first 64 settings are where they were.
    assert BudgetSampler(1.0, budget=10**9 + 3).stats()["store"]["url"] == f"file://{private_state_dir / 'tuned.tracesieve'}"


def test_a_budget_around_a_remote_sampler_is_for_the_service_it_names(private_state_dir, monkeypatch):
    """Regression: BudgetSampler(JaegerRemoteSampler("checkout")) and a document's
    jaeger_remote stage named the service, but the budget filed its record under
    the program's name and a digest of its command line."""
    from opentelemetry.sdk.resources import Resource

    from tracesieve import XRayRemoteSampler

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)

    def record_of(sampler):
        return sampler.stats()["store"]["url"].rsplit("/", 1)[-1]

    assert record_of(BudgetSampler(JaegerRemoteSampler("checkout", start=False), budget=BUDGET)) == "checkout.tracesieve"
    xray = XRayRemoteSampler(Resource.create({"service.name": "billing"}), start=False)
    assert record_of(BudgetSampler(xray, budget=BUDGET)) == "billing.tracesieve"
    document = {"jaeger_remote": {"service_name": "orders", "endpoint": "file:///dev/null"}, "budget": {"budget": BUDGET}}
    assert record_of(from_config(document)) == "orders.tracesieve"
    # The budget's own name comes first; a remote sampler with no service of its own names nothing.
    assert record_of(BudgetSampler(JaegerRemoteSampler("checkout", start=False), budget=BUDGET, name="edge")) == "edge.tracesieve"
    assert record_of(from_config({**document, "budget": {"budget": BUDGET, "name": "edge"}})) == "edge.tracesieve"
    unnamed = record_of(BudgetSampler(XRayRemoteSampler(start=False), budget=BUDGET))
    assert unnamed.endswith(".tracesieve") and "unknown_service" not in unnamed


def test_a_first_start_mid_period_keeps_a_short_burst_whole():
    """Regression: BudgetSampler(1.0, budget=10**9) started on 5 December kept 1 of
    2,000 spans, and a budget of 10**12 around a remote strategy 1 of 20,000."""
    sampler = BudgetSampler(1.0, budget=10**9)
    assert _kept(sampler, 2_000) >= 0.99 * 2_000
    remote = BudgetSampler(JaegerRemoteSampler("svc", initial_rate=0.01, start=False), budget=10**12)
    kept = _kept(remote, 20_000)
    assert 200 - 5 * 14 <= kept <= 200 + 5 * 14, "the inner rate holds (1% of 20,000, within 5 sigma)"


@pytest.mark.parametrize("mode", ["spawn", "fork"])
def test_recycled_workers_with_the_default_record_share_one_budget(mode):
    # Four worker slots, each process replaced every week (about 1,200 requests at
    # 10x demand): the record carries on through every start, spawned or forked.
    month = run_fleet_month("host", BUDGET, 10, recycled(24 * 7), mode=mode)
    assert month.blind_hours == 0
    assert 0.95 * BUDGET <= month.used <= BUDGET + 12 + 8
    assert sum(month.kept_by_hour) == month.used


KILLED_WORKER = """
import random, sys, time
from tracesieve import BudgetSampler
sampler = BudgetSampler(1.0, budget=10**9, name="killed")
rng = random.Random(7)
kept = sum(sampler.should_sample(None, rng.getrandbits(128), "GET /").decision.is_sampled() for _ in range(2_000))
print(kept, sampler.budget_status()["used_spans"], flush=True)
time.sleep(60)
"""


def test_the_default_record_keeps_every_keep_of_a_killed_process(private_state_dir):
    """SIGKILL (or SIGTERM, which Python does not turn into an exit) runs no
    exit handler; the host record counts each keep as it is made, so a
    restart carries on from the very last one."""
    worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER], stdout=subprocess.PIPE, text=True)
    try:
        kept, used = map(int, worker.stdout.readline().split())
    finally:
        worker.kill()
        worker.wait(timeout=30)
        worker.stdout.close()
    assert kept >= 1_990
    restarted = BudgetSampler(1.0, budget=10**9, name="killed")
    assert restarted.budget_status()["used_spans"] == used


def test_names_that_read_alike_once_made_safe_never_share_a_record():
    """Regression: the file name was the name with unsafe characters replaced and cut
    at 64, so "payments/v2" and "payments v2" shared one budget, and so did every
    service named in another script (each became "python")."""
    alike = ["payments/v2", "payments v2", "payments_v2", "名前", "サービス", "a" * 64 + "x", "a" * 64 + "y", "checkout."]
    names = [service_name(name) for name in alike]
    assert len(set(names)) == len(alike), names
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) for name in names), names
    assert service_name("checkout") == "checkout" and service_name("名前") == service_name("名前")


HOLDER = """
import os, sys, time
from tracesieve import BudgetSampler
sampler = BudgetSampler(1.0, budget=10**9, name=sys.argv[1])
if sys.argv[2] == "fork" and os.fork():
    os._exit(0)  # the parent goes; the forked child holds the record on
print(os.getpid(), flush=True)
time.sleep(120)
"""


def _backdate(path, days):
    then = time.time() - days * 86_400
    os.utime(path, (then, then))


def test_records_no_process_used_for_two_months_are_removed_and_held_ones_kept(private_state_dir, caplog):
    """Every unnamed program (each `python -c`, each retired service) left its
    record in the state directory for good."""
    subprocess.run(
        [sys.executable, "-c", "from tracesieve import BudgetSampler; BudgetSampler(1.0, budget=10**9, name='retired')"], check=True
    )
    holders = [
        subprocess.Popen([sys.executable, "-c", HOLDER, name, name], stdout=subprocess.PIPE, text=True) for name in ("spawn", "fork")
    ]
    pids: list = []
    try:
        pids = [int(holder.stdout.readline()) for holder in holders]
        (private_state_dir / "recent.tracesieve").write_bytes((private_state_dir / "retired.tracesieve").read_bytes())
        os.chmod(private_state_dir / "recent.tracesieve", 0o600)
        for name in ("retired", "spawn", "fork"):
            _backdate(private_state_dir / f"{name}.tracesieve", 63)
        with caplog.at_level(logging.INFO, logger="tracesieve"):
            BudgetSampler(1.0, budget=10**9, name="new")
        assert [r.getMessage() for r in caplog.records if "removed" in r.getMessage()] == [
            f"tracesieve: removed 1 record file(s) from {private_state_dir} that no process had used for 62 days: retired.tracesieve"
        ]
        assert sorted(p.name for p in private_state_dir.iterdir()) == [f"{n}.tracesieve" for n in ("fork", "new", "recent", "spawn")]
        # The service started again makes its record afresh, private as ever.
        BudgetSampler(1.0, budget=10**9, name="retired")
        made = (private_state_dir / "retired.tracesieve").stat()
        assert stat.S_IMODE(made.st_mode) == 0o600 and made.st_mtime > time.time() - 60
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for holder in holders:
            holder.kill()
            holder.wait(timeout=30)
            holder.stdout.close()
    # Once their processes are gone, the held records are idle like any other.
    _wait_for(lambda: not any(_alive(pid) for pid in pids))
    for name in ("spawn", "fork"):
        _backdate(private_state_dir / f"{name}.tracesieve", 63)
    removed = _core.remove_idle_records(str(private_state_dir))
    assert sorted(os.path.basename(path) for path in removed) == ["fork.tracesieve", "spawn.tracesieve"]


def _alive(pid):
    """False once every thread of ``pid`` is gone or a zombie (its files
    closed). The process's own state is not enough: its first thread turns
    zombie while its others (a background thread) are still exiting, holding
    the files they share."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/stat") as stat_file:
                if stat_file.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return True
        except OSError:
            continue
    return False


def _wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


STARTED_WITH_A_BUDGET = """
import logging, random, sys
logging.basicConfig(level=logging.WARNING)
from tracesieve import BudgetSampler
sampler = BudgetSampler(1.0, budget=int(sys.argv[1]), name="checkout")
rng = random.Random(int(sys.argv[2]))
for _ in range(int(sys.argv[2])):
    sampler.should_sample(None, rng.getrandbits(128), "GET /")
print(sampler.budget_status()["used_spans"])
"""


def _start(budget, spans):
    done = subprocess.run(
        [sys.executable, "-c", STARTED_WITH_A_BUDGET, str(budget), str(spans)], capture_output=True, text=True, check=True, timeout=60
    )
    return int(done.stdout), done.stderr


def test_a_restart_with_a_changed_budget_says_it_counts_afresh_and_what_the_others_spent(private_state_dir, tmp_path, caplog):
    """A restart with changed settings counts afresh from the calendar's
    share: lowering 100,000 to 50,000 mid-month and restarting could spend
    the old budget's count again, with nothing said. The service now says so
    at the start that makes the new count, with what the record's other
    budgets spent; the restarts after it, a reload (which carries the count
    over) and check (which reads a copy) say nothing."""
    record = private_state_dir / "checkout.tracesieve"
    spent, said = _start(100_000, 300)
    assert spent >= 300 and "new count" not in said, said
    _, said = _start(50_000, 10)
    lines = [line for line in said.splitlines() if "starts a new count" in line]
    assert len(lines) == 1, said
    assert f"the budget of 50,000 spans per month (UTC) starts a new count in the service's record {record}" in lines[0]
    assert f"only 1 other budget of the service (100,000 spans per month (UTC): {spent:,} spent this month (" in lines[0]
    assert "If this budget replaces that one, what it spent is not carried over; a reload" in lines[0]
    _, said = _start(50_000, 10)
    assert "new count" not in said, "a restart that finds its budget's count carries on"
    # A reload to a changed budget carries the count over, so it says nothing.
    config = tmp_path / "sampling.toml"
    config.write_text('[budget]\nbudget = 70000\nname = "checkout"\n')
    with caplog.at_level(logging.WARNING, logger="tracesieve"):
        sampler = from_config(str(config))
        assert any("70,000 spans per month" in r.getMessage() and "2 other budgets" in r.getMessage() for r in caplog.records)
        caplog.clear()
        config.write_text('[budget]\nbudget = 80000\nname = "checkout"\n')
        assert sampler.reload()
        assert sampler.budget_status()["budget_spans"] == 80_000
    assert not [r.getMessage() for r in caplog.records if "new count" in r.getMessage()]
    # The count the reload carried over is the record's: a restart with those settings carries on from it.
    carried, said = _start(80_000, 0)
    assert carried == sampler.budget_status()["used_spans"] and "new count" not in said, said
    # check reads a copy of the record and lists the others itself.
    config.write_text('[budget]\nbudget = 90000\nname = "checkout"\n')
    checked = subprocess.run(
        [sys.executable, "-m", "tracesieve", "check", str(config)], capture_output=True, text=True, check=True, timeout=60
    )
    assert "other budgets" in checked.stdout and "new count" not in checked.stderr, checked
