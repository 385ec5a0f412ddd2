"""Fixtures for the test suite (plain helpers live in helpers.py)."""

from typing import Iterator

import pytest

from tracesieve.local_redis import RedisServer

from helpers import provider_factory  # noqa: F401  (fixture re-export)


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory, monkeypatch):
    """Each test's budgets keep their default record in a state directory of
    their own (never the user's), inherited by the processes a test starts."""
    directory = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", str(directory))
    return directory


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, stopped by pid afterwards."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
