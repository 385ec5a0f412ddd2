"""Every code block in the README and the docs runs, so the docs cannot drift.

Per page, in order, in one namespace and a scratch folder that holds
``examples/`` and ``benches/``:

- ``python`` blocks are executed, except those titled with a file name
  (```` ```python title="app.py" ````): those are written there (and
  compiled) for the page's ``sh`` blocks to run;
- ``pycon`` blocks are checked as doctests (output must match);
- ``toml`` / ``yaml`` / ``json`` blocks are configuration documents: built with
  ``from_config`` (or ``RuleSampler.from_file`` for rules files); a block titled
  with a file name (```` ```toml title="sampling.toml" ````) is also written
  there, so later blocks on the page can load it;
- ``sh`` blocks are run line by line, except the commands listed in
  ``NOT_RUN_HERE`` (installs, the benchmark suite, a user's own app), for which
  what can be checked is checked: the files and extras they name exist;
- a ``text`` block right after an ``sh`` block (no heading between) is what
  the commands print: its lines must appear, in order and together, in their
  output (so an excerpt is fine, a stale figure is not). For the commands in
  ``VARIES`` (random ids, a server's timing) only the words must match, every
  number masked; a command in ``NOT_RUN_HERE`` has its output checked where it
  runs (``benches/pacing.py``: tests/test_pacing.py);
- other ``text`` blocks are shown for reading.

A block without a language, or with another one, fails the test.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python", "pycon", "toml", "yaml", "json", "sh", "text"}

#: Commands the docs show that this test does not run, and why.
NOT_RUN_HERE = {
    "pip install": "installs the package: the quick start is what CI runs (.ci/run)",
    ".ci/build-wheels": "builds every wheel (minutes): tests/test_wheels.py runs it and installs what it builds",
    "cargo build --release": "a release build (minutes), for a measurement: the wheels' test builds the release module",
    "for run in": "the full benchmark suite takes minutes; benches run as tests with --benchmark-disable",
    "benches/fleet.py": "takes about a minute; its month and chain runs are tests (test_fleet_month, test_fleet_chain)",
    "benches/pacing.py": "takes about a minute and a half; tests/test_pacing.py runs every case and checks the table shown",
    "benches/sharing.py": "takes about a minute; its chain run and flood are tests (test_tail_sharing)",
    "benches/retention_memory.py": "takes about a minute; the ring's bound and accounting are tests (test_provider, cargo test ring)",
    "benches/ratios.py": "reads the suite's JSON (tests/test_docs.py checks it on a small file)",
    "opentelemetry-instrument": "runs the user's own app.py (tests/test_entry_points.py runs it on an app of its own)",
    "mkdocs serve": "serves the docs until stopped",
    "gunicorn ": "runs the user's own app under a pre-fork server",
    "OTEL_TRACES_SAMPLER=parentbased_jaeger_remote": "runs the user's own app against a strategy server",
    "tracesieve capture": "announces to the user's own fleet (tests/cli/test_capture.py runs it against a real redis-server)",
}

#: Commands whose output moves from run to run, and why: their output blocks
#: must match word for word with every number masked.
VARIES = {
    "examples/shared_tail_two_services.py": "random trace ids decide the 5% head sample",
    "python try_it.py": "the gunicorn workers draw their own random failures",
}


@dataclass
class Block:
    language: str
    title: str
    code: str
    line: int
    #: How many headings the page has before the block: blocks of one section share it.
    section: int = 0


FENCE = re.compile(r"^```(\S*)(.*)$")


def blocks(page: Path) -> List[Block]:
    found, current, start, section = [], None, 0, 0
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line.strip()) if line.startswith("```") else None
        if current is None and line.startswith("#"):
            section += 1
        if current is None and match:
            title = re.search(r'title="([^"]*)"', match.group(2))
            current, start = Block(match.group(1), title.group(1) if title else "", "", number, section), number
        elif current is not None and line.startswith("```"):
            found.append(current)
            current = None
        elif current is not None:
            current.code += line + "\n"
    assert current is None, f"{page.name}:{start}: an unclosed code block"
    return found


def _run_config(block: Block, where: str, namespace: Dict[str, object]) -> None:
    from tracesieve import RuleSampler, from_config
    from tracesieve.config import POLICY_KEYS, load_config

    name = block.title if re.fullmatch(r"[\w./-]+", block.title or "") else f"block-{block.line}.{block.language}"
    path = Path(name)
    if path.parent != Path("."):
        path = Path(path.name)
    path.write_text(block.code, encoding="utf-8")
    document = load_config(path)
    if set(document) <= set(POLICY_KEYS) and "rules" in document and isinstance(document["rules"], list):
        RuleSampler.from_file(path)
    else:
        sampler = from_config(path)
        getattr(sampler, "close", lambda: None)()


def _check_not_run(command: str, where: str) -> None:
    for word in shlex.split(command.replace(";", " ")):
        if word.startswith(("examples/", "benches/", "docs/")):
            assert (ROOT / word).exists(), f"{where}: {command!r} names {word}, which does not exist"
    for extra in re.findall(r"\.\[(\w+)\]", command):
        assert f"\n{extra} = [" in (ROOT / "pyproject.toml").read_text(), f"{where}: no extra [{extra}] in pyproject.toml"


def _run_shell(block: Block, where: str) -> Optional[str]:
    """Run the block's commands; what they printed, or None when one of them
    is not run here."""
    # Commands run as in a shell that names no service, as a reader's would.
    env = {**{k: v for k, v in os.environ.items() if k != "OTEL_SERVICE_NAME"}, "PYTHONPATH": str(ROOT / "tests")}
    printed: Optional[str] = ""
    for command in block.code.splitlines():
        command = command.split("  #")[0].strip()
        if not command or command.startswith("#"):
            continue
        reason = next((why for prefix, why in NOT_RUN_HERE.items() if prefix in command), None)
        if reason is not None:
            _check_not_run(command, where)
            printed = None
            continue
        if command.startswith("tracesieve "):
            command = f"{shlex.quote(sys.executable)} -m tracesieve {command[len('tracesieve ') :]}"
        elif command.startswith("python "):
            command = f"{shlex.quote(sys.executable)} {command[len('python ') :]}"
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=240, env=env)
        assert done.returncode == 0, f"{where}: {command!r} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        if printed is not None:
            printed += done.stdout
    return printed


def _masked(lines: List[str]) -> List[str]:
    return [" ".join(re.sub(r"\d[\d,.]*", "#", line).split()) for line in lines]


def _check_output(shown: Block, printed: str, commands: str, where: str) -> None:
    """``shown``'s lines appear, in order and together, in ``printed``."""
    expected = [line.rstrip() for line in shown.code.strip("\n").splitlines()]
    actual = [line.rstrip() for line in printed.splitlines()]
    if any(command in commands for command in VARIES):
        expected, actual = _masked(expected), _masked(actual)
    runs = (actual[i : i + len(expected)] for i in range(len(actual) - len(expected) + 1))
    assert expected in runs, f"{where}: the output shown is not what the commands print now:\n" + "\n".join(actual)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_code_block_runs(page, tmp_path, monkeypatch):
    found = blocks(page)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "benches").symlink_to(ROOT / "benches")
    monkeypatch.chdir(tmp_path)
    # The service the pages' budgets keep their host records for (in the test's own state directory).
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    namespace: Dict[str, object] = {"__name__": f"docs_{page.stem}"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    printed: Optional[str] = None
    for previous, block in zip([None, *found], found):
        where = f"{page.relative_to(ROOT)}:{block.line}"
        assert block.language in LANGUAGES, f"{where}: a code block needs one of {sorted(LANGUAGES)}, got {block.language!r}"
        if block.language == "python" and re.fullmatch(r"[\w-]+\.py", block.title):
            compile(block.code, where, "exec")
            Path(block.title).write_text(block.code, encoding="utf-8")
        elif block.language == "python":
            exec(compile(block.code, where, "exec"), namespace)
        elif block.language == "pycon":
            test = doctest.DocTestParser().get_doctest(block.code, namespace, where, str(page), block.line)
            result = runner.run(test, clear_globs=False)
            assert result.failed == 0, f"{where}: doctest failed (see the output above)"
        elif block.language in ("toml", "yaml", "json"):
            _run_config(block, where, namespace)
        elif block.language == "sh":
            printed = _run_shell(block, where)
        elif block.language == "text" and previous is not None and previous.language == "sh" and previous.section == block.section:
            if printed is not None:
                _check_output(block, printed, previous.code, where)


def test_the_readme_stays_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 10 * 1024
    assert readme.count("```sh") == 1, "the quick start is one sh block of exactly two commands"
    quick = next(b for b in blocks(ROOT / "README.md") if b.language == "sh")
    commands = [line for line in quick.code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci, ".ci/run runs the README's second command"
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def test_the_ratio_script_reads_benchmark_json(tmp_path):
    """benches/ratios.py, which the performance page runs on the suite's output."""
    import json

    def bench(group, param, median):
        return {"group": group, "param": param, "stats": {"median": median}}

    data = {"benchmarks": [bench("mix x1000", "sdk TraceIdRatioBased", 1e-3), bench("mix x1000", "ours", 2e-4)]}
    path = tmp_path / "bench-1.json"
    path.write_text(json.dumps(data))
    out = subprocess.run([sys.executable, str(ROOT / "benches" / "ratios.py"), str(path)], capture_output=True, text=True, check=True)
    assert "1000 ns/call" in out.stdout and "0.20x" in out.stdout


#: A benchmark command as the docs and the benches' docstrings give it.
BENCH_COMMAND = re.compile(r"pytest ([^`;|\n]*--benchmark-only[^`;|\n]*)")


def test_every_benchmark_command_given_measures(tmp_path):
    """Each way the pages and docstrings say to measure (README, docs, benches/*.py) runs as
    written on top of pyproject's ``--benchmark-disable``, then benches/ratios.py reads what
    it wrote; one quick benchmark file stands in for the paths, with one round each."""
    sources = [*PAGES, *sorted((ROOT / "benches").glob("*.py"))]
    flag_sets = set()
    for source in sources:
        for arguments in BENCH_COMMAND.findall(source.read_text(encoding="utf-8")):
            flags = [word for word in shlex.split(arguments) if word.startswith("-")]
            for flag in flags:
                # Written where the reader stands: a directory of its own would have to exist.
                assert not flag.startswith("--benchmark-json") or re.fullmatch(r"--benchmark-json=[\w.$-]+", flag), f"{source.name}: {flag}"
            flag_sets.add(tuple("--benchmark-json" if flag.startswith("--benchmark-json") else flag for flag in flags))
    assert ("--benchmark-only",) in flag_sets and len(flag_sets) >= 3, flag_sets
    quick = ["--benchmark-min-rounds=1", "--benchmark-max-time=0", "--benchmark-warmup=off", "-p", "no:cacheprovider"]
    for number, flags in enumerate(sorted(flag_sets)):
        output = tmp_path / f"bench-{number}.json"
        given = [f"--benchmark-json={output}" if flag == "--benchmark-json" else flag for flag in flags]
        command = [sys.executable, "-m", "pytest", "benches/test_budget_speed.py", *given, *quick]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "passed" in run.stdout, f"{shlex.join(command)}\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
        assert "Name (time in" in run.stdout, f"{flags}: nothing was measured"
        if "--benchmark-json" in flags:
            ratios = subprocess.run([sys.executable, "benches/ratios.py", str(output)], cwd=ROOT, capture_output=True, text=True)
            assert ratios.returncode == 0 and "ns/call" in ratios.stdout, ratios.stdout + ratios.stderr
