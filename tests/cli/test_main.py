"""The tracesieve command as a whole: bad input is one line and exit code 2,
the console script and ``python -m`` work, bench prints ratios."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tracesieve.cli import main

from helpers import EXAMPLES


@pytest.mark.parametrize(
    "argv,message",
    [
        (["simulate", "weekend"], "unknown scenario 'weekend'; expected one of traffic, errors, month, spike"),
        (["simulate", "traffic", "--requests", "0"], "--requests: 0 is not positive"),
        (["simulate", "traffic", "--requests", "many"], "argument --requests: invalid int value: 'many'"),
        # A typo of a few digits filled memory at 200 MB a second until the system killed something.
        (["simulate", "traffic", "--requests", "99999999999"], "--requests: 99,999,999,999 is more than one simulation holds in memory"),
        (["simulate", "--processes", "--requests", "1000001"], "expected at most 1,000,000, such as 1000"),
        # The same typo ran bench and demo for ever, and filled memory with ids or kept spans.
        (["bench", "--calls", "99999999999999999999"], "--calls: 99,999,999,999,999,999,999 is more than a quick timing needs"),
        (["demo", "--traces", "100001"], "--traces: 100,001 is more than the demo holds in memory"),
        # Found only after the whole run, when the charts were written.
        (["simulate", "traffic", "--out", "/etc/passwd"], "--out: /etc/passwd is not a directory"),
        (["simulate", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["simulate", "traffic", "--config", "/nonexistent/sampling.toml"], "no such file"),
        (["check", "/nonexistent/sampling.toml"], "no such file"),
        (["explain", str(EXAMPLES / "example_pipeline.toml"), "--name", "x", "--attr", "novalue"], "--attr: 'novalue' is not KEY=VALUE"),
        (["simulate", "--approaches", "shared,bogus"], "--approaches: 'shared,bogus': no approach 'bogus'; expected some of shared, tail"),
        (["simulate", "--approaches", ","], "--approaches: ',': names no approach; expected some of"),
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


def test_bench_prints_ratios(capsys):
    assert main(["bench", "--calls", "2000"]) == 0
    out = capsys.readouterr().out
    assert "tracesieve ProbabilitySampler(0.1)" in out and "pytest benches --benchmark-only" in out


def test_console_script_and_module_entry_points():
    for command in (
        ["tracesieve", "check", str(EXAMPLES / "api_pipeline.yaml")],
        [sys.executable, "-m", "tracesieve", "check", str(EXAMPLES / "api_pipeline.yaml")],
    ):
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "valid pipeline (PipelineSampler{adaptive,rules})" in out.stdout


@pytest.mark.parametrize("command", [[], ["simulate"], ["check"], ["explain"], ["records"], ["bench"], ["demo"]])
def test_every_command_has_working_help(command, capsys):
    """Regression: `tracesieve simulate --help` exited 2 with "must be real
    number, not dict" (an unescaped % in the help text)."""
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "Traceback" not in out


def test_version_names_tracesieve_the_sdk_and_python(capsys):
    """`tracesieve --version` was taken for simulate's arguments and refused."""
    import platform
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == (
        f"tracesieve {version('tracesieve')} (opentelemetry-sdk {version('opentelemetry-sdk')}, "
        f"{platform.python_implementation()} {platform.python_version()})\n"
    )


@pytest.mark.timeout(20)
def test_charts_without_matplotlib_are_refused_before_the_simulation(capsys, monkeypatch):
    """Regression: --out without matplotlib ran the whole simulation first."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["simulate", "month", "--requests", "1000000", "--out", "/tmp/nowhere"]) == 2
    assert "charts need the plot extra" in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """Regression: `tracesieve demo | head -1` printed "tracesieve: error: [Errno 32] Broken
    pipe" and exited 2."""
    command = [sys.executable, "-m", "tracesieve", "demo", "--traces", "5000"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as demo:
        assert demo.stdout is not None and demo.stderr is not None
        assert demo.stdout.readline()
        demo.stdout.close()
        assert demo.wait(timeout=120) == 141
        assert demo.stderr.read() == b""


def test_a_broken_pipe_that_is_not_standard_output_is_an_error(capsys, monkeypatch):
    from tracesieve.cli import check

    def fails(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(check, "run", fails)
    assert main(["check", str(EXAMPLES / "api_pipeline.yaml")]) == 2
    assert capsys.readouterr().err == "tracesieve: error: [Errno 32] Broken pipe\n"
