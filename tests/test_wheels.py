"""The wheels and the sdist, as a user gets them: built by ``.ci/build-wheels``,
installed into fresh virtual environments (the wheels with no Rust toolchain
on PATH), and used there: a sampler in a TracerProvider, a configuration file
through ``from_config``, and ``tracesieve simulate``."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
# Building five wheels from a cold target folder takes minutes, not the suite's default 300 s.
pytestmark = pytest.mark.timeout(1500)

SMOKE = r"""
import pathlib, sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracesieve
from tracesieve import ProbabilitySampler, from_config

assert pathlib.Path(tracesieve.__file__).resolve().is_relative_to(pathlib.Path(sys.prefix).resolve()), tracesieve.__file__
exporter = InMemorySpanExporter()
provider = TracerProvider(sampler=ProbabilitySampler(0.5))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("smoke")
for i in range(2000):
    with tracer.start_as_current_span("GET /", attributes={"i": i}):
        pass
kept = exporter.get_finished_spans()
assert 800 < len(kept) < 1200, len(kept)
assert all(span.context.trace_state.get("ot") == "th:8" for span in kept)

config = pathlib.Path.cwd() / "rules.toml"  # the test's own folder
config.write_text('[rules]\ndefault_rate = 0.1\nrules = [{ name = "checkout", route = "/checkout", rate = 1.0 }]\n')
sampler = from_config(str(config))
walk = sampler.explain("POST", {"http.route": "/checkout"})
assert walk["probability"] == 1.0, walk
print("smoke ok", sys.version.split()[0], tracesieve.__file__)
"""


#: The oldest SDK tracesieve supports (pyproject's lower bound): its samplers decide
#: as that SDK's own, and its processors and provider run in it.
OLDEST_SDK = "1.30.0"

OLD_SDK = r"""
import random, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import StatusCode
from opentelemetry.version import __version__ as sdk_version
import tracesieve
from tracesieve import BudgetSampler, TailSamplingProcessor, TraceIdRatioSampler

ours, sdks = TraceIdRatioSampler(0.25), ParentBased(TraceIdRatioBased(0.25))
rng = random.Random(3)
for _ in range(5000):
    trace_id = rng.getrandbits(128) or 1
    assert ours.should_sample(None, trace_id, "x").decision == sdks.should_sample(None, trace_id, "x").decision

exporter = InMemorySpanExporter()
# 10**12, not 10**9: a budget eases its pace off as a start's burst above the line fills, so 200 spans in
# a tenth of a second against 10**9 a month ran at about 0.9999 and lost a span in about 1 run of 70 (pacing.md).
provider = TracerProvider(sampler=BudgetSampler(1.0, budget=10**12))
provider.add_span_processor(TailSamplingProcessor(exporter, decision_wait=0.05))
tracer = provider.get_tracer("old")
for i in range(200):
    with tracer.start_as_current_span("GET /") as span:
        if i % 50 == 0:
            span.set_status(StatusCode.ERROR)
assert provider.force_flush(10_000)
assert len(exporter.get_finished_spans()) == 200, len(exporter.get_finished_spans())
provider.shutdown()

exporter = InMemorySpanExporter()
native = tracesieve.TracerProvider(sampler=tracesieve.ProbabilitySampler(1.0))
native.add_span_processor(SimpleSpanProcessor(exporter))
with native.get_tracer("old").start_as_current_span("GET /", attributes={"a": 1}):
    pass
