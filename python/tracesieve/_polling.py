"""What every poller of a sampling server shares: its thread (started again
in a forked child, after the child resets what it must not share), one
bounded JSON exchange, a lock held through each fetch, and a stop that ends
a fetch in flight at once."""

from __future__ import annotations

import threading
from typing import Optional

from tracesieve._background import BackgroundThread, reset_after_fork
from tracesieve._http import JsonExchange

__all__ = ["Poller"]


class Poller:
    """Subclasses set their fields after ``__init__`` here, define ``_run``,
    and call ``_start()`` last."""

    def __init__(self, thread_name: str, max_bytes: int):
        self._exchange = JsonExchange(max_bytes)
        self._lock = threading.Lock()
        self._thread = BackgroundThread(thread_name, self._run, on_fork_child=self._after_fork)
        reset_after_fork(self)

    def _run(self, thread: BackgroundThread) -> None:
        raise NotImplementedError

    def _start(self) -> None:
        self._thread.start()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._exchange.after_fork()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Stop polling, ending a fetch in flight at once; True when the thread ended within ``timeout``."""
        self._thread.stop(0)
        self._exchange.abort()
        return self._thread.stop(timeout)
