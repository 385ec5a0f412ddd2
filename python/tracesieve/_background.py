"""Background threads that survive ``fork``: every tracesieve component that
owns a thread (the tail processor's exporter, budget snapshots, the config
watcher) runs it through ``BackgroundThread``, which starts it again in a forked
child (pre-fork servers such as gunicorn ``--preload`` depend on this), after
letting the owner reset what the child must not share with its parent."""

from __future__ import annotations

import os
import random
import threading
import weakref
from typing import Callable, Optional

from tracesieve._scrub import scrubbed_logger

__all__ = ["BackgroundThread", "jitter", "reset_after_fork"]

_logger = scrubbed_logger("tracesieve")
_LIVE: weakref.WeakSet[BackgroundThread] = weakref.WeakSet()
#: Objects whose ``_after_fork()`` replaces, in a forked child, locks a parent
#: thread may have held when the process forked.
_RESETTABLE: weakref.WeakSet[object] = weakref.WeakSet()
#: Jitter for background threads: from the OS, so it neither draws from nor
#: disturbs the application's own (perhaps seeded) ``random`` sequence, and
#: forked workers never share a sequence.
_JITTER = random.SystemRandom()
#: Seconds before a loop that failed runs again, doubling up to the longest.
FIRST_RESTART_PAUSE = 1.0
LONGEST_RESTART_PAUSE = 60.0


def jitter(low: float, high: float) -> float:
    """A uniform draw in [low, high] for spreading background work in time."""
    return _JITTER.uniform(low, high)


def reset_after_fork(owner: object) -> None:
    """Call ``owner._after_fork()`` in every forked child while ``owner`` lives."""
    _RESETTABLE.add(owner)


class BackgroundThread:
    """A daemon thread running ``loop(self)`` until ``stop()``.

    The loop waits with ``self.sleep(seconds)``, which returns False once the
    thread is asked to stop, and wakes early on ``wake()``. After ``fork``, in
    the child, ``on_fork_child()`` runs first (to replace locks and state the
    parent's threads may have held mid-update), then the thread starts again.
    """

    def __init__(self, name: str, loop: Callable[[BackgroundThread], None], on_fork_child: Optional[Callable[[], None]] = None):
        self.name = name
        self._loop = loop
        self._on_fork_child = on_fork_child
        self._started = False
        #: Times the loop failed and was run again.
        self.restarts = 0
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def _run(self) -> None:
        # A loop that fails unexpectedly runs again after a pause (1 s, doubling to
        # a minute): one bad moment must not end an exporter or a poller for good.
        pause = FIRST_RESTART_PAUSE
        while True:
            try:
                self._loop(self)
                return
            except Exception:
                self.restarts += 1
                _logger.exception("tracesieve: background thread %s failed; it runs again in %g s", self.name, pause)
            if self._stopping.wait(pause):  # a wake() does not cut the pause short; stop() does
                return
            pause = min(pause * 2, LONGEST_RESTART_PAUSE)

    def start(self) -> None:
        self._started = True
        self._thread.start()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def is_current(self) -> bool:
        """Whether the caller runs on this worker's thread."""
        return self._thread is threading.current_thread()

    def sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (less when woken); False once stopping."""
        # A poll interval near the longest wait, plus its jitter, would overflow the wait.
        if self._wake.wait(min(seconds, threading.TIMEOUT_MAX)):
            self._wake.clear()
        return not self._stopping.is_set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Ask the loop to end and wait up to ``timeout`` for it; True when it ended."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(None if timeout is None else min(timeout, threading.TIMEOUT_MAX))
        return not self._thread.is_alive()

    def _restart_in_child(self) -> None:
        if not self._started or self._stopping.is_set():
            return
        if self._on_fork_child is not None:
            self._on_fork_child()
        self._reset()
        self._thread.start()


def _after_fork_in_child() -> None:
    for owner in list(_RESETTABLE):
        try:
            owner._after_fork()  # type: ignore[attr-defined]
        except Exception:  # pragma: no cover - must never break the child
            _logger.exception("tracesieve: could not reset %r after fork", owner)
    for background in list(_LIVE):
        try:
            background._restart_in_child()
        except Exception:  # pragma: no cover - must never break the child
            _logger.exception("tracesieve: could not restart %s after fork", background.name)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
