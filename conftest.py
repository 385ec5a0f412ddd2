"""Fixtures every test and benchmark gets: nothing they make lands in the
user's state directory or in /tmp."""

import tempfile

import pytest


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory, monkeypatch):
    """Each test's budgets keep their default record in a state directory of
    their own (never the user's), inherited by the processes a test starts."""
    directory = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", str(directory))
    return directory


@pytest.fixture(autouse=True)
def private_temp_dir(tmp_path_factory, monkeypatch):
    """A test's temporary files (its own, those of the docs' examples it runs
    and of the processes it starts) go in a directory of its own that pytest
    removes with its older runs, so the suite leaves nothing in /tmp."""
    directory = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory
