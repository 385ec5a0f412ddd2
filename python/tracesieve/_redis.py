"""A Redis client for a ``redis://`` URL, for the fleet worker and the shared
tail decisions: the password comes from the URL or else from
``TRACESIEVE_REDIS_PASSWORD``, and is scrubbed from anything logged."""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple

__all__ = ["PASSWORD_VARIABLE", "connect", "scrub"]

#: Read for the password when a ``redis://`` URL gives none.
PASSWORD_VARIABLE = "TRACESIEVE_REDIS_PASSWORD"


def connect(url: str, **options: Any) -> Tuple[Any, Optional[str]]:
    """(a redis-py client for ``url`` with ``options``, the password it uses)."""
    import redis

    client = redis.Redis.from_url(url, **options)
    password = client.connection_pool.connection_kwargs.get("password")
    if password is None and os.environ.get(PASSWORD_VARIABLE):
        password = os.environ[PASSWORD_VARIABLE]
        client = redis.Redis.from_url(url, password=password, **options)
    return client, password


def scrub(text: str, secret: Optional[str]) -> str:
    """``text`` with ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text
