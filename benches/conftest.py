"""Fixtures for the benchmarks (workloads live in workloads.py)."""

import pytest

from workloads import clean_heap, mix_10pct  # noqa: F401  (fixture re-exports)


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory, monkeypatch):
    """Budgets keep their default record in a state directory of the run's own."""
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", str(tmp_path_factory.mktemp("state")))
