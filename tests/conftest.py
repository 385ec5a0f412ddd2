"""Fixtures for the test suite (plain helpers live in helpers.py)."""

from helpers import provider_factory  # noqa: F401  (fixture re-export)
