"""A Redis client for a ``redis://`` URL, for the fleet worker and the shared
tail decisions: the password comes from the URL (its userinfo or a query option)
or else from ``TRACESIEVE_REDIS_PASSWORD``. The URL travels wrapped in a
``Secret`` that shows as ``***``, and the password is scrubbed from anything
logged."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Optional, Tuple

from tracesieve._scrub import Secret

__all__ = ["PASSWORD_VARIABLE", "Secret", "check", "connect", "scrub"]

#: Read for the password when a ``redis://`` URL gives none.
PASSWORD_VARIABLE = "TRACESIEVE_REDIS_PASSWORD"


def connect(url: Secret, **options: Any) -> Tuple[Any, Optional[Secret]]:
    """(a redis-py client for ``url`` with ``options``, the password it uses)."""
    import redis

    client = redis.Redis.from_url(url.reveal(), **options)
    password = client.connection_pool.connection_kwargs.get("password")
    if password is None and os.environ.get(PASSWORD_VARIABLE):
        password = os.environ[PASSWORD_VARIABLE]
        client = redis.Redis.from_url(url.reveal(), password=password, **options)
    return client, None if password is None else Secret(password)


def scrub(text: str, secret: Optional[Secret]) -> str:
    """``text`` with ``secret`` replaced by ``***``."""
    return text.replace(secret.reveal(), "***") if secret is not None and secret.reveal() else text


def check(url: Secret, shown: str, field: str) -> None:
    """Refuse at construction a URL whose options the Redis client does not
    take (it would fail in the background thread instead)."""
    from tracesieve._core import ConfigError

    try:
        client, _ = connect(url)
        client.connection_pool.make_connection()  # builds the connection object; connects nothing
    except (TypeError, ValueError) as error:
        message = str(error)
        parts = urllib.parse.urlsplit(url.reveal())
        # Any value of the URL might be the credential: none is shown.
        for value in [parts.password, *(v for _, v in urllib.parse.parse_qsl(parts.query))]:
            if value:
                message = message.replace(value, "***")
        raise ConfigError(f"{field}: the Redis client does not take {shown}: {message}") from None
