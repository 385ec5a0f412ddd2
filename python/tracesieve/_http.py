"""One JSON exchange with a sampling server, bounded in time and size: the
whole exchange (connecting, headers, body) ends at one deadline, the body is
read up to a cap, redirects go to the same origin only, a URL's user info is
sent as Basic credentials, and another thread can end an exchange in flight
at once (a poller being stopped)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Dict, Optional, Tuple

__all__ = ["ExchangeError", "JsonExchange", "failure_text", "origin"]

#: Redirects followed per exchange, each to the same origin (scheme, host and port) only.
MAX_REDIRECTS = 3


class ExchangeError(ValueError):
    """An exchange that failed (the network, the status, a redirect, the size); its text says how."""


def failure_text(error: BaseException) -> str:
    """A failure as a warning shows it: an exchange's own words as they are
    (``ConnectionRefusedError: ...``, ``HTTP 503``), anything else with its type."""
    if isinstance(error, (ExchangeError, TimeoutError)):
        return str(error)
    return f"{type(error).__name__}: {error}"


class JsonExchange:
    """Sends requests and reads JSON answers; ``abort()`` ends the one in flight."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._connection: Optional[http.client.HTTPConnection] = None

    def after_fork(self) -> None:
        self._connection = None

    def abort(self) -> None:
        connection = self._connection
        if connection is not None:
            _abort(connection)

    def json(self, method: str, url: str, deadline: float, timeout: float, body: Optional[Any] = None) -> Any:
        """The parsed answer to ``method url`` (``body`` sent as JSON), by
        ``deadline`` (monotonic seconds; ``timeout`` names it in errors).
        Raises ``TimeoutError`` or ``ExchangeError`` (a ``ValueError``) saying
        what went wrong, or a ``ValueError`` for an answer that is no JSON."""
        payload = None if body is None else json.dumps(body).encode("utf-8")
        target = url
        for _ in range(MAX_REDIRECTS + 1):
            status, location, answer = self._send(method, target, payload, deadline, timeout)
            if status in (301, 302, 303, 307, 308):
                following = urllib.parse.urljoin(target, location or "")
                if origin(following) != origin(url):
                    raise ExchangeError(f"a redirect to another origin ({origin(following)}) is not followed")
                target = following
                continue
            if status != 200:
                raise ExchangeError(f"HTTP {status}")
            return json.loads(answer)
        raise ExchangeError(f"more than {MAX_REDIRECTS} redirects")

    def _send(self, method: str, url: str, payload: Optional[bytes], deadline: float, timeout: float) -> Tuple[int, Optional[str], bytes]:
        parts = urllib.parse.urlsplit(url)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out: no answer within {timeout} s")
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        options: Dict[str, Any] = {"timeout": remaining}
        if parts.scheme == "https":
            options["context"] = ssl.create_default_context()
        connection = connection_class(parts.hostname or "", parts.port, **options)
        self._connection = connection
        # The whole exchange ends at the deadline: a server sending a byte a second
        # would otherwise hold it forever (socket timeouts are per read).
        watchdog = threading.Timer(remaining, _abort, args=(connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            headers = {"Accept": "application/json"}
            if parts.username is not None:
                # As curl and requests read it: a URL's user info is its Basic credentials
                # (sent to this origin only: redirects elsewhere are refused above).
                user_info = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
                headers["Authorization"] = "Basic " + base64.b64encode(user_info.encode("utf-8")).decode("ascii")
            if payload is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path or "/", body=payload, headers=headers)
            response = connection.getresponse()
            answer = bytearray()
            while len(answer) <= self.max_bytes:
                chunk = response.read(65536)
                if not chunk:
                    break
                answer += chunk
            if len(answer) > self.max_bytes:
                raise ExchangeError(f"the answer is over {self.max_bytes} bytes")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out: no whole answer within {timeout} s")
            return response.status, response.getheader("Location"), bytes(answer)
        except (OSError, http.client.HTTPException) as error:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out: no whole answer within {timeout} s") from None
            raise ExchangeError(f"{type(error).__name__}: {error}") from None
        finally:
            watchdog.cancel()
            self._connection = None
            connection.close()


def _abort(connection: http.client.HTTPConnection) -> None:
    """End an exchange from another thread: its blocked read returns at once."""
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def origin(url: str) -> Tuple[str, str, Optional[int]]:
    parts = urllib.parse.urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default
