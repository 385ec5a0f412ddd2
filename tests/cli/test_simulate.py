"""tracesieve simulate: scenarios at reduced scale against the quality targets,
comparisons, charts."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tracesieve.cli import main

from helpers import ROOT


def run_json(capsys, *args) -> dict:
    assert main(["simulate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_traffic_estimates_completeness_and_conservation(capsys):
    data = run_json(capsys, "traffic", "--requests", "40000", "--approaches", "shared", "--compare", "naive")
    ours, naive = data["results"]
    assert ours["label"].startswith("shared tail") and naive["label"].startswith("naive")
    assert ours["spans_total"] == 3 * 40_000
    for result in (ours, naive):
        by_endpoint = result["by_endpoint"]
        assert sum(c["requests"] for c in by_endpoint.values()) == 40_000
        # Regression: drops were never counted (total - kept was reported): both are measured.
        assert result["spans_kept"] + result["spans_dropped"] == result["spans_total"], result["label"]
    qualified = {k: c for k, c in ours["by_endpoint"].items() if c["kept_by_probability"] >= 1000}
    assert len(qualified) >= 2
    for endpoint, cells in qualified.items():
        assert abs(cells["error"]) <= 0.05, (endpoint, cells)
    # Every service's own kept spans (many kept for another service's announcement,
    # with their adjusted counts) estimate the requests per endpoint within 5%.
    checked = 0
    for service, table in ours["by_service"].items():
        for endpoint, cells in table.items():
            if cells["kept_by_probability"] >= 1000:
                checked += 1
                assert abs(cells["error"]) <= 0.05, (service, endpoint, cells)
    assert checked >= 6
    assert ours["error_traces_whole"] == ours["error_traces"]
    assert ours["slow_traces_whole"] == ours["slow_traces"] > 0
    assert ours["traces_complete"] == ours["traces_seen"]
    assert naive["traces_complete"] < 0.5 * naive["traces_seen"], "the seed's per-service draws break traces"


def test_error_storm_keeps_every_error_trace_whole_and_boosts(capsys):
    data = run_json(capsys, "errors", "--requests", "8000", "--approaches", "shared")
    ours = data["results"][0]
    assert ours["error_traces"] > 500
    assert ours["error_traces_whole"] == ours["error_traces"]
    assert max(b for _, b in ours["boost"]) >= 2.0


def test_a_month_at_ten_times_the_budget_exports_within_it_and_keeps_every_error_trace_whole(capsys):
    # The default scale (60,000 requests): each service's budget is a tenth of the
    # requests, 2% of requests fail, and every span a service exports spends its budget.
    data = run_json(capsys, "month", "--approaches", "shared")
    ours = data["results"][0]
    budget = data["budget_spans"]
    assert budget == 5_998
    assert 0 < ours["error_traces"] <= 0.5 * budget, "errors need at most half the budget"
    assert ours["error_traces_whole"] == ours["error_traces"]
    assert ours["blind_hours"] == 0
    # Downstream services pace their own budgets consistently: they keep a subset of
    # the frontend's traces, never a trace the frontend dropped.
    assert ours["orphans"] == 0
    for service, spent in ours["budget_by_service"].items():
        assert spent["exported_spans"] == spent["counted_spans"], f"{service}: every exported span is counted"
        assert 0.95 * budget <= spent["exported_spans"] <= budget + spent["burst_spans"], (service, spent)
    # Each endpoint's monthly total, estimated from the frontend's kept spans alone
    # (th, the tail's adjusted counts, and th 0 for the floor's keeps).
    estimated = {endpoint: cells for endpoint, cells in ours["by_endpoint"].items() if cells["kept"] >= 1_000}
    assert len(estimated) >= 3
    for endpoint, cells in estimated.items():
        assert abs(cells["error"]) <= 0.10, (endpoint, cells)
    assert ours["floor_kept"] > 0 and ours["unweighted"] == 0


def test_a_third_of_the_traffic_still_covers_every_hour(capsys):
    """docs/pacing.md: keep rules and the tail take most of a small budget, and
    every hour stays covered down to 20,000 requests a month."""
    ours = run_json(capsys, "month", "--approaches", "shared", "--requests", "20000")["results"][0]
    assert ours["blind_hours"] == 0
    frontend = ours["budget_by_service"]["frontend"]
    assert frontend["keep_rule_spans"] >= 0.15 * frontend["budget_spans"], frontend


@pytest.mark.parametrize("propagation", ["0", "0.5"])
def test_errors_starting_in_the_leaf_are_whole_only_when_decisions_are_shared(capsys, propagation):
    data = run_json(capsys, "traffic", "--requests", "6000", "--propagation", propagation)
    shared, alone, head = data["results"]
    assert [r["label"] for r in data["results"]] == ["shared tail (decisions shared)", "per-process tail", "head sampling only"]
    assert shared["error_traces"] > 200 and shared["slow_traces"] > 50
    assert shared["error_traces_whole"] == shared["error_traces"]
    assert shared["slow_traces_whole"] == shared["slow_traces"]
    for result in (alone, head):
        assert result["error_traces_whole"] < 0.7 * result["error_traces"], result["label"]
        assert result["slow_traces_whole"] < 0.7 * result["slow_traces"], result["label"]
    assert head["error_traces_whole"] <= alone["error_traces_whole"]


def test_fault_options_are_checked(capsys):
    assert main(["simulate", "--error-origin", "billing"]) == 2
    assert "--error-origin: 'billing' is no service; expected one of frontend, orders, payments" in capsys.readouterr().err
    assert main(["simulate", "--propagation", "1.5"]) == 2
    assert "--propagation: 1.5 is out of range" in capsys.readouterr().err
    assert main(["simulate", "--approaches", "shared,psychic"]) == 2
    assert "expected some of shared, tail, head, naive" in capsys.readouterr().err


def test_spike_scenario_and_terminal_report(capsys):
    assert main(["simulate", "spike", "--requests", "6000"]) == 0
    out = capsys.readouterr().out
    assert "tracesieve simulate spike" in out
    assert "blind hours (demand but nothing kept): 0 of 24" in out
    assert "error traces kept whole" in out and "decision cost" in out
    # A service that exported more than its budget says why: the example policy's
    # keep rules are not capped by it.
    lines = re.findall(r"^    \w+ +([\d,]+) of ([\d,]+) spans \(([^)]*)\)", out, re.MULTILINE)
    over = [why for exported, budget, why in lines if int(exported.replace(",", "")) > int(budget.replace(",", ""))]
    assert over and all("over: keep rules, which the policy does not cap, kept" in why or "over; its burst is" in why for why in over), (
        lines
    )


def test_with_keep_rules_capped_the_spike_stays_within_budget_and_burst(tmp_path, capsys):
    policy = (ROOT / "examples" / "example_pipeline.toml").read_text()
    capped = tmp_path / "capped.toml"
    capped.write_text(policy.replace("[force_keep]", "[force_keep]\ncapped_by_budget = true", 1))
    assert main(["simulate", "spike", "--requests", "6000", "--approaches", "shared", "--config", str(capped), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    budgets = result["budget_by_service"]
    assert budgets["frontend"]["keep_rule_spans"] > 0, "the business events are the frontend's"
    for service, budget in budgets.items():
        assert budget["keep_rules_capped"], service
        assert budget["exported_spans"] <= budget["budget_spans"] + budget["burst_spans"], (service, budget)


def test_a_policy_with_no_budget_runs_unpaced_and_says_so(tmp_path, capsys):
    policy = (ROOT / "examples" / "example_pipeline.toml").read_text()
    unbudgeted = tmp_path / "unbudgeted.toml"
    unbudgeted.write_text(policy[: policy.index("[budget]")])
    assert main(["simulate", "spike", "--requests", "3000", "--approaches", "shared", "--config", str(unbudgeted)]) == 0
    out = capsys.readouterr().out
    assert "no budget: the policy has no budget stage, so nothing paces to the scenario's 300 spans" in out
    assert "error traces kept whole: " in out and "exported against each service's budget" not in out


def test_the_report_says_what_became_of_the_policys_budget(tmp_path, capsys):
    """Regression: an hour's scenario dropped the policy's budget without a
    word, so `simulate --config` with a budget of 1,000 spans a month kept
    every span, as if the budget did nothing; month and spike replaced its
    amount, which the report did not say either."""
    config = tmp_path / "budget.toml"
    config.write_text('[budget]\nbudget = 5.0\ncost_per_span = 0.005\nperiod = "day"\n')
    assert main(["simulate", "--requests", "300", "--approaches", "shared", "--config", str(config)]) == 0
    heading = capsys.readouterr().out.splitlines()[:4]
    assert heading[2] == (
        "the policy's budget (1,000 spans per day) is left out: an hour cannot show its pacing; "
        "simulate month (or spike, for a daily budget) runs it, sized to the scenario"
    )
    assert heading[3] == ""
    assert main(["simulate", "spike", "--requests", "3000", "--approaches", "shared", "--config", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["notes"] == [
        "the policy's budget (1,000 spans per day) is sized to the scenario: 300 spans per day a service, a tenth of its requests"
    ]
    assert report["results"][0]["budget_by_service"]["frontend"]["budget_spans"] == 300
    config.write_text("[probability]\nrate = 0.5\n")
    assert main(["simulate", "errors", "--requests", "300", "--approaches", "shared", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == []


def test_charts_or_a_clear_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["simulate", "errors", "--requests", "800", "--out", str(tmp_path)]) == 2
    assert "charts need the plot extra: pip install 'tracesieve[plot]'" in capsys.readouterr().err


def test_charts_are_written_with_matplotlib(tmp_path, capsys):
    assert main(["simulate", "month", "--requests", "3000", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["month-boost.png", "month-budget.png", "month-kept.png"]


def test_a_chart_is_never_written_through_a_symbolic_link(tmp_path, capsys):
    """In a shared folder such as /tmp, a link planted under a chart's name made
    the chart overwrite the file the link named."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "month-kept.png").symlink_to(victim)
    assert main(["simulate", "month", "--requests", "2000", "--out", str(tmp_path)]) == 2
    assert "month-kept.png: it is a symbolic link, and charts are not written through links" in capsys.readouterr().err
    assert victim.read_text() == "precious"


