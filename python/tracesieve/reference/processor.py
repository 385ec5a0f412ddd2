"""A plain-Python span processor doing what ``ErrorWindowProcessor.on_end``
does (status, exception events, duration, deque windows): the baseline the
native ``on_end`` is benchmarked beside."""

from __future__ import annotations

__all__ = ["PythonErrorWindowProcessor"]


class PythonErrorWindowProcessor:
    """A plain-Python span processor doing what ErrorWindowProcessor.on_end does
    (status, exception events, duration, a deque window), as an on_end baseline."""

    def __init__(self, slow_threshold: float = 2.0, window_seconds: float = 300.0):
        import collections
        import threading
        import time

        from opentelemetry.trace import StatusCode

        self._error = StatusCode.ERROR
        self._slow_ns = slow_threshold * 1e9
        self._window = window_seconds
        self._spans: collections.deque = collections.deque()
        self._errors: collections.deque = collections.deque()
        self._slow: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._clock = time.time

    def on_end(self, span) -> None:
        now = self._clock()
        error = span.status.status_code is self._error or any(e.name == "exception" for e in span.events)
        slow = span.end_time - span.start_time >= self._slow_ns
        with self._lock:
            cutoff = now - self._window
            for queue, hit in ((self._spans, True), (self._errors, error), (self._slow, slow)):
                if hit:
                    queue.append(now)
                while queue and queue[0] <= cutoff:
                    queue.popleft()
