"""Shared tail decisions on the wire: one thread per Redis URL and process
appends this process's announcements (trace ids its tail processors kept) to
the fleet's Redis stream and reads every other process's, so each service keeps
its own spans of a trace any service kept.

Announcements are batched: at most one ``XADD`` per ``interval`` seconds,
whatever the span rate, from a sender thread; a reader thread waits on a
blocking ``XREAD`` that returns as soon as another process announced. The stream is trimmed to about
``STREAM_ENTRIES`` batches and expires when the fleet is idle, so Redis holds a
bounded amount per fleet. When Redis is gone, the processors decide on their
own spans as before (announcements wait in a bounded outbox, drops counted),
and that is logged once.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Tuple

from tracesieve._background import BackgroundThread, reset_after_fork
from tracesieve._redis import connect, scrub

__all__ = ["MAX_BATCH", "STREAM_ENTRIES", "LocalExchange", "join", "leave"]

_logger = logging.getLogger("tracesieve.sharing")
#: Announcements per stream entry at most (25 bytes each).
MAX_BATCH = 1000
#: Stream entries Redis keeps (trimmed approximately, so a little more at times).
STREAM_ENTRIES = 1000
#: Entries read per call at most.
_READ_COUNT = 100
#: Seconds a read waits on Redis for news (it returns as soon as there is some).
_READ_BLOCK = 1.0
_MAX_BACKOFF = 30.0
_LINKS: Dict[Tuple[str, str, float], _Link] = {}
_LOCK = threading.Lock()


def join(processor: Any, target: Tuple[str, str, str], interval: float, ttl: float) -> _Link:
    """Have the link for ``target`` (connect URL, shown URL, stream key) carry
    ``processor``'s announcements and bring it everyone else's."""
    connect, shown, key = target
    with _LOCK:
        link = _LINKS.get((connect, key, interval))
        if link is None:
            link = _LINKS[(connect, key, interval)] = _Link(connect, shown, key, interval, ttl)
        link.add(processor)
    return link


class LocalExchange:
    """Shares tail decisions between the processors of one process, stepped by
    hand: for simulations and tests, where several services run in one process
    on a simulated clock. Pass it as ``share=``; each ``step()`` judges the
    roots that just ended and hands each processor's announcements to the others."""

    def __init__(self) -> None:
        self._processors: List[Any] = []
        self.batches_sent = 0
        self.batches_read = 0

    def add(self, processor: Any) -> None:
        self._processors.append(processor)

    def step(self) -> None:
        for processor in self._processors:
            processor._judge_roots()
        for sender in self._processors:
            while (batch := sender._buffer.take_announcements(MAX_BATCH)) is not None:
                self.batches_sent += 1
                for processor in self._processors:
                    if processor is not sender:
                        self.batches_read += 1
                        processor._buffer.hear(batch)

    def stats(self) -> Dict[str, Any]:
        return {
            "url": "in-process",
            "connected": True,
            "interval": 0.0,
            "batches_sent": self.batches_sent,
            "batches_read": self.batches_read,
            "redis_calls": 0,
            "failures": 0,
            "announcements_lost": 0,
            "cpu_seconds": 0.0,
        }


def leave(processor: Any) -> None:
    """Stop carrying ``processor``'s announcements (at its shutdown, after a
    last send); a link nobody uses any more stops its thread."""
    with _LOCK:
        for key, link in list(_LINKS.items()):
            if processor in link._processors:
                link.remove(processor)
                if not link._processors:
                    del _LINKS[key]
                    link.close()


