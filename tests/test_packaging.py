"""The package as users see it: the stub matches the native module, the demo runs."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import tracesieve
from tracesieve import _core

STUB = Path(tracesieve.__file__).with_name("_core.pyi")


def stub_names():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    top, methods = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            top.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            methods[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return top, methods


def test_stub_matches_the_native_module():
    top, methods = stub_names()
    runtime = {name for name in dir(_core) if not name.startswith("_")}
    assert top == runtime
    for cls_name, names in methods.items():
        cls = getattr(_core, cls_name)
        public = {n for n in dir(cls) if not n.startswith("_")}
        assert names - {"__new__"} == public, cls_name
    assert Path(tracesieve.__file__).with_name("py.typed").exists()


def test_stub_signatures_match_for_functions():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            runtime = inspect.signature(getattr(_core, node.name))
            assert [a.arg for a in node.args.args] == list(runtime.parameters), node.name


def test_demo_runs_and_agrees_with_the_sdk():
    out = subprocess.run(
        [sys.executable, "-m", "tracesieve", "demo", "--traces", "2000"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "ProbabilitySampler(0.1)" in out
    assert "kept the same traces: yes" in out


def test_demo_rejects_bad_options():
    proc = subprocess.run([sys.executable, "-m", "tracesieve", "demo", "--traces", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--traces: 0 is not positive" in proc.stderr
