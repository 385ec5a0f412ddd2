"""The package as users and maintainers see it: typed, layered (the library
imports neither the command line nor the references, and importing it loads
nothing only the command line needs), free of import cycles in Python and in
the binding layer, with a Rust core that knows nothing of Python, and one
error type for every configuration mistake. The Python layers themselves are
checked by import-linter in the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tracesieve
from tracesieve import (
    AdaptiveSampler,
    BudgetSampler,
    ConfigError,
    DedupSpanExporter,
    ErrorWindowProcessor,
    ProbabilitySampler,
    RetryingSpanExporter,
    RuleSampler,
    TailSamplingProcessor,
    TraceIdRatioSampler,
    from_config,
)

from helpers import ROOT


def test_the_package_is_typed():
    assert Path(tracesieve.__file__).with_name("py.typed").exists()
    assert Path(tracesieve.__file__).with_name("_core.pyi").exists()


def test_importing_the_library_loads_neither_the_command_line_nor_the_references():
    code = (
        "import sys, tracesieve; "
        "bad = [m for m in sys.modules if m.startswith(('tracesieve.cli', 'tracesieve.reference')) "
        "or m in ('tqdm', 'argparse', 'matplotlib')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_rust_core_knows_nothing_of_python():
    core = [p for p in (ROOT / "rust").rglob("*.rs") if "python" not in p.relative_to(ROOT / "rust").parts]
    assert core
    for path in core:
        assert "pyo3" not in path.read_text(encoding="utf-8"), path


def _binding_modules():
    """Each module of rust/python (a file, or a folder with its files) and the siblings it uses."""
    base = ROOT / "rust" / "python"
    modules = {p.stem: [p] for p in base.glob("*.rs") if p.stem != "mod"}
    modules.update({d.name: list(d.rglob("*.rs")) for d in base.iterdir() if d.is_dir()})
    uses = {}
    for name, files in modules.items():
        text = "\n".join(f.read_text(encoding="utf-8") for f in files)
        found = set(re.findall(r"crate::python::(\w+)", text))
        if len(files) == 1:  # `super::` in a top-level file names a sibling
            found |= set(re.findall(r"\bsuper::(\w+)", text))
        uses[name] = {m for m in found if m in modules and m != name}
    return uses


def test_the_binding_layer_has_no_import_cycles():
    uses = _binding_modules()
    assert "sampler" in uses and "errors" in uses
    state = {}

    def visit(module, path):
        state[module] = "open"
        for used in uses[module]:
            assert state.get(used) != "open", f"cycle: {' -> '.join([*path, used])}"
            if used not in state:
                visit(used, [*path, used])
        state[module] = "done"

    for module in uses:
        if module not in state:
            visit(module, [module])
    assert "sampler" not in uses["signals"], "the error type lives in errors.rs, not in the sampler"


class _Exporter:
    def export(self, spans):
        return None

    def shutdown(self):
        return None


BAD_CONFIGURATIONS = [
    (lambda: ProbabilitySampler(1.5), "rate: 1.5 is out of range"),
    (lambda: ProbabilitySampler("0.1"), "rate: expected a number in [0, 1], got str"),
    (lambda: ProbabilitySampler(0.1, respect_parent="no"), "respect_parent: expected True or False"),
    (lambda: ProbabilitySampler(0.1, precision=13), "precision: 13 is out of range"),
    (lambda: ProbabilitySampler(0.1, defer=1), "defer: expected True or False"),
    (lambda: TraceIdRatioSampler(-1), "rate: -1"),
    (lambda: RuleSampler([{"rate": 0.5, "rout": "/x"}], default_rate=0.1), "rules[0].rout: unknown field"),
    (lambda: RuleSampler([], default_rate=0.1, clock=5), "clock: expected a callable"),
    (lambda: AdaptiveSampler(0.1, error_steps=[(5.7, 2)]), "error_steps[0]: 5.7 is not an error count"),
    (lambda: AdaptiveSampler(0.1, error_steps=[("5", 2)]), 'error_steps[0]: "5" is not an error count'),
    (lambda: AdaptiveSampler(0.1, error_steps=[5]), "error_steps[0]: expected a (count, multiplier) pair"),
    (lambda: AdaptiveSampler(0.1, error_steps=[(5,)]), "error_steps[0]: expected a (count, multiplier) pair"),
    (lambda: AdaptiveSampler("x"), "base: expected a rate"),
    (lambda: ErrorWindowProcessor(window="5m"), "window: expected a number of seconds"),
    (lambda: BudgetSampler(0.5, budget=0), "budget: 0 is not a positive number"),
    (lambda: BudgetSampler(0.5, budget=10, period="fortnight"), 'period: unknown period "fortnight"'),
    (lambda: BudgetSampler(0.5, budget=10, timezone=5), "timezone: expected an IANA zone name"),
    (lambda: TailSamplingProcessor(_Exporter(), max_traces=0), "max_traces: 0 is not a positive whole number"),
    (lambda: TailSamplingProcessor(object()), "exporter: expected a SpanExporter"),
    (lambda: DedupSpanExporter(_Exporter(), window="big"), "window: expected a whole number"),
    (lambda: RetryingSpanExporter(_Exporter(), jitter=-1), "jitter: -1 is out of range"),
    (lambda: from_config({"probability": {"rate": "high"}}), 'probability.rate: expected a number, got the string "high"'),
    (lambda: from_config({"rulez": {}}), "rulez: unknown stage or setting"),
]


@pytest.mark.parametrize("build,message", BAD_CONFIGURATIONS)
def test_every_configuration_mistake_is_one_error_type(build, message):
    with pytest.raises(ConfigError) as raised:
        build()
    assert type(raised.value) is ConfigError
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, TypeError)


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
