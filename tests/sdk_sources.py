"""The installed OpenTelemetry SDK's own tests, from its source distribution on
PyPI (fetched once, checked against PyPI's sha256, cached), so our samplers
can be run through them with one import changed. Nothing of theirs is kept in
this repository."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict

PACKAGE = "opentelemetry-sdk"


def _cache() -> Path:
    return Path(os.environ.get("TRACESIEVE_TEST_CACHE", Path.home() / ".cache" / "tracesieve-tests"))


def sdk_tests() -> Path:
    """The ``tests`` folder of the installed SDK's source distribution."""
    version = importlib.metadata.version(PACKAGE)
    target = _cache() / f"{PACKAGE}-{version}"
    if (target / "tests").is_dir():
        return target / "tests"
    # PyPI's simple index (PEP 691, JSON): every file of the project with its sha256.
    request = urllib.request.Request(f"https://pypi.org/simple/{PACKAGE}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    names = {f"{PACKAGE.replace('-', '_')}-{version}.tar.gz", f"{PACKAGE}-{version}.tar.gz"}
    sdist = next(f for f in files if f["filename"] in names)
    with urllib.request.urlopen(sdist["url"], timeout=120) as response:
        payload = response.read()
    if hashlib.sha256(payload).hexdigest() != sdist["hashes"]["sha256"]:
        raise RuntimeError(f"{sdist['url']}: sha256 does not match PyPI's")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        members = [m for m in archive.getmembers() if "/tests/" in m.name and m.isfile()]
        archive.extractall(staging, members=members, filter="data")
    (root,) = staging.iterdir()
    try:
        os.rename(root, target)  # atomic: a concurrent run sees all or nothing
    except OSError:
        if not (target / "tests").is_dir():
            raise
    shutil.rmtree(staging, ignore_errors=True)
    return target / "tests"


#: Seeds ``random`` (the SDK's RandomIdGenerator) before each test: some SDK
#: tests count keeps over random trace ids with bounds of about one standard
#: deviation, so they fail a third of the time, for the SDK too.
SEEDED = """
import random

import pytest


@pytest.fixture(autouse=True)
def _seeded_trace_ids():
    random.seed({seed})
"""


def run_rewritten(files: Dict[str, str], replacements: Dict[str, str], tmp_path: Path, seed: int = 4) -> subprocess.CompletedProcess:
    """Copy SDK test files (name -> path under ``tests``) into ``tmp_path`` with
    each ``replacements`` key replaced by its value, and run pytest on them in
    a fresh interpreter, ``random`` seeded before each test. Returns the
    finished process (``-rA`` report)."""
    source = sdk_tests()
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "conftest.py").write_text(SEEDED.format(seed=seed), encoding="utf-8")
    for name, relative in files.items():
        text = (source / relative).read_text(encoding="utf-8")
        for old, new in replacements.items():
            text = re.sub(old, new, text)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )


def outcomes(report: str) -> Dict[str, str]:
    """Test id -> PASSED / FAILED / ERROR, from a ``-rA`` summary."""
    found: Dict[str, str] = {}
    for line in report.splitlines():
        match = re.match(r"^(PASSED|FAILED|ERROR) (\S+)", line)
        if match:
            found[match.group(2).split("::", 1)[-1]] = match.group(1)
    return found
