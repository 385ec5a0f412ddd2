"""The full pipeline as one sampler, built from a configuration document:
force-keep rules, the adaptive boost, rules, budget pacing and a rate limit,
composed natively in the order written. Optional live reload and metrics.

The native parser reads the document once and hands back the resolved
settings (every default filled in) and the plan in plain words; this module
only wires what it says: the error-window processor, state snapshots, the
file watcher and metrics.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from tracesieve import _core, record
from tracesieve._background import BackgroundThread
from tracesieve._checks import check_meter_provider, shown
from tracesieve._scrub import scrubbed_logger
from tracesieve.adaptive import ErrorWindowProcessor
from tracesieve.budget import status_report
from tracesieve.config import ConfigError, Source, load_config, source_path
from tracesieve.remote import StrategyPoller
from tracesieve.samplers import _NativeSampler
from tracesieve.state import StateFile, checked_state_file
from tracesieve.xray import XRayPoller, status_of

__all__ = ["PipelineSampler", "from_config"]

_logger = scrubbed_logger("tracesieve.config")

Built = Tuple[_core.NativeSampler, Optional[_core.NativeSignals], Dict[str, Any], List[str]]


def build(document: Mapping[str, Any], *, clock: Any = None, signals: Any = None, previous: Any = None, where: str = "") -> Built:
    """Parse a document natively: (sampler, signals or None, resolved document,
    description lines). ``previous``: the native sampler a reload replaces,
    whose pacing and rate limit carry over. Errors are ``ConfigError``
    prefixed with ``where``."""
    document, budget_store = record.resolve_pipeline(document, clock)
    try:
        return _core.NativeSampler.pipeline(
            document, clock=clock, signals=signals, previous=previous, budget_store=budget_store, class_name="PipelineSampler"
        )
    except ConfigError as error:
        raise ConfigError(f"{where}{error}") from None


def anchored(document: Mapping[str, Any], source: Optional[Path]) -> Mapping[str, Any]:
    """``document`` with a relative ``budget.state_path`` taken from the folder
    of ``source`` (the file it was read from, absolute), as a path written in
    a file is read, not from wherever the process happens to run (``/`` for
    many services)."""
    budget = document.get("budget")
    if source is None or not isinstance(budget, Mapping):
        return document
    path = budget.get("state_path")
    if not isinstance(path, str) or not path or os.path.isabs(path):
        return document
    return {**document, "budget": {**budget, "state_path": os.path.join(source.parent, path)}}


def stage(resolved: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    """A resolved stage's settings, or None when the document has no such stage."""
    return next((s for s in resolved["stages"] if s["stage"] == name), None)