@pytest.mark.timeout(20)
def test_a_charts_folder_that_cannot_be_made_fails_before_the_simulation(tmp_path, capsys):
    """Found with a mistyped --out: the whole run went first, and then the charts
    failed with a line that did not say "error"."""
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be made")
    assert main(["simulate", "month", "--requests", "1000000", "--out", str(blocked / "charts")]) == 2
    assert capsys.readouterr().err == f"tracesieve: error: --out: cannot make the folder {blocked / 'charts'}: Not a directory\n"


def test_simulating_a_services_policy_neither_makes_nor_spends_its_record(private_state_dir, monkeypatch, capsys):
    """Regression: simulate checked a policy with a budget by building it as the
    service would, so it made a record in the user's state directory and,
    with the service named (OTEL_SERVICE_NAME), opened the service's own: a
    real budget. It reads records only, as check does."""
    from tracesieve import from_config

    config = str(ROOT / "examples" / "payment_service.yaml")
    assert main(["simulate", "errors", "--requests", "300", "--config", config]) == 0
    assert list(private_state_dir.iterdir()) == [], "no record made"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "payments")
    service = from_config(config)
    record = private_state_dir / "payments.tracesieve"
    spent, before = service.budget_status()["used_spans"], record.read_bytes()
    assert main(["simulate", "errors", "--requests", "300", "--config", config]) == 0
    assert service.budget_status()["used_spans"] == spent and record.read_bytes() == before
    assert sorted(p.name for p in private_state_dir.iterdir()) == ["payments.tracesieve"]
    capsys.readouterr()


