"""The tracesieve command: scenarios at reduced scale against the quality
targets, comparisons, check/explain/bench, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracesieve.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_json(capsys, *args) -> dict:
    assert main(["simulate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_traffic_estimates_completeness_and_conservation(capsys):
    data = run_json(capsys, "traffic", "--requests", "40000", "--compare", "naive")
    ours, naive = data["results"]
    assert ours["spans_total"] == 3 * 40_000
    for result in (ours, naive):
        by_endpoint = result["by_endpoint"]
        assert sum(c["requests"] for c in by_endpoint.values()) == 40_000
        assert result["spans_kept"] <= result["spans_total"]
    qualified = {k: c for k, c in ours["by_endpoint"].items() if c["kept_by_probability"] >= 1000}
    assert len(qualified) >= 2
    for endpoint, cells in qualified.items():
        assert abs(cells["error"]) <= 0.05, (endpoint, cells)
    assert ours["error_traces_whole"] == ours["error_traces"]
    assert ours["traces_complete"] == ours["traces_seen"]
    assert naive["traces_complete"] < 0.5 * naive["traces_seen"], "the seed's per-service draws break traces"


def test_error_storm_keeps_every_error_trace_whole_and_boosts(capsys):
    data = run_json(capsys, "errors", "--requests", "8000")
    ours = data["results"][0]
    assert ours["error_traces"] > 500
    assert ours["error_traces_whole"] == ours["error_traces"]
    assert max(b for _, b in ours["boost"]) >= 2.0


def test_month_at_ten_times_the_budget_is_never_blind(capsys):
    # The default scale (60,000 requests, a 6,000-span budget: 8 spans an hour).
    data = run_json(capsys, "month")
    ours = data["results"][0]
    assert ours["blind_hours"] == 0
    assert 0.95 <= ours["budget"]["used_spans"] / ours["budget"]["budget_spans"] <= 1.0
    assert ours["traces_complete"] == ours["traces_seen"]
    assert ours["error_traces_whole"] == ours["error_traces"]


def test_spike_scenario_and_terminal_report(capsys):
    assert main(["simulate", "spike", "--requests", "6000"]) == 0
    out = capsys.readouterr().out
    assert "tracesieve simulate spike" in out
    assert "blind hours (demand but nothing kept): 0 of 24" in out
    assert "error traces kept whole" in out and "decision cost" in out


def test_charts_or_a_clear_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["simulate", "errors", "--requests", "800", "--out", str(tmp_path)]) == 2
    assert "charts need the plot extra: pip install 'tracesieve[plot]'" in capsys.readouterr().err


def test_charts_are_written_with_matplotlib(tmp_path, capsys):
    assert main(["simulate", "month", "--requests", "3000", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["month-boost.png", "month-budget.png", "month-kept.png"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["simulate", "weekend"], "unknown scenario 'weekend'; expected one of traffic, errors, month, spike"),
        (["simulate", "traffic", "--requests", "0"], "--requests: 0 is not positive"),
        (["simulate", "traffic", "--requests", "many"], "argument --requests: invalid int value: 'many'"),
        (["simulate", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["simulate", "traffic", "--config", "/nonexistent/sampling.toml"], "no such file"),
        (["check", "/nonexistent/sampling.toml"], "no such file"),
        (["explain", str(EXAMPLES / "seed_pipeline.toml"), "--name", "x", "--attr", "novalue"], "--attr: 'novalue' is not KEY=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_config_file_is_reported(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules]\ndefault_rate = 2\nrules = []\n")
    assert main(["simulate", "traffic", "--config", str(bad)]) == 2
    assert "bad.toml: rules.default_rate: 2 is out of range" in capsys.readouterr().err


def test_check_prints_the_policy_in_plain_words(capsys):
    assert main(["check", str(EXAMPLES / "seed_pipeline.toml")]) == 0
    out = capsys.readouterr().out
    assert "valid (PipelineSampler{force_keep,adaptive,rules,budget})" in out
    assert "payment: business.event is 'payment'" in out
    assert "high-value: payment.amount is above 1000" in out
    assert "more than 5 errors in 300 s gives x2.0" in out
    assert "budget: 50,000 spans per month (Asia/Seoul)" in out


def test_explain_names_the_rule_and_probability(capsys):
    config = str(EXAMPLES / "seed_pipeline.toml")
    assert main(["explain", config, "--name", "GET", "--attr", "http.route=/api/order", "--attr", "user.tier=free", "--at", "2026-01-15T12:00:00+09:00"]) == 0
    out = capsys.readouterr().out
    assert "rule 'order-api' (route '/api/order'): probability 0.225" in out
    assert main(["explain", config, "--name", "POST", "--attr", "payment.amount=5000"]) == 0
    assert "force_keep rule 'high-value' keeps it" in capsys.readouterr().out
    assert main(["explain", config, "--name", "GET", "--attr", "http.route=/x", "--child"]) == 0
    assert "follows the parent's decision" in capsys.readouterr().out


def test_bench_prints_ratios(capsys):
    assert main(["bench", "--calls", "2000"]) == 0
    out = capsys.readouterr().out
    assert "tracesieve ProbabilitySampler(0.1)" in out and "pytest benches --benchmark-only" in out


def test_console_script_and_module_entry_points():
    for command in (["tracesieve", "check", str(EXAMPLES / "api_pipeline.yaml")], [sys.executable, "-m", "tracesieve", "check", str(EXAMPLES / "api_pipeline.yaml")]):
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "valid (PipelineSampler{adaptive,rules})" in out.stdout