assert native.force_flush()
assert [(s.name, dict(s.attributes)) for s in exporter.get_finished_spans()] == [("GET /", {"a": 1})]
native.shutdown()
print("old sdk ok", sdk_version)
"""


def _interpreters() -> Dict[str, str]:
    spec = importlib.util.spec_from_loader(
        "build_wheels", importlib.machinery.SourceFileLoader("build_wheels", str(ROOT / ".ci" / "build-wheels"))
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.interpreters()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    out = tmp_path_factory.mktemp("dist")
    # The repository's own target folder: dependencies compiled once are reused.
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")}
    subprocess.run([sys.executable, str(ROOT / ".ci" / "build-wheels"), str(out)], cwd=ROOT, env=env, check=True, timeout=1200)
    return sorted(out.iterdir())


def _without_rust() -> str:
    """A PATH with no cargo or rustc on it."""
    keep = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "cargo").exists() and not (Path(d) / "rustc").exists()
    ]
    path = os.pathsep.join(keep)
    assert shutil.which("cargo", path=path) is None and shutil.which("rustc", path=path) is None
    return path


def _venv(interpreter: str, where: Path, path: str) -> Path:
    subprocess.run([interpreter, "-m", "venv", str(where)], check=True, timeout=300, env={**os.environ, "PATH": path})
    return where / "bin"


def _smoke(bin_dir: Path, path: str, cwd: Path) -> str:
    env = {"PATH": f"{bin_dir}{os.pathsep}{path}", "HOME": os.environ.get("HOME", "/root"), "TRACESIEVE_STATE_DIR": str(cwd / "state")}
    answer = subprocess.run([str(bin_dir / "python"), "-c", SMOKE], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr
    simulate = subprocess.run(
        [str(bin_dir / "tracesieve"), "simulate", "--requests", "500"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert simulate.returncode == 0, simulate.stderr
    assert "500" in simulate.stdout
    return answer.stdout


def test_one_manylinux2014_wheel_per_local_cpython_and_an_sdist(built: List[Path]) -> None:
    found = _interpreters()
    assert "3.11" in found, found  # the one this suite runs on, at least
    wheels = [p for p in built if p.suffix == ".whl"]
    tags = sorted(re.search(r"-(cp3\d+)-cp3\d+-", p.name).group(1) for p in wheels)  # type: ignore[union-attr]
    assert tags == sorted(f"cp{v.replace('.', '')}" for v in found)
    assert all("manylinux2014_x86_64" in p.name for p in wheels), [p.name for p in wheels]
    assert [p.name for p in built if p.name.endswith(".tar.gz")] == ["tracesieve-0.1.0.tar.gz"]
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            (module,) = [n for n in archive.namelist() if n.startswith("tracesieve/_core") and n.endswith(".so")]
            binary = archive.read(module)
            names = set(archive.namelist())
        # Honest tag: no glibc symbol newer than manylinux2014's glibc 2.17.
        versions = {tuple(int(x) for x in v.split(b".")) for v in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)", binary)}
        assert versions and max(versions) <= (2, 17), (wheel.name, max(versions))
        assert {"tracesieve/__init__.py", "tracesieve/py.typed", "tracesieve/_core.pyi"} <= names
        # Apache-2.0 asks that whoever receives the work receives the license with it.
        assert "tracesieve-0.1.0.dist-info/licenses/LICENSE" in names, wheel.name
    (sdist,) = [p for p in built if p.name.endswith(".tar.gz")]
    with tarfile.open(sdist) as archive:
        assert "tracesieve-0.1.0/LICENSE" in archive.getnames()


def test_each_wheel_installs_and_works_without_rust(built: List[Path], tmp_path: Path) -> None:
    path = _without_rust()
    for version, interpreter in _interpreters().items():
        tag = f"cp{version.replace('.', '')}"
        (wheel,) = [p for p in built if f"-{tag}-{tag}-" in p.name]
        bin_dir = _venv(interpreter, tmp_path / tag, path)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{path}"}
        subprocess.run([str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)], check=True, env=env, timeout=600)
        assert f"smoke ok {version}" in _smoke(bin_dir, path, tmp_path)


def test_the_wheel_works_with_the_oldest_sdk_it_supports(built: List[Path], tmp_path: Path) -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lower = OLDEST_SDK.rsplit(".", 1)[0]
    assert f"opentelemetry-sdk>={lower},<2" in dependencies and f"opentelemetry-api>={lower},<2" in dependencies, dependencies
    path = _without_rust()
    (wheel,) = [p for p in built if "-cp311-cp311-" in p.name]
    bin_dir = _venv(sys.executable, tmp_path / "oldest-sdk", path)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{path}"}
    pins = [f"opentelemetry-sdk=={OLDEST_SDK}", f"opentelemetry-api=={OLDEST_SDK}"]
    subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel), *pins], check=True, env=env, timeout=600
    )
    assert "smoke ok" in _smoke(bin_dir, path, tmp_path)
    env = {"PATH": env["PATH"], "HOME": os.environ.get("HOME", "/root"), "TRACESIEVE_STATE_DIR": str(tmp_path / "state")}
    answer = subprocess.run([str(bin_dir / "python"), "-c", OLD_SDK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr
    assert f"old sdk ok {OLDEST_SDK}" in answer.stdout


def test_the_sdist_builds_and_installs_with_rust(built: List[Path], tmp_path: Path) -> None:
    (sdist,) = [p for p in built if p.name.endswith(".tar.gz")]
    bin_dir = _venv(sys.executable, tmp_path / "from-sdist", os.environ["PATH"])
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target"), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", str(sdist)], check=True, env=env, timeout=1200)
    assert "smoke ok" in _smoke(bin_dir, os.environ["PATH"], tmp_path)
