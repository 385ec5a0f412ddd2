"""Fixtures for the benchmarks (workloads live in workloads.py)."""

from workloads import clean_heap, mix_10pct  # noqa: F401  (fixture re-exports)
