"""Remote sampling strategies: ``JaegerRemoteSampler`` decides natively by the
strategy a Jaeger strategy source gives for its service (Jaeger's ``/sampling``
endpoint, the OpenTelemetry Collector's ``jaegerremotesampling`` extension, or a
local JSON file), fetched in the background and swapped in whole, so
``should_sample`` never waits on the network."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from tracesieve import _core
from tracesieve._background import BackgroundThread, jitter
from tracesieve._checks import check_flag, check_meter_provider, check_seconds, quoted
from tracesieve._files import OpenToEveryone, open_trusted
from tracesieve._http import failure_text
from tracesieve._polling import Poller
from tracesieve._scrub import scrub, scrubbed_logger
from tracesieve.config import ConfigError
from tracesieve.samplers import _NativeSampler

__all__ = ["JaegerRemoteSampler", "StrategyPoller"]

_logger = scrubbed_logger("tracesieve.remote")
#: A strategy document is a few kilobytes; a 100,000-operation one is a few megabytes.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
DEFAULT_ENDPOINT = "http://localhost:5778"


def resource_service_name() -> str:
    """``OTEL_SERVICE_NAME``, else ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``,
    else the SDK's default, as the SDK's resource detection reads them."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    return str(Resource.create().attributes.get(SERVICE_NAME) or "unknown_service")


class StrategyPoller(Poller):
    """Fetches the strategy of ``service_name`` from ``endpoint`` (an HTTP base
    URL, or ``file:///path.json``) every ``interval`` seconds (with ``jitter``,
    a fraction of it), first at once, and hands each document to ``apply``
    (which raises ``ConfigError`` for a bad one). Failures keep the strategy in
    force; they are counted and logged once until the next success."""

    def __init__(
        self,
        service_name: str,
        endpoint: str,
        interval: float,
        timeout: float,
        apply: Callable[[Any], bool],
        jitter: float = 0.1,
        notes: Optional[Callable[[], List[str]]] = None,
        in_force: Optional[Callable[[], str]] = None,
    ):
        super().__init__("tracesieve-jaeger-remote", MAX_DOCUMENT_BYTES)
        self.service_name = service_name
        self.source_endpoint = endpoint
        self.source, self._file = _source(service_name, endpoint)
        self.interval = check_seconds("polling_interval", interval, minimum=0.01)
        self.timeout = check_seconds("timeout", timeout, minimum=0.001)
        if not 0 <= jitter < 1:
            raise ConfigError(f"jitter: {quoted(jitter)} is out of range; expected a fraction in [0, 1)")
        self._jitter = jitter
        self._apply = apply
        self._notes = notes
        self._in_force = in_force
        self._file_seen: Optional[Tuple[int, int]] = None
        self._reported: Optional[str] = None
        self.fetches = 0
        self.failures = 0
        self.fetched_at: Optional[float] = None
        self.last_error: Optional[str] = None
        self._start()

    def _run(self, thread: BackgroundThread) -> None:
        while not thread.stopping:
            self.poll()
            spread = self.interval * self._jitter
            if not thread.sleep(self.interval + jitter(-spread, spread)):
                return

    def poll(self) -> bool:
        """Fetch and apply once now; True when a document was applied. Nothing a
        source sends stops the poller: every failure is counted, and the
        strategy in force stays."""
        with self._lock:
            try:
                document = self._fetch_file() if self._file else self._fetch_http()
                if document is None:
                    return False  # the file did not change
                changed = self._apply(document)
            except Exception as error:  # a deep document, a huge number, a broken server: never the poller's end
                self.failures += 1
                self.last_error = failure_text(error)[:300]
                self._report_once(self.last_error)
                return False
            self.fetched_at = time.time()
            self.last_error = None
            if self._reported is not None:
                _logger.info("tracesieve: the strategy source %s answers again", self.source)
            self._reported = None
            if changed:
                _logger.info("tracesieve: sampling strategy for %s updated from %s", self.service_name, self.source)
                for note in self._notes() if self._notes else ():
                    _logger.warning(
                        "tracesieve: the strategy for %s from %s is read as Jaeger reads it: %s", self.service_name, self.source, note
                    )
            # Counted once everything about it is done: whoever waits for a fetch then finds its notes said.
            self.fetches += 1
            return True

    def _fetch_http(self) -> Any:
        """GET the strategy within ``timeout`` seconds in all."""
        return self._exchange.json("GET", self.source, time.monotonic() + self.timeout, self.timeout)

    def _fetch_file(self) -> Any:
        path = Path(self._file or "")
        stat = path.stat()
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._file_seen:
            return None
        try:
            with open_trusted(path) as file:
                text = file.read(MAX_DOCUMENT_BYTES + 1)  # the file may have grown since
        except OpenToEveryone as error:
            raise ValueError(f"{path} is not read, as {error}") from None
        if len(text) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"{path} is over {MAX_DOCUMENT_BYTES} bytes")
        document = json.loads(text.decode("utf-8"))
        self._file_seen = seen
        return document

    def _report_once(self, problem: str) -> None:
        if problem != self._reported:
            self._reported = problem
            in_force = "the strategy in force"
            if self._in_force is not None:
                try:
                    in_force = f"the strategy in force, {self._in_force()},"
                except Exception:  # the description is a courtesy; the warning must still go out
                    pass
            _logger.warning("tracesieve: cannot use the sampling strategy from %s (%s); %s stays", self.source, problem, in_force)

    def status(self) -> Dict[str, Any]:
        return {
            "source": scrub(self.source),
            "fetches": self.fetches,
            "fetch_failures": self.failures,
            "fetched_at": self.fetched_at,
            "last_error": None if self.last_error is None else scrub(self.last_error),
            "polling_interval": self.interval,
        }


