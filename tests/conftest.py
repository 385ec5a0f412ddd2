"""Fixtures for the test suite (plain helpers live in helpers.py)."""

from typing import Iterator

import pytest

from tracesieve.local_redis import RedisServer

from helpers import provider_factory  # noqa: F401  (fixture re-export)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, stopped by pid afterwards."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
