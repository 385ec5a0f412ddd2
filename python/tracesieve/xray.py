"""AWS X-Ray centralized sampling: ``XRayRemoteSampler`` decides natively by
the sampling rules and targets X-Ray serves (through the X-Ray daemon or the
Collector's ``awsproxy`` on port 2000), fetched and reported in the
background, so ``should_sample`` never waits on the network."""

from __future__ import annotations

import secrets
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

from tracesieve import _core
from tracesieve._background import BackgroundThread, jitter
from tracesieve._checks import check_meter_provider, check_seconds, quoted, shown
from tracesieve._http import failure_text
from tracesieve._polling import Poller
from tracesieve._scrub import scrubbed_logger
from tracesieve.config import ConfigError
from tracesieve.samplers import _NativeSampler

__all__ = ["XRayPoller", "XRayRemoteSampler", "resource_facts"]

_logger = scrubbed_logger("tracesieve.xray")
DEFAULT_ENDPOINT = "http://127.0.0.1:2000"
DEFAULT_POLLING_INTERVAL = 300.0
#: Seconds between reports until X-Ray names an interval (as the AWS samplers).
DEFAULT_TARGET_INTERVAL = 10.0
#: An X-Ray account has at most 25 rules; a page of them is a few kilobytes.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: Pages of rules read per fetch at most (X-Ray pages 100 rules or so).
MAX_PAGES = 50

Statistics = List[Tuple[str, int, int, int]]


def resource_facts(resource: Any = None) -> Dict[str, Optional[str]]:
    """What X-Ray rules match on from a ``Resource`` (default: the SDK's
    ``Resource.create()``, from ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``)."""
    if resource is None:
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create()
    attributes = getattr(resource, "attributes", None)
    if attributes is None:
        raise ConfigError(f"resource: expected an OpenTelemetry Resource, got {shown(resource)}")

    def text(key: str) -> Optional[str]:
        value = attributes.get(key)
        return value if isinstance(value, str) else None

    return {
        # As the AWS samplers read it: a resource with no service name matches only ServiceName "" or "*".
        "service_name": text("service.name") or "",
        "cloud_platform": text("cloud.platform"),
        "ecs_container_arn": text("aws.ecs.container.arn"),
        "resource_id": text("cloud.resource_id") or text("faas.id"),
    }


def _base_url(endpoint: Any) -> str:
    if not isinstance(endpoint, str) or not endpoint:
        raise ConfigError(f"endpoint: expected an http(s):// URL, got {quoted(endpoint)}")
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint: {quoted(endpoint)} is not an X-Ray sampling endpoint; expected http://host:2000 "
            "(the X-Ray daemon, or the Collector's awsproxy extension)"
        )
    if parts.username is not None or parts.password is not None:
        # The daemon signs X-Ray requests itself; credentials in a URL would only leak.
        raise ConfigError("endpoint: the URL carries credentials; X-Ray's local endpoint takes none (the daemon signs requests)")
    if parts.query or parts.fragment:
        raise ConfigError(f"endpoint: {quoted(endpoint)} has a query or fragment; expected http://host:port[/path]")
    return endpoint.rstrip("/")


