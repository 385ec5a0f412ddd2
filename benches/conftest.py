"""Fixtures for the benchmarks (workloads live in workloads.py)."""

import pytest

from workloads import clean_heap, mix_10pct  # noqa: F401  (fixture re-exports)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """``--benchmark-only`` asks to measure, so it lifts the suite's ``--benchmark-disable``
    (pyproject's addopts, which lets the test run execute each benchmark once)."""
    if config.getoption("benchmark_only", default=False):
        config.option.benchmark_disable = False
