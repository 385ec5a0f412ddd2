"""What a newcomer meets first: every example file explained, help that
matches the docs, charts with lines in them, and messages that say what was
meant (a typo's likely intent, a JSON trailing comma, a YAML tab, a missing
Redis client, the strategy in force when a remote source fails)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

from tracesieve import ConfigError, JaegerRemoteSampler, RuleSampler, from_config
from tracesieve.cli import _parser, main

from helpers import EXAMPLES, ROOT

CONFIGS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".json", ".toml", ".yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_explain_reads_every_example_file_check_accepts(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(config)]) == 0
    capsys.readouterr()
    assert main(["explain", str(config), "--name", "GET", "--attr", "http.route=/api/order"]) == 0
    out = capsys.readouterr().out
    assert "kept with probability" in out or "always kept" in out or "follows the parent" in out, out


def test_explain_of_a_rules_file_agrees_with_its_rule_sampler(capsys: pytest.CaptureFixture[str]) -> None:
    rules = EXAMPLES / "example_rules.json"
    expected = RuleSampler.from_file(rules).explain("GET", {"http.route": "/api/payment", "user.tier": "premium"}, now=1768446000.0)
    assert (
        main(
            [
                "explain",
                str(rules),
                "--name",
                "GET",
                "--attr",
                "http.route=/api/payment",
                "--attr",
                "user.tier=premium",
                "--at",
                "2026-01-15T12:00:00+09:00",
            ]
        )
        == 0
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"so: kept with probability {expected['probability']:.4g}, th:{expected['th']} ")


def test_the_explain_output_in_the_docs_is_what_explain_prints(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)  # a reader's shell, which names no service
    page = (ROOT / "docs" / "command-line.md").read_text(encoding="utf-8")
    command = next(line for line in page.splitlines() if line.startswith("tracesieve explain "))
    shown = page.split(command, 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    argv = [word.replace("examples/", f"{EXAMPLES}/") for word in command.split()[1:]]
    assert main(argv) == 0
    assert capsys.readouterr().out == shown


def _documented_options() -> Dict[str, Set[str]]:
    """Each command in docs/command-line.md's table and the options its row names."""
    page = (ROOT / "docs" / "command-line.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `tracesieve (\w+)([^`]*)` \|", page, flags=re.MULTILINE)
    return {command: set(re.findall(r"--[\w-]+", usage)) for command, usage in rows}


def _parser_options() -> Dict[str, Set[str]]:
    parser = _parser()
    (commands,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return {
        name: {o for action in sub._actions for o in action.option_strings if o.startswith("--") and o != "--help"}
        for name, sub in commands.choices.items()  # type: ignore[attr-defined]
    }


def test_help_and_the_docs_name_the_same_commands_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    documented, actual = _documented_options(), _parser_options()
    assert documented == actual
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    for command in actual:
        assert command in top.split("positional arguments")[0], command
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown = capsys.readouterr().out
        assert "``" not in shown, f"{command} --help shows raw reStructuredText"
        # Every argument has a help text: no bare "  config" line under positional arguments.
        positional = shown.split("positional arguments:", 1)[-1].split("options:", 1)[0] if "positional arguments:" in shown else ""
        for line in positional.splitlines()[1:]:
            assert not re.fullmatch(r"  \S+", line), f"{command} --help: {line.strip()!r} has no help"


def test_every_argument_of_every_command_has_a_help_text() -> None:
    parser = _parser()
    (commands,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name, sub in commands.choices.items():  # type: ignore[attr-defined]
        for action in sub._actions:
            assert action.help, f"{name}: {action.dest} has no help"


def test_a_bad_demo_rate_is_one_line_like_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rate", "2"]) == 2
    err = capsys.readouterr().err
    assert err == "tracesieve: error: --rate: 2.0 is out of range; expected a number in [0, 1]\n"


def test_short_runs_draw_their_charts_per_minute_with_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracesieve.cli import report

    drawn: List[List[int]] = []
    save = report._save

    def recording_save(plt, fig, title, path):  # type: ignore[no-untyped-def]
        if "against demand" in title:
            drawn.extend([len(line.get_xdata()) for line in axes.get_lines()] for axes in fig.axes)
            labels = [axes.get_xlabel() for axes in fig.axes]
            assert any("minutes" in label for label in labels), labels
        return save(plt, fig, title, path)

    monkeypatch.setattr(report, "_save", recording_save)
    assert main(["simulate", "traffic", "--requests", "2000", "--approaches", "shared", "--out", str(tmp_path)]) == 0
    assert drawn and all(points >= 30 for lines in drawn for points in lines), drawn
    assert (tmp_path / "traffic-kept.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "document,expected",
    [
        ("[rules]\ndefualt_rate = 0.1\nrules = []\n", '("defualt_rate" is there: did you mean "default_rate"?)'),
        (
            '[rules]\ndefault_rate = 0.1\nrules = [{ name = "a", route = "/x", rtae = 0.5 }]\n',
            'rules.rules[0].rtae: unknown field (did you mean "rate"?)',
        ),
        ("[budget]\nbugdet = 100\n", '("bugdet" is there: did you mean "budget"?)'),
    ],
)
def test_a_typo_in_a_required_key_says_what_was_meant(tmp_path: Path, document: str, expected: str) -> None:
    path = tmp_path / "sampling.toml"
    path.write_text(document)
    with pytest.raises(ConfigError) as error:
        from_config(path)
    assert expected in str(error.value)


def test_a_typo_in_a_rules_file_says_what_was_meant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"defualt_rate": 0.1, "rules": []}')
    assert main(["check", str(path)]) == 2
    assert "defualt_rate: unknown key (did you mean 'default_rate'?)" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="did you mean 'default_rate'"):
        RuleSampler.from_file(path)


@pytest.mark.parametrize(
    "name,text,hint",
    [
        ("trailing.json", '{"rules": [{"name": "a", "route": "/x", "rate": 0.5},], "default_rate": 0.1}', "a trailing comma"),
        ("trailing.json", '{"default_rate": 0.1,\n}', "a trailing comma"),
        ("tabs.yaml", "rules:\n\t- name: a\ndefault_rate: 0.1\n", "YAML indents with spaces only"),
    ],
)
def test_syntax_errors_name_the_usual_cause(tmp_path: Path, name: str, text: str, hint: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=hint):
        RuleSampler.from_file(path)


def test_a_plain_json_error_gets_no_trailing_comma_hint(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"default_rate": 0.1 "rules": []}')
    with pytest.raises(ConfigError) as error:
        RuleSampler.from_file(path)
    assert "trailing comma" not in str(error.value)


def test_check_says_a_redis_store_needs_the_client(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('store = "redis://127.0.0.1:1/0#checkout"\n[probability]\nrate = 0.1\n[budget]\nbudget = 1000000\n')
    code = f"import sys; sys.modules['redis'] = None\nfrom tracesieve.cli import main\nsys.exit(main(['check', {str(path)!r}]))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout
    assert "install it with pip install 'tracesieve[redis]'" in done.stderr
    assert "valid" not in done.stdout


def test_a_refused_remote_source_names_the_strategy_in_force(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tracesieve"):
        sampler = JaegerRemoteSampler("checkout", endpoint="http://127.0.0.1:9", polling_interval=60, timeout=0.5)
        try:
            assert sampler.poller is not None
            sampler.poller.poll()
        finally:
            sampler.shutdown()
    warnings = [r.getMessage() for r in caplog.records if "cannot use the sampling strategy" in r.getMessage()]
    assert warnings and "the strategy in force, initial probabilistic 0.001" in warnings[0], warnings