class PipelineSampler(_NativeSampler):
    """A sampler built from a configuration document (see ``from_config``).

    ``service_name``: the service a budget keeps its host record under when
    the document's budget gives no ``name`` (``TracerProvider.from_config``
    passes its resource's ``service.name``, a declarative file's ``tracesieve``
    node the file's); None: the ``service_name`` of a ``jaeger_remote`` or
    ``xray_remote`` stage, else ``OTEL_SERVICE_NAME`` and so on.

    Attributes:
        processor: the ``ErrorWindowProcessor`` feeding the adaptive stage (None
            without one); add it to the provider.
        source: the file it was loaded from (as an absolute path), if any.
        settings: the document's settings with every default filled in.
        description: the compiled plan in plain words.
    """

    def __init__(
        self,
        source: Source,
        *,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
        reload: Optional[bool] = None,
        service_name: Optional[str] = None,
    ):
        check_meter_provider(meter_provider)
        if service_name is not None and not (isinstance(service_name, str) and service_name):
            raise ConfigError(
                f"service_name: expected None or a non-empty string (the service a budget's record is for), got {shown(service_name)}"
            )
        self._service_name = service_name
        # Absolute now: a daemon that later changes its working directory (to /, as
        # daemons do) would otherwise reload from another file, or from none.
        self.source = None if isinstance(source, Mapping) else source_path(source).absolute()
        self._where = f"{self.source}: " if self.source else ""
        self._clock = clock
        document = self._named(self._anchored(load_config(source)))
        native, signals, resolved, description = build(document, clock=clock, where=self._where)
        # Read by the provider when it is built (TracerProvider.from_config); a reload leaves it.
        self._tail_section = document.get("tail")
        self.processor: Optional[ErrorWindowProcessor] = None
        if signals is not None:
            self.processor = ErrorWindowProcessor._wrap(signals, clock)
        self._retired: Dict[str, int] = {}
        self._lock = threading.Lock()
        self._apply(native, resolved, description)
        self.reloads = 0
        self.reload_failures = 0
        self._state: Optional[StateFile] = None
        self._follow_state_path(stage(resolved, "budget"), carried=False)
        if stage(resolved, "budget") is not None:
            record.say_counted_afresh(self._native)
        self._poller: Optional[StrategyPoller] = None
        self._xray_poller: Optional[XRayPoller] = None
        self._poll_remote()
        self._watcher: Optional[_Watcher] = None
        # reload= given here overrides the file's setting, then and after every reload.
        self._reload_argument = reload
        watch = self.settings["reload"] if reload is None else reload
        if watch:
            if self.source is None:
                raise ConfigError("reload: only a configuration file can be reloaded")
            self._watcher = _Watcher(self, self.settings["reload_interval"])
        from tracesieve.metrics import observe_sampler

        observe_sampler(self, meter_provider)

    def _apply(self, native: _core.NativeSampler, resolved: Dict[str, Any], description: List[str]) -> None:
        self.settings: Dict[str, Any] = resolved["settings"]
        self.resolved = resolved
        self._description = description
        if self.processor is not None:
            self.processor._native.set_all_recorded(self.settings["defer"])
        self._bind(native, self.settings["defer"])  # one attribute store: threads see the old or the new policy

    @property
    def description(self) -> List[str]:
        """The compiled plan in plain words, as the native parser derived it."""
        return self._description

    def reload(self) -> bool:
        """Re-read the file now. A bad file is logged and the old policy stays in force."""
        if self.source is None:
            return False
        try:
            signals = self.processor._native if self.processor is not None else None
            document = self._named(self._anchored(load_config(self.source)))
            native, added_signals, resolved, description = build(
                document, clock=self._clock, signals=signals, previous=self._native, where=self._where
            )
            budget, key = stage(resolved, "budget"), _state_key(stage(resolved, "budget"))
            if budget is not None and key is not None and (self._state is None or key != self._state.key):
                checked_state_file(budget["state_path"])  # a new state file is refused here, before anything changes
            problem = native.store_info()["problem"]
            if problem and not self._native.store_info()["problem"]:
                # A store usable until now (its lock held by a stopped process, say): the
                # policy in force keeps sharing rather than moving this process to its own state.
                raise ConfigError(f"store: {problem}")
        except Exception as error:  # a bad file, or numbers beyond range: never the watcher's end
            self.reload_failures += 1
            _logger.error("tracesieve: keeping the current sampling policy; %s: %s", type(error).__name__, error)
            return False
        with self._lock:
            old = self._native
            for key, value in old.stats().items():
                if isinstance(value, int) and not isinstance(value, bool):
                    self._retired[key] = self._retired.get(key, 0) + value
            before = stage(self.resolved, "budget")
            if self._state is not None and self._state.key != _state_key(budget):
                self._state.save()  # the last snapshot where it was kept, by the policy that counted it
            self._apply(native, resolved, description)
            self._follow_state_path(budget, carried=before is not None)
            self.reloads += 1
        if budget is not None:
            record.say_counted_afresh(self._native)
        self._poll_remote()
        _logger.info("tracesieve: sampling policy reloaded from %s", self.source)
        self._follow_watch_settings()
        if document.get("tail") != self._tail_section:
            _logger.warning(
                "tracesieve: %s: the tail settings changed, and a reload leaves them as they were: the provider read "
                "them when it was built (restart to apply them)",
                self.source,
            )
        if signals is None and added_signals is not None:
            # Its processor would have to be added to the provider, which was built already.
            _logger.warning(
                "tracesieve: %s: the reloaded policy adds an adaptive stage, but nothing feeds it errors: the sampler "
                "was built without one, so it has no processor on the provider; its boost stays x1 until a restart",
                self.source,
            )
        return True

    def _named(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """``document`` with its budget's ``name``, when it gives none, from
        ``service_name``, else from the service its remote stage names."""
        budget = document.get("budget")
        service = self._service_name or record.document_service(document)
        if service is None or not isinstance(budget, Mapping) or "name" in budget:
            return document
        return {**document, "budget": {**budget, "name": service}}

    def _anchored(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        return anchored(document, self.source)

    def _follow_watch_settings(self) -> None:
        """Watch the file as the reloaded settings say (unless ``reload=`` was given to the constructor)."""
        if self._reload_argument is None and self._watcher is not None and not self.settings["reload"]:
            self._watcher.stop()
            self._watcher = None
            _logger.info("tracesieve: %s sets reload = false: it is no longer watched", self.source)
        elif self._reload_argument is None and self._watcher is None and self.settings["reload"]:
            self._watcher = _Watcher(self, self.settings["reload_interval"])
        if self._watcher is not None:
            self._watcher.interval = self.settings["reload_interval"]

    def _follow_state_path(self, budget: Optional[Mapping[str, Any]], *, carried: bool) -> None:
        """Keep the budget's snapshots where the document in force says: the
        same file on, a new one when the path changed (restored from only when
        the budget is new, as a count carried on in memory is the truer one),
        none when the budget or its ``state_path`` was taken out."""
        key = _state_key(budget)
        if self._state is not None and self._state.key != key:
            self._state.stop()
            self._state = None
        if budget is None or key is None:
            return
        if self._state is None:
            self._state = StateFile(Path(budget["state_path"]), self, budget["save_interval"], restore=not carried)
        self._state.interval = budget["save_interval"]

    def stats(self) -> Dict[str, Any]:
        """Counts for the whole pipeline (accumulated across reloads)."""
        with self._lock:
            stats = self._native.stats()
            for key, value in self._retired.items():
                if key in stats and not isinstance(stats[key], dict):
                    stats[key] += value
        stats["reloads"] = self.reloads
        stats["reload_failures"] = self.reload_failures
        return stats

    def budget_status(self) -> Dict[str, Any]:
        """The budget stage's spending (see ``BudgetSampler.budget_status``)."""
        budget = stage(self.resolved, "budget")
        if budget is None:
            raise TypeError("budget_status() needs a pipeline with a budget stage")
        return status_report(self._native.budget_status(), budget["budget"], budget["cost_per_span"])

    def explain(
        self,
        name: str,
        attributes: Optional[Mapping[str, Any]] = None,
        *,
        kind: Any = None,
        parent: bool = False,
        now: Optional[float] = None,
    ) -> Dict[str, Any]:
        """How the plan would decide a span like this, stage by stage, with the
        boost and pace in force: ``{"lines", "probability", "th"}``. ``now``
        (Unix seconds) asks about another instant: rules read its time of day;
        the budget's line and the boost's windows are read as they would stand
        then with nothing spent meanwhile (at an earlier instant, as they stand now)."""
        return self._native.explain_plan(name, kind=kind, attributes=attributes, parent=parent, now=now)

    def _poll_remote(self) -> None:
        """Poll the jaeger_remote or xray_remote stage's source (restarted when a reload changes it)."""
        self._poll_xray()
        remote = stage(self.resolved, "jaeger_remote")
        wanted = None if remote is None else (remote["service_name"], remote["endpoint"], remote["polling_interval"], remote["timeout"])
        current = (
            None
            if self._poller is None
            else (self._poller.service_name, self._poller.source_endpoint, self._poller.interval, self._poller.timeout)
        )
        if wanted == current:
            return
        if self._poller is not None:
            self._poller.stop(timeout=self._poller.timeout + 1)
            self._poller = None
        if remote is not None:
            # Applied to the sampler in force at each fetch (a reload may replace it).
            self._poller = StrategyPoller(
                remote["service_name"],
                remote["endpoint"],
                remote["polling_interval"],
                remote["timeout"],
                lambda doc: self._native.remote_update(doc),
                notes=lambda: self._native.remote_status()["notes"],
                in_force=lambda: self._native.remote_status()["strategy"],
            )

    def _poll_xray(self) -> None:
        xray = stage(self.resolved, "xray_remote")
        wanted = None if xray is None else (xray["endpoint"], xray["polling_interval"], xray["timeout"])
        poller = self._xray_poller
        if wanted == (None if poller is None else (poller.endpoint, poller.interval, poller.timeout)):
            return
        if poller is not None:
            poller.stop(timeout=poller.timeout + 1)
            self._xray_poller = None
        if xray is not None:
            # Each call goes to the sampler in force (a reload may replace it; the X-Ray state carries over).
            self._xray_poller = XRayPoller(
                xray["endpoint"],
                xray["polling_interval"],
                xray["timeout"],
                update_rules=lambda pages: self._native.xray_update_rules(pages),
                apply_targets=lambda answer: self._native.xray_apply_targets(answer),
                take_statistics=lambda: self._native.xray_take_statistics(),
                restore_statistics=lambda statistics: self._native.xray_restore_statistics(statistics),
            )

    def remote_status(self) -> Dict[str, Any]:
        """The jaeger_remote or xray_remote stage's state and polling (see
        ``JaegerRemoteSampler.remote_status``, ``XRayRemoteSampler.remote_status``)."""
        xray = stage(self.resolved, "xray_remote")
        if xray is not None:
            return status_of(self._native, self._xray_poller, xray["endpoint"])
        if self._poller is None:
            raise TypeError("remote_status() needs a pipeline with a jaeger_remote or xray_remote stage")
        status: Dict[str, Any] = self._native.remote_status()
        status.update(self._poller.status())
        return status

    def save_state(self) -> None:
        """Write the budget's spending snapshot now (when the budget stage has a ``state_path``)."""
        if self._state is not None:
            self._state.save()

    def close(self) -> None:
        """Stop watching the file and saving state snapshots (after a last save)."""
        if self._watcher is not None:
            self._watcher.stop()
        if self._xray_poller is not None:
            self._xray_poller.stop()
        if self._poller is not None:
            self._poller.stop()
        if self._state is not None:
            self._state.save()
            self._state.stop()


def _state_key(budget: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Which file a budget stage's snapshots go to (as ``StateFile.key``), or None."""
    if budget is None or budget["state_path"] is None:
        return None
    return os.path.realpath(budget["state_path"])


def from_config(
    source: Source,
    *,
    clock: Optional[Callable[[], float]] = None,
    meter_provider: Any = None,
    reload: Optional[bool] = None,
) -> PipelineSampler:
    """Build the whole sampling pipeline from a dict or a TOML / YAML / JSON file.

    Stages are composed in the order written; the seed's order is
    ``force_keep`` (keep rules; not capped by the budget unless
    ``capped_by_budget = true``), ``adaptive`` (the error/latency boost),
    ``rules`` (per-route, tier and schedule rates), ``budget`` (pacing) and
    ``rate_limit`` (a token bucket, traces per second). Settings:
    ``respect_parent``, ``precision``, ``record_rule`` (add the deciding rule's
    name as the span attribute ``tracesieve.rule``), ``defer``, ``reload`` and
    ``reload_interval`` (re-read the file when it changes).

    Every mistake fails here with a ``ConfigError`` naming the file, the key
    path and what is valid.
    """
    return PipelineSampler(source, clock=clock, meter_provider=meter_provider, reload=reload)


class _Watcher:
    """Polls the configuration file and reloads it when it changes, on a
    background thread that survives any file and starts again after fork."""

    def __init__(self, sampler: PipelineSampler, interval: float):
        self._sampler = weakref.ref(sampler)
        assert sampler.source is not None
        self._path = sampler.source
        self.interval = interval
        self._stamp = self._read_stamp()
        self._thread = BackgroundThread("tracesieve-config-reload", self._run)
        self._thread.start()

    def _read_stamp(self) -> Optional[Tuple[int, ...]]:
        """What a change of the file shows in: its contents' time and size, and
        the mode and owner of it and its folder, whose mending makes a file
        refused as open to every user readable with its contents unchanged."""
        try:
            stat, folder = self._path.stat(), self._path.parent.stat()
            return (stat.st_mtime_ns, stat.st_size, stat.st_mode, stat.st_uid, folder.st_mode, folder.st_uid)
        except OSError:
            return None

    def _run(self, thread: BackgroundThread) -> None:
        while thread.sleep(self.interval):
            sampler = self._sampler()
            if sampler is None:
                return
            stamp = self._read_stamp()
            if stamp is None and self._stamp is not None:
                # Said once per disappearance; a file that comes back is reloaded.
                _logger.warning("tracesieve: %s cannot be read any more; the current policy stays in force until it is back", self._path)
                self._stamp = None
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                try:
                    sampler.reload()
                except Exception:  # the watcher must outlive any file
                    _logger.exception("tracesieve: reloading %s failed; the current policy stays in force", self._path)

    def stop(self) -> None:
        self._thread.stop()
