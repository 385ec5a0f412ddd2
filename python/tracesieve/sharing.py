"""Shared tail decisions on the wire: one thread per Redis URL and process
appends this process's announcements (trace ids its tail processors kept) to
the fleet's Redis stream and reads every other process's, so each service keeps
its own spans of a trace any service kept.

Announcements are batched: at most one ``XADD`` per ``interval`` seconds,
whatever the span rate, from a sender thread; a reader thread waits on a
blocking ``XREAD`` that returns as soon as another process announced. The stream is trimmed to about
``STREAM_ENTRIES`` batches and expires when the fleet is idle, so Redis holds a
bounded amount per fleet. When Redis is gone, the processors decide on their
own spans as before, and that is logged once; announcements made meanwhile wait
in a bounded outbox (drops counted) and go out when Redis answers again. A
stall of a few seconds keeps the links.

The stream is untrusted: a reader takes each entry with bounded memory
(oversized entries are skipped and counted), and notices a stream made anew
behind the id it waits after, so no entry can deafen it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Tuple

from tracesieve._background import BackgroundThread, jitter, reset_after_fork
from tracesieve._redis import Secret, check, connect, scrub
from tracesieve._scrub import scrubbed_logger
from tracesieve._stream_read import MAX_FIELDS, read_xread

__all__ = ["MAX_BATCH", "STREAM_ENTRIES", "LocalExchange", "join", "leave"]

_logger = scrubbed_logger("tracesieve.sharing")
#: Announcements per stream entry at most (25 bytes each).
MAX_BATCH = 1000
#: Stream entries Redis keeps (trimmed approximately, so a little more at times).
STREAM_ENTRIES = 1000
#: Entries read per call at most.
_READ_COUNT = 100
#: The largest entry value a reader takes: a whole batch (larger ones are skipped and counted).
MAX_ENTRY_BYTES = 9 + 25 * MAX_BATCH
#: Seconds a read waits on Redis for news (it returns as soon as there is some).
_READ_BLOCK = 1.0
#: Seconds a call may wait on a stalled Redis before the link is dropped.
_STALL_GRACE = 5.0
#: Reconnection backoff, doubling from the interval up to this: back within a second of Redis.
_MAX_BACKOFF = 1.0
#: An entry id this far past the server's clock (ms) is from the future.
_FUTURE_MS = 86_400_000
_LINKS: Dict[Tuple[Secret, str, float], _Link] = {}
_LOCK = threading.Lock()


def join(processor: Any, target: Tuple[str, str, str], interval: float, ttl: float) -> _Link:
    """Have the link for ``target`` (connect URL, shown URL, stream key) carry
    ``processor``'s announcements and bring it everyone else's."""
    raw, shown, key = target
    connect = Secret(raw)
    del raw
    check(connect, shown, "share")
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
            "announcements_returned": 0,
            "oversized_skipped": 0,
            "stream_resets": 0,
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

    def __init__(self, connect: Secret, shown: str, key: str, interval: float, ttl: float) -> None:
        self._connect_url = connect
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
        self.announcements_returned = 0
        self.oversized_skipped = 0
        self.stream_resets = 0
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
        self._reader: Any = None  # a connection of the reader's own, read with bounded memory
        self._probe: Any = None
        self._password: Optional[Secret] = None
        self._last_id: Optional[bytes] = None
        self._failures_in_row = 0
        self._down_since: Optional[float] = None
        self._down_reason = ""
        self._future_reported = False
        self._skips_logged_at = -1e9

    def _after_fork(self) -> None:
        # A child reads the stream from now on, on its own connection.
        self._counts_lock = threading.Lock()
        self._reset()

    def add(self, processor: Any) -> None:
        self._processors.add(processor)
        self._thread.wake()

    def remove(self, processor: Any) -> None:
        """Send what ``processor`` still has to announce, then forget it."""
        if self._client is not None:
            try:
                with self._step_lock:
                    self._send(only=processor)
            except Exception:
                pass  # counted by _send
        self._processors.discard(processor)

    def close(self) -> None:
        """Stop both threads; the reader ends when its read returns (within
        ``_READ_BLOCK``), so a shutdown does not wait for it."""
        self._sender.stop(timeout=self._interval + 1.0)
        self._thread.stop(timeout=0.05)

    @property
    def connected(self) -> bool:
        """Connected now: since the last connection was made, no call failed."""
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
                "announcements_returned": self.announcements_returned,
                "oversized_skipped": self.oversized_skipped,
                "stream_resets": self.stream_resets,
                "cpu_seconds": self.cpu_seconds,
            }

    def _read_loop(self, thread: BackgroundThread) -> None:
        """Connect when needed and read what the others announced, as it comes."""
        while not thread.stopping:
            started = time.thread_time()
            wait = 0.0
            try:
                with self._step_lock:
                    if self._client is None:
                        self._connect()
                if self._reader is None:
                    self._reader = self._client.connection_pool.make_connection()
                    self._reader.connect()
                self._read()
                self._succeeded()
            except Exception as error:  # whatever Redis sends, the reader goes on
                self._drop_reader()
                wait = self._failed(f"{type(error).__name__}: {scrub(str(error), self._password)}")
            self._spent(time.thread_time() - started)
            if wait and not thread.sleep(wait):
                return

    def _send_loop(self, thread: BackgroundThread) -> None:
        """Every interval, send what this process's processors announced."""
        while thread.sleep(self._interval):
            started = time.thread_time()
            if self._client is not None:
                try:
                    with self._step_lock:
                        self._send()
                except Exception as error:
                    self._failed(f"{type(error).__name__}: {scrub(str(error), self._password)}")
            self._spent(time.thread_time() - started)

    def _spent(self, seconds: float) -> None:
        with self._counts_lock:
            self.cpu_seconds += seconds

    def _connect(self) -> None:
        # Calls wait out a stall of a few seconds (a paused or busy Redis) rather than drop the link.
        options: Dict[str, Any] = {"socket_timeout": _STALL_GRACE, "socket_connect_timeout": 1.0, "retry_on_timeout": False}
        client, self._password = connect(self._connect_url, **options)
        probe = client.register_script(_PROBE)
        _, newest = self._stream_state(probe)
        if self._last_id is None:
            # Read from the newest entry on: what was announced before this process came is not its business.
            self._last_id = newest or b"0-0"
        self._probe = probe
        self._client = client
        self._succeeded()  # connected now, honestly: the probe answered

    def _stream_state(self, probe: Any) -> Tuple[int, Optional[bytes]]:
        """(the server's time in ms, the stream's last generated id or None when it does not exist)."""
        reply = probe(keys=[self._key])
        self._count_calls(1)
        newest = reply[1] if len(reply) > 1 and reply[1] else None
        return int(reply[0]), newest

    def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.disconnect()
            except Exception:
                pass

    def _send(self, only: Any = None) -> None:
        taken = []
        for processor in [only] if only is not None else list(self._processors):
            buffer = processor._buffer
            while (batch := buffer.take_announcements(MAX_BATCH)) is not None:
                taken.append((buffer, batch))
        if not taken:
            return
        client = self._client
        try:
            if client is None:
                raise ConnectionError("not connected")
            pipe = client.pipeline(transaction=False)
            for _, batch in taken:
                pipe.xadd(self._key, {"b": batch}, maxlen=STREAM_ENTRIES, approximate=True)
            pipe.pexpire(self._key, self._ttl_ms)
            pipe.execute()
        except BaseException:
            # Not sent: back into their outboxes (bounded, drops counted there),
            # to go out first when Redis answers again.
            returned = sum((len(batch) - 9) // 25 for _, batch in taken)
            for buffer, batch in taken:
                buffer.return_announcements(batch)
            with self._counts_lock:
                self.announcements_returned += returned
            raise
        self._count_calls(len(taken) + 1, sent=len(taken))

    def _read(self) -> None:
        reader = self._reader
        reader.send_command("XREAD", "COUNT", _READ_COUNT, "BLOCK", int(_READ_BLOCK * 1000), "STREAMS", self._key, self._last_id)
        reader._sock.settimeout(_READ_BLOCK + _STALL_GRACE)
        entries, abandoned = read_xread(reader._sock, MAX_ENTRY_BYTES)
        self._count_calls(1)
        read = skipped = 0
        for entry in entries:
            self._last_id = entry.id
            if entry.oversized or entry.batch is None:
                skipped += entry.oversized
                continue
            read += 1
            for processor in list(self._processors):
                processor._buffer.hear(entry.batch)
        if abandoned:
            self._drop_reader()  # the rest of that reply is still on its way: a new connection
        with self._counts_lock:
            self.batches_read += read
            self.oversized_skipped += skipped
        if skipped and time.monotonic() - self._skips_logged_at >= 60.0:
            # At most once a minute: whoever floods the stream must not flood the log too.
            self._skips_logged_at = time.monotonic()
            _logger.warning(
                "tracesieve: skipped %d entries of %s's stream larger than any announcement batch (over %d bytes, or "
                "over %d fields): not written by tracesieve",
                skipped,
                self.shown,
                MAX_ENTRY_BYTES,
                MAX_FIELDS,
            )
        if not entries:
            self._check_stream()

    def _check_stream(self) -> None:
        """After a read that brought nothing: was the stream recreated behind the
        id this reader waits after (removed or expired, then made again by a
        sender), or does it hold an id from the future? Either would deafen it."""
        server_ms, newest = self._stream_state(self._probe)
        last = _id_key(self._last_id)
        if last[0] > server_ms + _FUTURE_MS and not self._future_reported:
            self._future_reported = True
            _logger.warning(
                "tracesieve: %s's stream holds the id %s, from the future (a forged entry?); announcements still "
                "arrive, and this reader starts again from the stream's start if the stream is made anew",
                self.shown,
                self._last_id.decode("ascii", "replace") if self._last_id else "?",
            )
        if newest is not None and _id_key(newest) < last:
            self._last_id = b"0-0"
            self._future_reported = False
            with self._counts_lock:
                self.stream_resets += 1
            _logger.warning(
                "tracesieve: %s's stream was made anew behind the entry this process read last; reading it from its start",
                self.shown,
            )

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
        return min(_MAX_BACKOFF, max(self._interval, 0.1) * 2 ** (self._failures_in_row - 1)) * jitter(0.5, 1.0)

    def _succeeded(self) -> None:
        self._failures_in_row = 0
        if self._down_since is not None:
            _logger.warning(
                "tracesieve: shared tail decisions reach %s again after %.1f s", self.shown, time.monotonic() - self._down_since
            )
            self._down_since = None


def _id_key(entry_id: Optional[bytes]) -> Tuple[int, int]:
    """A stream id as (milliseconds, sequence), for comparing."""
    try:
        ms, _, seq = (entry_id or b"0-0").partition(b"-")
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


#: The server's time, and the stream's last generated id ('' when it does not exist).
_PROBE = """
local t = redis.call('TIME')
local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
local newest = ''
if ok then
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then newest = info[i + 1] end
  end
end
return {tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), newest}
"""


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a parent thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