def _is_directory(path: str) -> bool:
    """Whether ``path`` is a directory; a path that cannot be looked at (a
    parent not searchable) is left to the poller, which reports it."""
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def _source(service_name: str, endpoint: str) -> Tuple[str, Optional[str]]:
    """(what is fetched, the file path in file mode)."""
    if not isinstance(endpoint, str) or not endpoint:
        raise ConfigError(f"endpoint: expected an http(s):// URL or file:///path, got {quoted(endpoint)}")
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme == "file":
        # As RFC 8089 reads a file URI: an absolute path, on no host or "localhost", percent-encoded.
        path = urllib.parse.unquote(parsed.path)
        if parsed.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigError(f"endpoint: {quoted(endpoint)} names no absolute path; expected file:///path/to/strategy.json")
        if _is_directory(path):
            raise ConfigError(f"endpoint: {quoted(path)} is a directory; expected a strategy file")
        return endpoint, path
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"endpoint: {quoted(endpoint)} is not a strategy source; expected http://host:5778 (Jaeger, or the Collector's "
            "jaegerremotesampling extension) or file:///path/to/strategy.json"
        )
    if "@" not in parsed.netloc and "@" in endpoint.partition("://")[2]:
        # A password holding '/', '?' or '#' ended the host early: its rest would show.
        raise ConfigError(
            "endpoint: a URL with an '@' past its host; a password holding '/', '?' or '#' must be percent-encoded "
            "(%2F, %3F, %23); expected http://user:password@host:5778"
        )
    path = parsed.path.rstrip("/")
    if not path.endswith("/sampling"):
        path += "/sampling"
    query = urllib.parse.urlencode({"service": service_name})
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, query, "")), None


class JaegerRemoteSampler(_NativeSampler):
    """A sampler whose strategy comes from a Jaeger strategy source and changes
    at run time without replacing the sampler.

    Decisions are native: probabilistic strategies and per-operation
    probabilities write consistent ``th``, so traces stay whole next to other
    consistent samplers; rate-limited keeps and per-operation lower-bound keeps
    are no probability sample and carry no ``th``.

    Args:
        service_name: the service whose strategy is asked for.
        endpoint: ``http://host:5778`` (Jaeger's sampling endpoint, or the
            Collector's ``jaegerremotesampling`` extension; ``/sampling`` is
            added) or ``file:///path/strategy.json`` (re-read when it changes).
        polling_interval: seconds between fetches (default 60), with 10% jitter.
        initial_rate: the probability until the first strategy arrives (and
            while none can be fetched).
        timeout: seconds a fetch may take.
        max_operations: operations given their own probability; the rest get
            the default (default 2,000, as Jaeger's clients).
        respect_parent: a span with a valid parent follows the parent.
        clock: callable returning Unix seconds, with ``monotonic()`` (tests,
            simulations: rate limits and lower bounds run on it).
        meter_provider: where its metrics go (default: the global
            MeterProvider, also one set later): decisions, decisions per operation,
            fetches by outcome.
        start: begin polling now (the first fetch is immediate, in the background).
        trust_incoming: False ignores what remote parents send (see ``ProbabilitySampler``).
    """

    def __init__(
        self,
        service_name: str,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        polling_interval: float = 60.0,
        initial_rate: float = 0.001,
        timeout: float = 5.0,
        max_operations: int = 2000,
        respect_parent: bool = True,
        defer: bool = False,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
        start: bool = True,
        trust_incoming: bool = True,
    ):
        native = _core.NativeSampler.jaeger_remote(
            service_name,
            initial_rate=initial_rate,
            max_operations=max_operations,
            respect_parent=respect_parent,
            clock=clock,
            class_name=type(self).__name__,
        )
        self._clock = clock
        self._bind(native, defer, trust_incoming)
        self.service_name = service_name
        self.poller: Optional[StrategyPoller] = None
        # The poller updates the strategy object every plan built on this one shares
        # (an AdaptiveSampler or BudgetSampler around it included).
        self._endpoint = endpoint
        # Bad settings fail here, not in the thread, and also when the poller is not started.
        _source(service_name, endpoint)
        check_meter_provider(meter_provider)
        check_seconds("polling_interval", polling_interval, minimum=0.01)
        check_seconds("timeout", timeout, minimum=0.001)
        if check_flag("start", start):
            self.poller = StrategyPoller(
                service_name,
                endpoint,
                polling_interval,
                timeout,
                native.remote_update,
                notes=lambda: native.remote_status()["notes"],
                in_force=lambda: native.remote_status()["strategy"],
            )
        from tracesieve.metrics import observe_remote

        observe_remote(self, meter_provider)

    def stats(self) -> Dict[str, Any]:
        """Decision counts, plus ``remote``: the strategy in force, when it was
        fetched, fetch failures, refused documents and decisions per operation."""
        stats: Dict[str, Any] = dict(super().stats())
        stats["remote"] = self.remote_status()
        return stats

    def remote_status(self) -> Dict[str, Any]:
        status: Dict[str, Any] = self._native.remote_status()
        status.update(self.poller.status() if self.poller else {"source": scrub(self._endpoint), "fetches": 0, "fetch_failures": 0})
        return status

    def update(self, document: Any) -> bool:
        """Apply a strategy document by hand (parsed JSON); ``ConfigError`` when bad."""
        return self._native.remote_update(document)

    def shutdown(self) -> None:
        """Stop polling (the strategy in force stays)."""
        if self.poller is not None:
            self.poller.stop(timeout=self.poller.timeout + 1)
