"""The fleet worker: the only code that talks to Redis.

Samplers and processors built with ``store="redis://..."`` keep their hot path
local: each stage spends a lease with atomics. One worker thread per Redis URL
and process calls the stages' server-side scripts every ``interval`` seconds
(with jitter): each step reports what the stage spent and how much it wants,
and renews its lease. The logic of each step is in the native core; this
module only moves its requests and replies, reconnects with backoff when Redis
is gone, and says so once.

``sync(*owners)`` runs one step by hand (a URL with ``interval=0`` has no
thread: simulations step the fleet at their own pace).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Dict, List, Optional

from tracesieve._background import BackgroundThread, jitter, reset_after_fork
from tracesieve._core import ConfigError, fleet_scripts
from tracesieve._redis import PASSWORD_VARIABLE, Secret, check, connect, scrub
from tracesieve._scrub import scrubbed_logger

__all__ = ["PASSWORD_VARIABLE", "sync", "worker_stats"]

_logger = scrubbed_logger("tracesieve.fleet")
#: Reconnection backoff: doubling from the interval, up to this, with jitter.
_MAX_BACKOFF = 30.0
_WORKERS: Dict[Any, _Worker] = {}
_LOCK = threading.Lock()


def require_client() -> None:
    """A ConfigError naming the extra to install when the Redis client is missing."""
    try:
        import redis  # noqa: F401  (the optional extra: tracesieve[redis])
    except ImportError:
        raise ConfigError("store: a redis:// store needs the Redis client; install it with pip install 'tracesieve[redis]'") from None


def join(owner: Any) -> None:
    """Have the fleet worker of ``owner``'s store step its stages (called at
    construction for every sampler and processor; a no-op outside a fleet)."""
    connection = owner._native.fleet_connection()
    if connection is None:
        return
    raw, interval = connection
    url = Secret(raw)
    del raw
    require_client()
    shown = owner._native.store_info()["url"]
    check(url, shown, "store")
    with _LOCK:
        key = (interval, url)  # one worker per Redis and pace of steps
        worker = _WORKERS.get(key)
        if worker is None:
            worker = _WORKERS[key] = _Worker(url, interval, shown)
        worker.add(owner)


def sync(*owners: Any) -> None:
    """Run one fleet step now, in this thread, for ``owners`` (samplers or
    processors on a Redis store; all of them when none is given)."""
    with _LOCK:
        workers = list(_WORKERS.values())
    for worker in workers:
        worker.step(only=owners or None)


def worker_stats() -> List[Dict[str, Any]]:
    """Per worker of this process: the store (password hidden), its interval,
    steps run, failed calls, and the CPU seconds its thread spent stepping."""
    with _LOCK:
        workers = list(_WORKERS.values())
    return [
        {"url": w._shown, "interval": w._interval, "steps": w.steps, "failures": w.failures, "cpu_seconds": w.cpu_seconds} for w in workers
    ]


class _Worker:
    """Steps every stage of one Redis URL in this process."""

    def __init__(self, url: Secret, interval: float, shown: str) -> None:
        self._url = url
        self._shown = shown
        self._interval = interval
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._client: Any = None
        self._scripts: Dict[str, Any] = {}
        self._password: Optional[Secret] = None
        self._failures_in_row = 0
        self._retry_at = 0.0
        self._down_since: Optional[float] = None
        self._step_lock = threading.Lock()
        self.steps = 0
        self.failures = 0
        self.cpu_seconds = 0.0
        reset_after_fork(self)
        self._thread: Optional[BackgroundThread] = None
        if interval > 0:
            self._thread = BackgroundThread("tracesieve-fleet", self._loop)
            self._thread.start()

    def add(self, owner: Any) -> None:
        self._owners.add(owner)
        if self._thread is not None:
            self._thread.wake()  # the first step at once: a lease before the first span

    def _loop(self, thread: BackgroundThread) -> None:
        while True:
            started = time.thread_time()
            self.step()
            self.cpu_seconds += time.thread_time() - started
            if not thread.sleep(self._interval * jitter(0.9, 1.1)):
                return

    def _connect(self) -> None:

        timeout = min(1.0, self._interval) if self._interval > 0 else 1.0
        options: Dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry_on_timeout": False}
        client, self._password = connect(self._url, **options)
        self._scripts = {name: client.register_script(source) for name, source in fleet_scripts().items()}
        self._client = client

    def step(self, only: Optional[tuple] = None) -> None:
        """One step for every stage (or those of ``only``)."""
        with self._step_lock:
            self.steps += 1
            owners = [o for o in list(self._owners) if only is None or o in only]
            natives = {id(o._native): o._native for o in owners}.values()
            seen = set()
            for native in natives:
                for kind, script, keys, args in native.fleet_requests():
                    # A processor's windows are also its sampler's: step them once.
                    if (script, args[1]) in seen:
                        native.fleet_reply(kind, None, "stepped by another owner")
                        continue
                    seen.add((script, args[1]))
                    self._step_one(native, kind, script, keys, args)

    def _step_one(self, native: Any, kind: str, script: str, keys: List[str], args: List[str]) -> None:
        now = time.monotonic()
        if self._interval > 0 and now < self._retry_at:  # by hand, the caller paces retries
            native.fleet_reply(kind, None, self._down_reason or "Redis unreachable")
            return
        try:
            if self._client is None:
                self._connect()
            raw = self._scripts[script](keys=keys, args=args)
        except Exception as error:  # whatever Redis or the client does, the thread goes on
            self._failed(f"{type(error).__name__}: {scrub(str(error), self._password)}")
            native.fleet_reply(kind, None, self._down_reason)
            return
        reply = [item.decode("utf-8", "replace") if isinstance(item, bytes) else "?" for item in raw] if isinstance(raw, list) else ["?"]
        if len(reply) > 1 and reply[0] == "ok" and reply[1] != "0":
            self._repaired(keys[0], reply[1])
        if reply[:1] == ["ok"] and "taken" in reply:
            reply, taken_from = reply[: reply.index("taken")], reply[reply.index("taken") + 1 :]
            self._taken_over(keys[0], taken_from[0] if taken_from else "?", reply, args[0])
        refused = native.fleet_reply(kind, reply)
        if refused is not None:
            self._failed(refused)
        else:
            self._succeeded()

    _down_reason: str = ""
    _repairs_logged_at: float = -1e9

    def _repaired(self, key: str, count: str) -> None:
        # At most once a minute: a forger writing every second must not flood the log.
        if time.monotonic() - self._repairs_logged_at >= 60.0:
            self._repairs_logged_at = time.monotonic()
            _logger.warning(
                "tracesieve: the fleet store %s held %s value(s) in %s that were not valid (garbage, or written by "
                "something other than tracesieve); they were repaired or ignored, not obeyed (counted in stats()['store']['fleet'])",
                self._shown,
                count,
                key,
            )

    def _taken_over(self, key: str, theirs: str, reply: List[str], ours: str) -> None:
        # Said once, by the process whose step took it over: a rolling deploy changing the budget,
        # or two budgets given one fleet name taking turns while the other's processes are all away.
        try:
            count = f"{int(float(reply[3])):,}"
        except (IndexError, ValueError, OverflowError):
            count = "?"
        theirs = "".join(c if c.isprintable() else "?" for c in theirs[:400])  # Redis is read as data from outside
        _logger.warning(
            "tracesieve: the fleet's budget %s was held with other settings (%s), and no process with those holds a lease "
            "any more: it runs with this process's settings (%s) from now on, its count this period (%s spans) carried over; "
            "if another service still runs with those, give it a fleet name of its own",
            key,
            theirs,
            ours,
            count,
        )

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self._failures_in_row += 1
        self._down_reason = reason
        backoff = min(_MAX_BACKOFF, max(self._interval, 0.1) * 2 ** (self._failures_in_row - 1))
        self._retry_at = time.monotonic() + backoff * jitter(0.5, 1.0)
        if self._down_since is None:
            self._down_since = time.monotonic()
            _logger.warning(
                "tracesieve: the fleet store %s cannot be used (%s); each process spends its lease, then its fallback "
                "share, until Redis answers again",
                self._shown,
                reason,
            )
        self._client = None if "unexpected" not in reason else self._client

    def _succeeded(self) -> None:
        self._failures_in_row = 0
        self._retry_at = 0.0
        if self._down_since is not None:
            _logger.warning("tracesieve: the fleet store %s answers again after %.1f s", self._shown, time.monotonic() - self._down_since)
            self._down_since = None

    def _after_fork(self) -> None:
        # A child is a new member: its own connection, ids and (empty) leases.
        self._step_lock = threading.Lock()
        self._client = None
        for owner in list(self._owners):
            owner._native.fleet_after_fork()


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a parent thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
