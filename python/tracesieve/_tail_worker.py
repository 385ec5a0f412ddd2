"""The worker half of tail decisions, shared by ``TailSamplingProcessor`` and
``tracesieve.TracerProvider``: a background thread that decides due traces and
delivers kept spans in batches, the flush handshake, shutdown within a
timeout with every span left behind counted, the budget the tail spends, and
the sharing link. The owner says how a batch is decided and delivered."""

from __future__ import annotations

import collections
import math
import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from tracesieve import _core, sharing
from tracesieve._background import BackgroundThread, reset_after_fork
from tracesieve._checks import check_flag, check_items, check_seconds, quoted, shown
from tracesieve._scrub import scrubbed_logger

_logger = scrubbed_logger("tracesieve.tail")

#: What ``take_batch`` gives: (span or record, reason or None, weight, late).
Batch = List[Tuple[Any, Optional[str], float, bool]]


def share_target(share: Any, share_interval: Any) -> Optional[Tuple[str, str, str]]:
    """The Redis target of ``share`` (None for no sharing or an in-process
    exchange), with ``share_interval`` and the Redis client checked."""
    if share is None or isinstance(share, sharing.LocalExchange):
        return None
    if not isinstance(share, str):
        raise _core.ConfigError(f"share: expected a redis:// or rediss:// URL, got {shown(share)}")
    target = _core.redis_target(share, "share", "tail")
    check_seconds("share_interval", share_interval, minimum=0.001)
    if share_interval > 10:
        raise _core.ConfigError(f"share_interval: {quoted(share_interval)} is out of range; expected seconds from 0.001 to 10")
    try:
        import redis  # noqa: F401  (the optional extra: tracesieve[redis])
    except ImportError:
        raise _core.ConfigError(
            "share: sharing tail decisions needs the Redis client; install it with pip install 'tracesieve[redis]'"
        ) from None
    return target


def flush_seconds(timeout_millis: Any) -> float:
    """A flush's timeout in seconds, as a wait takes it: a negative or NaN
    timeout is none, and one past what a wait can take (infinity, an integer
    of a thousand digits: wait as long as it takes) is the longest it can."""
    try:
        seconds = float(timeout_millis) / 1000
    except OverflowError:
        seconds = math.inf
    return 0.0 if not seconds > 0 else min(seconds, threading.TIMEOUT_MAX)


class WorkerOptions(NamedTuple):
    """The worker's own settings, checked."""

    shutdown_timeout: float
    #: (budget_priorities, budget_exempt)
    budget_policy: Tuple[List[str], List[str]]
    start: bool


def check_worker_options(
    buffer: Any, budget: Any, shutdown_timeout: Any, budget_priorities: Any, budget_exempt: Any, start: Any
) -> WorkerOptions:
    """The worker's settings, checked before anything is started or registered
    (a provider's exit handler included), so a mistake leaves nothing behind.
    ``buffer`` (the native tail buffer or recorder) checks that ``budget``
    (checked by ``check_budget``) has a budget stage, and the kinds named,
    with or without a budget to spend."""
    kinds = ("kinds (error, latency, rule)", "a kind: error, latency or rule")
    policy = (
        check_items("budget_priorities", budget_priorities, str, *kinds),
        check_items("budget_exempt", budget_exempt, str, *kinds),
    )
    buffer.set_budget(None if budget is None else budget._native, *policy)
    return WorkerOptions(check_seconds("shutdown_timeout", shutdown_timeout), policy, check_flag("start", start))


def check_budget(budget: Any) -> Any:
    if budget is not None and not (hasattr(budget, "budget_status") and hasattr(budget, "_native")):
        raise _core.ConfigError(f"budget: expected a BudgetSampler or a pipeline with a budget stage, got {type(budget).__name__}")
    return budget


