"""tracesieve check and explain: the compiled plan in plain words, and the walk
of one span through it."""

from __future__ import annotations

from tracesieve.cli import main

from helpers import EXAMPLES


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
    assert (
        main(
            [
                "explain",
                config,
                "--name",
                "GET",
                "--attr",
                "http.route=/api/order",
                "--attr",
                "user.tier=free",
                "--at",
                "2026-01-15T12:00:00+09:00",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "rule 'order-api' (route '/api/order'): probability 0.225" in out
    assert main(["explain", config, "--name", "POST", "--attr", "payment.amount=5000"]) == 0
    assert "force_keep rule 'high-value' keeps it" in capsys.readouterr().out
    assert main(["explain", config, "--name", "GET", "--attr", "http.route=/x", "--child"]) == 0
    assert "follows the parent's decision" in capsys.readouterr().out