class XRayPoller(Poller):
    """Fetches X-Ray's rules (``POST /GetSamplingRules``, every page) every
    ``polling_interval`` seconds plus up to 5 s of jitter, first at once, and
    reports statistics (``POST /SamplingTargets``) every ten seconds (or the
    interval X-Ray names) plus up to 0.1 s, applying the targets it answers
    with. Every failure keeps what is in force; it is counted and logged once
    until the next success, and statistics a report could not deliver go out
    with the next one."""

    def __init__(
        self,
        endpoint: str,
        polling_interval: float,
        timeout: float,
        *,
        update_rules: Callable[[List[Any]], bool],
        apply_targets: Callable[[Any], Dict[str, Any]],
        take_statistics: Callable[[], Statistics],
        restore_statistics: Callable[[Statistics], None],
        rules_jitter: float = 5.0,
        targets_jitter: float = 0.1,
        target_interval: float = DEFAULT_TARGET_INTERVAL,
    ):
        super().__init__("tracesieve-xray", MAX_ANSWER_BYTES)
        self.endpoint = _base_url(endpoint)
        self.interval = check_seconds("polling_interval", polling_interval, minimum=0.01)
        self.timeout = check_seconds("timeout", timeout, minimum=0.001)
        self.target_interval = check_seconds("target_interval", target_interval, minimum=0.01)
        self._rules_jitter = rules_jitter
        self._targets_jitter = targets_jitter
        self._update_rules = update_rules
        self._apply_targets = apply_targets
        self._take_statistics = take_statistics
        self._restore_statistics = restore_statistics
        # X-Ray tells clients apart by this id (24 hex digits); it names no one.
        self.client_id = secrets.token_hex(12)
        self._reported: Optional[str] = None
        self.rule_fetches = 0
        self.rule_failures = 0
        self.reports = 0
        self.report_failures = 0
        self.fetched_at: Optional[float] = None
        self.reported_at: Optional[float] = None
        self.last_error: Optional[str] = None
        self._start()

    def _after_fork(self) -> None:
        super()._after_fork()
        # A child is another client to X-Ray: its own id, its own counts.
        self.client_id = secrets.token_hex(12)

    def _run(self, thread: BackgroundThread) -> None:
        next_rules = time.monotonic()
        next_report = next_rules + self.target_interval + jitter(0, self._targets_jitter)
        while not thread.stopping:
            now = time.monotonic()
            if now >= next_rules:
                self.fetch_rules()
                next_rules = time.monotonic() + self.interval + jitter(0, self._rules_jitter)
            if now >= next_report:
                self.report()
                next_report = time.monotonic() + self.target_interval + jitter(0, self._targets_jitter)
            if not thread.sleep(max(0.0, min(next_rules, next_report) - time.monotonic())):
                return

    def fetch_rules(self) -> bool:
        """Fetch every page of rules and put them in force; True when applied."""
        with self._lock:
            try:
                deadline = time.monotonic() + self.timeout
                pages: List[Any] = []
                token: Optional[str] = None
                while True:
                    body = {} if token is None else {"NextToken": token}
                    page = self._exchange.json("POST", f"{self.endpoint}/GetSamplingRules", deadline, self.timeout, body)
                    pages.append(page)
                    next_token = page.get("NextToken") if isinstance(page, dict) else None
                    if not next_token:
                        break
                    if len(pages) >= MAX_PAGES:
                        raise ValueError(f"more than {MAX_PAGES} pages of rules")
                    if not isinstance(next_token, str) or next_token == token:
                        raise ValueError(f"NextToken {str(next_token)[:40]!r} does not lead anywhere")
                    token = next_token
                changed = self._update_rules(pages)
            except Exception as error:  # whatever a server sends, the poller goes on and the rules in force stay
                self.rule_failures += 1
                in_force = (
                    "the rules in force stay" if self.fetched_at else "the fallback (1 trace a second, then 5%) decides until it answers"
                )
                self._failed(error, in_force)
                return False
            self.fetched_at = time.time()
            self._recovered()
            if changed:
                _logger.info("tracesieve: X-Ray sampling rules updated from %s", self.endpoint)
            # Counted once everything about it is done, as a Jaeger fetch is.
            self.rule_fetches += 1
            return True

    def report(self) -> bool:
        """Send the statistics since the last report and apply the targets X-Ray
        answers with; True when applied (nothing to report: nothing sent)."""
        with self._lock:
            statistics = self._take_statistics()
            if not statistics:
                return False
            now = time.time()
            body = {
                "SamplingStatisticsDocuments": [
                    {
                        "RuleName": rule,
                        "ClientID": self.client_id,
                        "Timestamp": now,
                        "RequestCount": requests,
                        "SampledCount": sampled,
                        "BorrowCount": borrowed,
                    }
                    for rule, requests, sampled, borrowed in statistics
                ]
            }
            try:
                answer = self._exchange.json(
                    "POST", f"{self.endpoint}/SamplingTargets", time.monotonic() + self.timeout, self.timeout, body
                )
                applied = self._apply_targets(answer)
            except Exception as error:  # no usable answer: the counts go out again with the next report
                self._restore_statistics(statistics)
                self.report_failures += 1
                self._failed(error, "the targets in force stay")
                return False
            self.reports += 1
            self.reported_at = now
            self._recovered()
            self.target_interval = max(0.01, float(applied["interval"]))
            for rule in applied["unprocessed"]:
                _logger.warning("tracesieve: X-Ray did not take the statistics of rule %s", rule)
        if applied["refresh_rules"]:
            self.fetch_rules()
        return True

    def _failed(self, error: Exception, consequence: str) -> None:
        self.last_error = failure_text(error)[:300]
        if self.last_error != self._reported:
            self._reported = self.last_error
            _logger.warning("tracesieve: cannot use X-Ray's sampling endpoint %s (%s); %s", self.endpoint, self.last_error, consequence)

    def _recovered(self) -> None:
        if self._reported is not None:
            _logger.info("tracesieve: X-Ray's sampling endpoint %s answers again", self.endpoint)
        self._reported = None
        self.last_error = None

    def status(self) -> Dict[str, Any]:
        return {
            "source": self.endpoint,
            "client_id": self.client_id,
            "fetches": self.rule_fetches,
            "fetch_failures": self.rule_failures,
            "reports": self.reports,
            "report_failures": self.report_failures,
            "fetched_at": self.fetched_at,
            "reported_at": self.reported_at,
            "last_error": self.last_error,
            "polling_interval": self.interval,
            "target_interval": self.target_interval,
        }


def poller_for(native: Any, endpoint: str, polling_interval: float, timeout: float, report_interval: float) -> XRayPoller:
    """A poller feeding the X-Ray stage of ``native`` (a ``_core.NativeSampler``)."""
    return XRayPoller(
        endpoint,
        polling_interval,
        timeout,
        target_interval=report_interval,
        update_rules=native.xray_update_rules,
        apply_targets=native.xray_apply_targets,
        take_statistics=native.xray_take_statistics,
        restore_statistics=native.xray_restore_statistics,
    )