class _Link:
    """The stream of one fleet, for every sharing processor of this process."""

    def __init__(self, connect: str, shown: str, key: str, interval: float, ttl: float) -> None:
        self._connect_url = connect  # holds credentials: never logged
        self.shown = shown
        self._key = key
        self._interval = interval
        self._ttl_ms = max(1000, int(ttl * 1000))
        self._processors: weakref.WeakSet[Any] = weakref.WeakSet()
        self._counts_lock = threading.Lock()
        self.batches_sent = 0
        self.batches_read = 0
        self.redis_calls = 0
        self.failures = 0
        self.announcements_lost = 0
        self.cpu_seconds = 0.0
        self._reset()
        reset_after_fork(self)
        # Two threads: the reader waits on Redis for news, the sender wakes every
        # interval; one thread doing both would hold announcements for a whole read.
        self._thread = BackgroundThread("tracesieve-share-read", self._read_loop)
        self._sender = BackgroundThread("tracesieve-share-send", self._send_loop)
        self._thread.start()
        self._sender.start()

    def _reset(self) -> None:
        self._step_lock = threading.Lock()
        self._client: Any = None
        self._password: Optional[str] = None
        self._last_id: Any = None
        self._failures_in_row = 0
        self._down_since: Optional[float] = None
        self._down_reason = ""

    def _after_fork(self) -> None:
        # A child reads the stream from now on, on its own connection.
        self._counts_lock = threading.Lock()
        self._reset()

    def add(self, processor: Any) -> None:
        self._processors.add(processor)
        self._thread.wake()

    def remove(self, processor: Any) -> None:
        """Send what ``processor`` still has to announce, then forget it."""
        import redis

        if self._client is not None:
            try:
                with self._step_lock:
                    self._send(only=processor)
            except (redis.RedisError, OSError, ValueError):
                pass  # counted in announcements_lost by _send
        self._processors.discard(processor)

    def close(self) -> None:
        """Stop both threads; the reader ends when its read returns (within
        ``_READ_BLOCK``), so a shutdown does not wait for it."""
        self._sender.stop(timeout=self._interval + 1.0)
        self._thread.stop(timeout=0.05)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._down_since is None

    def stats(self) -> Dict[str, Any]:
        with self._counts_lock:
            return {
                "url": self.shown,
                "connected": self.connected,
                "interval": self._interval,
                "batches_sent": self.batches_sent,
                "batches_read": self.batches_read,
                "redis_calls": self.redis_calls,
                "failures": self.failures,
                "announcements_lost": self.announcements_lost,
                "cpu_seconds": self.cpu_seconds,
            }

    def _read_loop(self, thread: BackgroundThread) -> None:
        """Connect when needed and read what the others announced, as it comes."""
        import redis

        while not thread.stopping:
            started = time.thread_time()
            wait = 0.0
            try:
                with self._step_lock:
                    if self._client is None:
                        self._connect()
                    client = self._client
                self._read(client)
                self._succeeded()
            except (redis.RedisError, OSError, ValueError) as error:
                wait = self._failed(f"{type(error).__name__}: {scrub(str(error), self._password)}")
            self._spent(time.thread_time() - started)
            if wait and not thread.sleep(wait):
                return

    def _send_loop(self, thread: BackgroundThread) -> None:
        """Every interval, send what this process's processors announced."""
        import redis

        while thread.sleep(self._interval):
            started = time.thread_time()
            if self._client is not None:
                try:
                    with self._step_lock:
                        self._send()
                except (redis.RedisError, OSError, ValueError) as error:
                    self._failed(f"{type(error).__name__}: {scrub(str(error), self._password)}")
            self._spent(time.thread_time() - started)

    def _spent(self, seconds: float) -> None:
        with self._counts_lock:
            self.cpu_seconds += seconds

    def _connect(self) -> None:

        timeout = _READ_BLOCK + 1.0
        options: Dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": 1.0, "retry_on_timeout": False}
        client, self._password = connect(self._connect_url, **options)
        if self._last_id is None:
            # Read from the newest entry on: what was announced before this process came is not its business.
            newest = client.xrevrange(self._key, count=1)
            self._count_calls(1)
            self._last_id = newest[0][0] if newest else b"0-0"
        self._client = client

    def _send(self, only: Any = None) -> None:
        batches = []
        for processor in [only] if only is not None else list(self._processors):
            buffer = processor._buffer
            while (batch := buffer.take_announcements(MAX_BATCH)) is not None:
                batches.append(batch)
        if not batches:
            return
        client = self._client
        try:
            if client is None:
                raise ConnectionError("not connected")
            pipe = client.pipeline(transaction=False)
            for batch in batches:
                pipe.xadd(self._key, {"b": batch}, maxlen=STREAM_ENTRIES, approximate=True)
            pipe.pexpire(self._key, self._ttl_ms)
            pipe.execute()
        except BaseException:
            # Taken from the outbox and not sent: counted, never silent.
            with self._counts_lock:
                self.announcements_lost += sum((len(batch) - 9) // 25 for batch in batches)
            raise
        self._count_calls(len(batches) + 1, sent=len(batches))

    def _read(self, client: Any) -> None:
        replies = client.xread({self._key: self._last_id}, count=_READ_COUNT, block=int(_READ_BLOCK * 1000))
        self._count_calls(1)
        read = 0
        for _, entries in replies or ():
            for entry_id, fields in entries:
                self._last_id = entry_id
                batch = fields.get(b"b")
                if batch is None:
                    continue
                read += 1
                for processor in list(self._processors):
                    processor._buffer.hear(batch)
        with self._counts_lock:
            self.batches_read += read

    def _count_calls(self, calls: int, sent: int = 0) -> None:
        with self._counts_lock:
            self.redis_calls += calls
            self.batches_sent += sent

    def _failed(self, reason: str) -> float:
        with self._counts_lock:
            self.failures += 1
        self._failures_in_row += 1
        self._down_reason = reason
        self._client = None
        if self._down_since is None:
            self._down_since = time.monotonic()
            _logger.warning(
                "tracesieve: shared tail decisions cannot reach %s (%s); each service decides on its own spans until Redis answers again",
                self.shown,
                reason,
            )
        return min(_MAX_BACKOFF, max(self._interval, 0.1) * 2 ** (self._failures_in_row - 1)) * random.uniform(0.5, 1.0)

    def _succeeded(self) -> None:
        self._failures_in_row = 0
        if self._down_since is not None:
            _logger.warning(
                "tracesieve: shared tail decisions reach %s again after %.1f s", self.shown, time.monotonic() - self._down_since
            )
            self._down_since = None


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a parent thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