def test_a_configurations_tail_section_is_the_simulated_tails_policy(tmp_path, capsys):
    """Regression: simulate passed over a configuration's tail section (its
    rules, latency threshold, budget priorities), so it reported what the
    simulation's own tail kept, not the file's."""
    config = tmp_path / "sampling.toml"
    config.write_text(
        '[probability]\nrate = 0.1\n[tail]\nlatency_threshold = 30.0\nrules = [{ name = "premium", match = { "user.tier" = "premium" } }]\n'
    )
    [ours] = run_json(capsys, "traffic", "--requests", "3000", "--approaches", "shared", "--config", str(config))["results"]
    premium = ours["by_tier"]["premium"]
    assert premium["kept"] == premium["requests"] > 0, "the file's tail rule keeps every premium trace"
    assert ours["slow_traces_whole"] < ours["slow_traces"], "no simulated request lasts the file's 30 s threshold"
    config.write_text("[probability]\nrate = 0.1\n")
    [default] = run_json(capsys, "traffic", "--requests", "3000", "--approaches", "shared", "--config", str(config))["results"]
    assert default["slow_traces_whole"] == default["slow_traces"] > 0 and default["by_tier"]["premium"]["kept"] < premium["requests"]


@pytest.mark.parametrize("stage", ["jaeger_remote", "xray_remote"])
def test_a_remote_stage_is_refused_rather_than_polled_from_every_simulated_service(tmp_path, capsys, stage):
    config = tmp_path / "sampling.toml"
    config.write_text(f'[{stage}]\nservice_name = "shop"\nendpoint = "http://127.0.0.1:9"\n')
    assert main(["simulate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{stage}: decides by what a server sends, which a simulation has none of" in err and "Connection refused" not in err


def test_processes_refuse_what_they_would_pass_over(tmp_path, capsys):
    """Regression: --processes ran its own fixed policy and traffic and said
    nothing of a --config, a scenario or --out it was given."""
    config = tmp_path / "sampling.toml"
    config.write_text("[probability]\nrate = 0.5\n")
    for extra, given in ((["--config", str(config)], "--config"), (["month"], "month"), (["--out", str(tmp_path)], "--out")):
        assert main(["simulate", "--processes", *extra]) == 2
        assert f"it takes no scenario, --config or --out (given: {given})" in capsys.readouterr().err


def _descendants(pid: int) -> set:
    """The processes ``pid`` started (and theirs), read from /proc."""
    children: dict = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), set()).add(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "signum, whole_group, code, said",
    [
        (2, True, 130, "tracesieve: interrupted\n"),  # Ctrl-C, which the terminal sends its whole process group
        (15, False, 143, ""),  # kill PID
        (1, True, 129, ""),  # the terminal closed
    ],
)
def test_a_simulation_of_processes_stopped_stops_at_once_and_leaves_nothing_running(signum, whole_group, code, said):
    """Regression: Ctrl-C during `simulate --processes` printed a traceback from
    each service process and took 20 to 40 s to exit, the pool sending every
    request still queued; Redis, in the terminal's process group too, stopped
    under the services; and `kill PID` left Redis and the services running.
    Now each ends the command within a second or two, everything it started
    stopped."""
    import os
    import signal
    import subprocess
    import time

    # A session of its own, whose process group the "terminal" interrupts whole.
    # As an interactive shell starts a command: Ctrl-C not ignored (a background job's is).
    shell = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    command = subprocess.Popen(
        [sys.executable, "-c", shell, "-m", "tracesieve", "simulate", "--processes", "--requests", "20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_descendants(command.pid)) < 4 and time.monotonic() < deadline:  # redis-server and three services
            time.sleep(0.1)
        started = _descendants(command.pid)
        assert len(started) >= 4, "the simulation's processes started"
        time.sleep(1.0)  # requests under way
        if whole_group:
            os.killpg(command.pid, signum)
        else:
            os.kill(command.pid, signum)
        interrupted = time.monotonic()
        _, err = command.communicate(timeout=60)
        assert time.monotonic() - interrupted < 15
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
            command.wait()
    assert command.returncode == code
    assert err == said, err
    time.sleep(0.5)
    assert not [pid for pid in started if Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)], "nothing left running"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"
