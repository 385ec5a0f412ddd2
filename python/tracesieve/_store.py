"""What a process should hear about where its sampling state lives: once, if a
file store could not be used (its state then stays per process, counted in
``stats()["store"]``); once if a store file in use is shortened, replaced or
removed (a watcher thread checks every second); and once in a forked child
whose parent built stateful samplers on the local store (each child now has its
own budget, rate limit and windows; a ``file://`` store shares them)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Dict, Optional, Set

from tracesieve._background import BackgroundThread
from tracesieve._scrub import scrubbed_logger

__all__ = ["join_fleets", "watch"]

_logger = scrubbed_logger("tracesieve.store")
_LOCAL: weakref.WeakSet[Any] = weakref.WeakSet()
_reported: Set[str] = set()
#: Owners on a file store, checked every ``CHECK_INTERVAL`` seconds for a file changed under them.
_FILE_OWNERS: weakref.WeakSet[Any] = weakref.WeakSet()
CHECK_INTERVAL = 1.0
_watcher: Optional[BackgroundThread] = None
_watcher_lock = threading.Lock()
_joining = True


def join_fleets(joining: bool) -> None:
    """Whether samplers built from now on join their Redis fleet (tracesieve's
    check and explain, which must write nothing, build them not joining)."""
    global _joining
    _joining = joining


def watch(owner: Any, info: Dict[str, Any]) -> None:
    """Report ``owner``'s store ``info`` (``store_info()``) as the process needs it,
    and have a Redis store's worker step its stages."""
    if info.get("fleet") and _joining:
        from tracesieve.fleet import join

        join(owner)
    problem = info.get("problem")
    if problem and problem not in _reported:
        _reported.add(problem)
        _logger.warning(
            "tracesieve: the store %s cannot be used (%s); this process keeps its own state (%s), not shared with the host",
            info.get("url"),
            problem,
            ", ".join(info.get("local") or []),
        )
    if info.get("url") is None and info.get("local"):
        _LOCAL.add(owner)
    if str(info.get("url") or "").startswith("file://"):
        _watch_file(owner)


def _watch_file(owner: Any) -> None:
    global _watcher
    with _watcher_lock:
        _FILE_OWNERS.add(owner)
        if _watcher is None:
            _watcher = BackgroundThread("tracesieve-store-watch", _watch_loop)
            _watcher.start()


def _watch_loop(thread: BackgroundThread) -> None:
    while thread.sleep(CHECK_INTERVAL):
        check_files()


def check_files() -> None:
    """Check every file store in use now (the watcher does it every second)."""
    for owner in list(_FILE_OWNERS):
        for problem in owner._native.store_check():
            _logger.warning("tracesieve: %s", problem)


def _after_fork_in_child() -> None:
    global _watcher_lock
    _watcher_lock = threading.Lock()  # a thread building a sampler may have held it at the fork
    owners = list(_LOCAL)
    if not owners:
        return
    kinds = sorted({kind for owner in owners for kind in _kinds(owner)})
    _logger.warning(
        "tracesieve: this process was forked after %s had kept their %s in the parent (the local store); each "
        "forked child now has its own, so limits add up across children. Give store='file:///run/<app>/sampling.tracesieve' "
        "(or the store key of a configuration document) to share them across the host's processes.",
        ", ".join(sorted({type(owner).__name__ for owner in owners})),
        " and ".join(kinds) or "state",
    )
    _LOCAL.clear()  # once per child; its own children hear it again if it builds more


def _kinds(owner: Any) -> Any:
    names = {"budget": "budget", "rate_limit": "rate limit", "signals": "error windows"}
    try:
        return [names.get(kind, kind) for kind in owner._store_info()["local"]]
    except Exception:  # a half-built owner names nothing
        return []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