def status_of(native: Any, poller: Optional[XRayPoller], endpoint: str) -> Dict[str, Any]:
    """The X-Ray stage's state and polling, with per-rule decisions under
    ``operations`` (what the remote metrics read)."""
    status: Dict[str, Any] = native.xray_status()
    status["operations"] = {rule["name"]: {"decisions": rule["requests"]} for rule in status["rules"]}
    status["default"] = {"decisions": status["fallback_decisions"]}
    status.update(poller.status() if poller else {"source": endpoint, "fetches": 0, "fetch_failures": 0})
    return status


class XRayRemoteSampler(_NativeSampler):
    """A sampler deciding by AWS X-Ray's centralized sampling rules.

    Each rule (matched in priority order, then by name, on the service, its
    platform, the request's host, method and URL path, the resource ARN and
    attributes, with ``*`` and ``?`` wildcards) keeps traces from its
    reservoir first (a quota X-Ray leases to this client, one trace a second
    borrowed until X-Ray answers; these keeps carry no ``th``), then at its
    fixed rate as a consistent probability (``th`` written, so estimates stay
    right). Before the first rules, once they are an hour stale, and for a
    span no rule matches: one trace a second, then 5%.

    Args:
        resource: the ``Resource`` whose ``service.name``, ``cloud.platform``
            and ARNs the rules match (default: ``Resource.create()``).
        endpoint: the X-Ray daemon's or the Collector's ``awsproxy`` address.
        polling_interval: seconds between rules fetches (default 300), plus
            up to 5 s of jitter; statistics go every 10 s or as X-Ray asks.
        timeout: seconds one fetch or report may take in all.
        respect_parent: a span with a valid parent follows it (as the AWS samplers do).
        clock: callable returning Unix seconds, with ``monotonic()`` (tests,
            simulations: reservoirs and quota TTLs run on it).
        meter_provider: where its metrics go (the remote-strategy instruments;
            per-rule decisions as ``operation``).
        start: begin polling now (the first fetch is immediate, in the background).
        trust_incoming: False ignores what remote parents send.
        report_interval: seconds between statistics reports until X-Ray
            names an interval in its targets (default 10, as the AWS samplers).
    """

    def __init__(
        self,
        resource: Any = None,
        endpoint: str = DEFAULT_ENDPOINT,
        polling_interval: float = DEFAULT_POLLING_INTERVAL,
        *,
        timeout: float = 5.0,
        respect_parent: bool = True,
        defer: bool = False,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
        start: bool = True,
        trust_incoming: bool = True,
        report_interval: float = DEFAULT_TARGET_INTERVAL,
    ):
        facts = resource_facts(resource)
        check_meter_provider(meter_provider)
        self._endpoint = _base_url(endpoint)
        check_seconds("polling_interval", polling_interval, minimum=0.01)
        check_seconds("timeout", timeout, minimum=0.001)
        native = _core.NativeSampler.xray_remote(
            facts["service_name"],
            cloud_platform=facts["cloud_platform"],
            ecs_container_arn=facts["ecs_container_arn"],
            resource_id=facts["resource_id"],
            respect_parent=respect_parent,
            clock=clock,
            class_name=type(self).__name__,
        )
        self._clock = clock
        self._bind(native, defer, trust_incoming)
        self.service_name = facts["service_name"]
        self.poller: Optional[XRayPoller] = poller_for(native, endpoint, polling_interval, timeout, report_interval) if start else None
        from tracesieve.metrics import observe_remote

        observe_remote(self, meter_provider)

    def stats(self) -> Dict[str, Any]:
        """Decision counts, plus ``remote``: the rules in force with their
        targets and counts, fallback decisions, fetches and reports."""
        stats: Dict[str, Any] = dict(super().stats())
        stats["remote"] = self.remote_status()
        return stats

    def remote_status(self) -> Dict[str, Any]:
        return status_of(self._native, self.poller, self._endpoint)

    def update_rules(self, pages: List[Any]) -> bool:
        """Put ``GetSamplingRules`` answers (parsed JSON, every page) in force by hand; ``ConfigError`` when bad."""
        return bool(self._native.xray_update_rules(pages))

    def apply_targets(self, answer: Any) -> Dict[str, Any]:
        """Apply a ``SamplingTargets`` answer (parsed JSON) by hand; ``ConfigError`` when bad."""
        return dict(self._native.xray_apply_targets(answer))

    def take_statistics(self) -> Statistics:
        """Each rule's ``(name, requests, sampled, borrowed)`` since the last report, reset."""
        return list(self._native.xray_take_statistics())

    def rule_for(self, attributes: Optional[Dict[str, Any]] = None) -> Optional[str]:
        """The rule a root span with these attributes is decided by (None: the fallback)."""
        found: Optional[str] = self._native.xray_rule_for(attributes)
        return found

    def shutdown(self) -> None:
        """Stop polling (the rules and targets in force stay)."""
        if self.poller is not None:
            self.poller.stop(timeout=self.poller.timeout + 1)