class TailWorker:
    """Decides and delivers on a background thread (or on ``step()``).

    The owner sets ``_buffer`` (a native tail buffer or recorder) and
    implements ``_decide(everything)`` and ``_deliver(batch) -> bool`` (True:
    every span of the batch reached its destination), then calls
    ``_start_worker``.
    """

    _buffer: Any
    _budget: Any = None
    _budget_native: Any = None
    _link: Any = None

    def _start_worker(
        self,
        *,
        name: str,
        settings: Sequence[Any],
        share: Union[str, sharing.LocalExchange, None],
        target: Optional[Tuple[str, str, str]],
        share_interval: float,
        share_ttl: float,
        judging: bool,
        budget: Any,
        options: WorkerOptions,
    ) -> None:
        (self._wait, self._timeout, _, _, _, self._batch, self._delay) = settings
        self._shutdown_timeout = options.shutdown_timeout
        self._share_interval = None if share is None else float(share_interval)
        self._judging = judging
        self._budget = budget
        self._budget_policy = options.budget_policy
        self._budget_native = None
        self._attach_budget()
        self._fresh_worker_state()
        self._shut = False
        self._worker = BackgroundThread(name, self._run)
        # In a forked child (worker started or not), fresh state before the worker starts again.
        reset_after_fork(self)
        self._stepped = not options.start
        if not self._stepped:
            self._worker.start()
        if isinstance(share, sharing.LocalExchange):
            share.add(self)
            self._link = share
        elif target is not None:
            self._link = sharing.join(self, target, float(share_interval), float(share_ttl))

    def _fresh_worker_state(self) -> None:
        """Locks, counters and the flush handshake (new in a forked child)."""
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._flush_requested = 0
        self._flush_done = 0
        self._in_flight = 0
        self._batch_number = 0
        self._abandoned_batch = -1
        self._counts: Dict[str, int] = collections.Counter()

    def _after_fork(self) -> None:
        raise NotImplementedError

    def _decide(self, everything: bool) -> None:
        raise NotImplementedError

    def _deliver(self, batch: Batch) -> bool:
        raise NotImplementedError

    def _judge_roots(self) -> None:
        raise NotImplementedError

    def _attach_budget(self) -> None:
        """Spend the budget sampler's pacer (again, when a reload replaced it)."""
        if self._budget is None or self._budget._native is self._budget_native:
            return
        native = self._budget._native
        order, exempt = self._budget_policy
        self._buffer.set_budget(native, order, exempt)
        self._budget_native = native

    # -- flushing and shutdown -----------------------------------------------------

    def _flush_tail(self, timeout_millis: float) -> bool:
        """Decide every pending trace now and deliver everything queued,
        including a batch already being delivered. True when that finished
        within the timeout; False otherwise (the work goes on in the background)."""
        if self._stepped:
            self._decide(everything=True)
            while self._deliver_batch():
                pass
            return True
        if not self._worker.alive:
            counts = self._buffer.counts()
            return counts["spans_queued"] == 0 and counts["traces_buffered"] == 0
        if self._worker.is_current():
            # Called from inside a delivery (an exporter or a processor that flushes): the
            # worker cannot wait for itself, and waiting would stall it for the whole timeout.
            return False
        with self._flushed:
            self._flush_requested += 1
            target = self._flush_requested
        self._worker.wake()
        with self._flushed:
            return self._flushed.wait_for(lambda: self._flush_done >= target, timeout=flush_seconds(timeout_millis))

    def step(self) -> None:
        """Decide the traces that are due and deliver what is queued, now, in
        this thread: the whole work of an owner built with ``start=False``
        (simulations on a simulated clock, which then decide in the same order
        on every run)."""
        self._decide(everything=False)
        while self._deliver_batch():
            pass

    def _stop_tail(self) -> float:
        """Flush for at most ``shutdown_timeout`` seconds and stop the worker;
        spans left undecided, queued or inside a delivery that did not return
        are counted in ``spans_lost_at_shutdown``. Returns the deadline."""
        deadline = time.monotonic() + self._shutdown_timeout
        # Spans that end from here on are dropped and counted: the flush empties what
        # is there instead of chasing what an application's threads still end.
        self._buffer.close()
        on_worker = self._worker.is_current()
        if on_worker:
            # Shut down from inside a delivery (an exporter or a processor that shuts its
            # provider down): this thread is the worker, so it does the last work itself.
            self._decide(everything=True)
            while self._deliver_batch():
                pass
        elif self._share_interval is not None and self._worker.alive:
            # Pending traces get their decision_wait to hear announcements (within half
            # the shutdown budget); the worker decides them as they fall due.
            until = min(time.monotonic() + self._wait + 2 * self._share_interval, deadline - self._shutdown_timeout / 2)
            while self._buffer.counts()["traces_buffered"] and time.monotonic() < until:
                time.sleep(min(0.02, self._wait))
        self._flush_tail(int(self._shutdown_timeout * 1000))
        if self._link is not None and not isinstance(self._link, sharing.LocalExchange):
            sharing.leave(self)
        stopped = self._worker.stop(timeout=max(0.0, deadline - time.monotonic()))
        undecided = self._drop_undecided()
        unexported = self._buffer.drain()
        with self._lock:
            # On the worker, the delivery under way is this call's caller: it finishes after.
            in_flight = 0 if stopped or on_worker else self._in_flight
            if in_flight:
                # The batch inside a hung delivery counts as lost; if it ever
                # returns successfully, it is moved back to exported.
                self._abandoned_batch = self._batch_number
                self._in_flight = 0
            self._counts["lost_undecided"] += undecided
            self._counts["lost_unexported"] += unexported + in_flight
            self._counts["spans_lost_at_shutdown"] += undecided + unexported + in_flight
        lost = undecided + unexported + in_flight
        if lost:
            _logger.error("tracesieve: tail sampling shut down with %d spans not exported (the exporter did not keep up)", lost)
        late = self._buffer.counts()["spans_after_shutdown"]
        if late:
            _logger.warning(
                "tracesieve: %d spans ended after shutdown began and were dropped (counted in spans_after_shutdown; "
                "stop the threads that make spans before shutting down, to keep them)",
                late,
            )
        return deadline

    def _drop_undecided(self) -> int:
        """Remove the traces still buffered; how many spans they held."""
        return sum(len(due[1]) for due in self._buffer.take_all())

    # -- the worker ----------------------------------------------------------------

    def _run(self, worker: BackgroundThread) -> None:
        tick = max(0.01, min(self._wait, self._delay) / 4 or 0.05)
        if self._share_interval is not None and self._judging:
            tick = min(tick, max(0.01, self._share_interval))  # a root's keep is announced within one interval
        last_export = time.monotonic()
        while True:
            with self._lock:
                flush = self._flush_requested
            flushing = flush > self._flush_done
            self._decide(everything=flushing)
            queued = self._buffer.counts()["spans_queued"]
            if flushing or queued >= self._batch or (queued and time.monotonic() - last_export >= self._delay):
                while self._deliver_batch():
                    if worker.stopping and not flushing:
                        break
                last_export = time.monotonic()
            if flushing:
                with self._flushed:
                    self._flush_done = flush
                    self._flushed.notify_all()
            if not worker.sleep(tick):
                return

    def _deliver_batch(self) -> bool:
        """Deliver one batch; False when the queue was empty."""
        batch = self._buffer.take_batch(self._batch)
        if not batch:
            return False
        with self._lock:
            self._batch_number += 1
            number = self._batch_number
            self._in_flight = len(batch)
        try:
            delivered = self._deliver(batch)
        except BaseException as error:
            # Nothing a destination raises may end the worker, SystemExit included (it
            # would leave every later span unexported); the loss is counted. In the
            # application's own thread (start=False), Ctrl-C and exits still go through.
            if not isinstance(error, Exception) and not self._worker.is_current():
                raise
            _logger.exception("tracesieve: exporting kept spans raised; %d spans lost", len(batch))
            delivered = False
        with self._lock:
            if number == self._abandoned_batch:  # already counted as lost at shutdown
                if delivered:
                    for key in ("lost_unexported", "spans_lost_at_shutdown"):
                        self._counts[key] -= len(batch)
                    self._counts["spans_exported"] += len(batch)
                return True
            self._in_flight = 0
            self._counts["spans_exported" if delivered else "spans_export_failed"] += len(batch)
        return True

    # -- reports -------------------------------------------------------------------

    def _tail_stats(self) -> Dict[str, int]:
        stats: Dict[str, int] = dict(self._buffer.counts())
        with self._lock:
            stats.update(self._counts)
            stats["spans_in_flight"] = self._in_flight
        for key in ("spans_exported", "spans_export_failed", "spans_lost_at_shutdown", "lost_undecided", "lost_unexported"):
            stats.setdefault(key, 0)
        if self._link is not None:
            link = self._link.stats()
            for key in (
                "batches_sent",
                "batches_read",
                "redis_calls",
                "failures",
                "announcements_lost",
                "announcements_returned",
                "oversized_skipped",
                "stream_resets",
            ):
                stats[f"share_{key}"] = link[key]
            stats["share_connected"] = int(link["connected"])
        return stats

    def sharing_status(self) -> Optional[Dict[str, Any]]:
        """Where decisions are shared (password hidden), whether Redis answers,
        and the link's batches, calls, failures and CPU; None when not sharing."""
        return None if self._link is None else self._link.stats()
