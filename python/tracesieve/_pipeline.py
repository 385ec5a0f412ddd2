"""The full pipeline as one sampler, built from a dict or a TOML / YAML / JSON
file: force-keep rules, the adaptive boost, rules, budget pacing and a rate
limit, composed natively in the order written. Optional live reload and
OpenTelemetry metrics."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Union

from tracesieve import _core
from tracesieve._adaptive import ErrorWindowProcessor
from tracesieve._budget import _StateFile
from tracesieve._samplers import _NativeSampler

__all__ = ["PipelineSampler", "from_config", "load_config"]

_logger = logging.getLogger("tracesieve.config")
Source = Union[Mapping[str, Any], str, os.PathLike]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names file, key and what is valid."""


def load_config(source: Source) -> Dict[str, Any]:
    """The configuration document from a mapping or a ``.toml`` / ``.yaml`` /
    ``.yml`` / ``.json`` file. YAML is read with safe loading only."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; expected a tracesieve configuration (.toml, .yaml or .json)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
        if data is None:
            data = {}
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    else:
        raise ConfigError(f"{path}: unknown file type {suffix or '(none)'!r}; expected .toml, .yaml, .yml or .json")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of stages and settings at the top level, got {type(data).__name__}")
    return data


def _build(document: Dict[str, Any], clock, signals, where: str):
    try:
        return _core.NativeSampler.pipeline(document, clock=clock, signals=signals, class_name="PipelineSampler")
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}{error}") from None


class PipelineSampler(_NativeSampler):
    """A sampler built from a configuration document (see ``from_config``).

    Attributes:
        processor: the ``ErrorWindowProcessor`` feeding the adaptive stage (None
            without one); add it to the provider.
        source: the file it was loaded from, if any.
    """

    def __init__(
        self,
        source: Source,
        *,
        clock: Optional[Callable[[], float]] = None,
        meter_provider: Any = None,
        reload: Optional[bool] = None,
    ):
        self.source = None if isinstance(source, Mapping) else Path(source)
        self._where = f"{self.source}: " if self.source else ""
        document = load_config(source)
        self._clock = clock
        native, signals = _build(document, clock, None, self._where)
        self.processor: Optional[ErrorWindowProcessor] = None
        if signals is not None:
            processor = ErrorWindowProcessor.__new__(ErrorWindowProcessor)
            processor._native = signals
            processor._clock = clock
            processor.on_end = signals.on_end
            processor.record_error = signals.record_error
            self.processor = processor
        self._retired: Dict[str, int] = {}
        self._lock = threading.Lock()
        self._defer = bool(document.get("defer", False))
        self._bind(native, self._defer)
        self._document = document
        self.reloads = 0
        self.reload_failures = 0
        self._state = None
        state_path = (document.get("budget") or {}).get("state_path") if isinstance(document.get("budget"), dict) else None
        if state_path:
            self._state = _StateFile(Path(state_path), self, float(document["budget"].get("save_interval", 10.0)))
        self._watcher = None
        if reload if reload is not None else bool(document.get("reload", False)):
            if self.source is None:
                raise ConfigError("reload: only a configuration file can be reloaded")
            interval = float(document.get("reload_interval", 2.0))
            self._watcher = _Watcher(self, interval)
        if meter_provider is not None or _metrics_configured():
            _register_metrics(self, meter_provider)

    def reload(self) -> bool:
        """Re-read the file now. A bad file is logged and the old policy stays in force."""
        if self.source is None:
            return False
        try:
            document = load_config(self.source)
            signals = self.processor._native if self.processor is not None else None
            native, _ = _build(document, self._clock, signals, self._where)
        except ConfigError as error:
            self.reload_failures += 1
            _logger.error("tracesieve: keeping the current sampling policy; %s", error)
            return False
        with self._lock:
            old = self._native
            if "budget" in document:
                try:
                    status = old.budget_status()
                    native.restore_budget(status["period_start"], status["used_spans"])
                except TypeError:
                    pass
            for key, value in old.stats().items():
                if isinstance(value, int) and not isinstance(value, bool):
                    self._retired[key] = self._retired.get(key, 0) + value
            self._defer = bool(document.get("defer", False))
            self._bind(native, self._defer)  # one attribute store: threads see the old or the new policy
            self._document = document
            self.reloads += 1
        _logger.info("tracesieve: sampling policy reloaded from %s", self.source)
        return True

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
        from tracesieve._budget import status_report

        spec = self._document.get("budget") or {}
        cost = float(spec.get("cost_per_span", 1.0))
        return status_report(self._native.budget_status(), float(spec.get("budget", 0.0)), cost)

    def close(self) -> None:
        """Stop watching the file."""
        if self._watcher is not None:
            self._watcher.stop()


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
    name as the span attribute ``tracesieve.rule``), ``reload`` and
    ``reload_interval`` (re-read the file when it changes).

    Every mistake fails here, naming the file, the key path and what is valid.
    """
    return PipelineSampler(source, clock=clock, meter_provider=meter_provider, reload=reload)


class _Watcher:
    """Polls the configuration file and reloads it when it changes."""

    def __init__(self, sampler: PipelineSampler, interval: float):
        self._sampler = weakref.ref(sampler)
        self._path = sampler.source
        self._stamp = self._read_stamp()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="tracesieve-config-reload", daemon=True)
        self._thread.start()

    def _read_stamp(self):
        try:
            stat = self._path.stat()
            return (stat.st_mtime_ns, stat.st_size)
        except OSError:
            return None

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            sampler = self._sampler()
            if sampler is None:
                return
            stamp = self._read_stamp()
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                sampler.reload()

    def stop(self) -> None:
        self._stop.set()


def _metrics_configured() -> bool:
    try:
        from opentelemetry.metrics import get_meter_provider
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:  # pragma: no cover
        return False
    return isinstance(get_meter_provider(), MeterProvider)


def _register_metrics(sampler: PipelineSampler, meter_provider: Any) -> None:
    """Observable instruments that read the pipeline's counters at collection time."""
    from opentelemetry.metrics import Observation, get_meter_provider

    from tracesieve import __version__

    provider = meter_provider if meter_provider is not None else get_meter_provider()
    meter = provider.get_meter("tracesieve", __version__)
    ref = weakref.ref(sampler)

    def stats() -> Optional[Dict[str, Any]]:
        s = ref()
        return None if s is None else s.stats()

    def decisions(options):
        current = stats()
        if not current:
            return
        yield Observation(current["sampled"], {"outcome": "sampled"})
        yield Observation(current["dropped"], {"outcome": "dropped"})
        for rule, counts in current.get("rules", {}).items():
            yield Observation(counts["sampled"], {"outcome": "sampled", "rule": rule})
            yield Observation(counts["decisions"] - counts["sampled"], {"outcome": "dropped", "rule": rule})

    meter.create_observable_counter(
        "tracesieve.sampler.decisions", callbacks=[decisions], unit="{span}", description="Sampling decisions by outcome and rule"
    )

    def budget(options):
        s = ref()
        if s is None:
            return
        try:
            status = s.budget_status()
        except TypeError:
            return
        yield Observation(status["used_spans"], {"state": "used"})
        yield Observation(status["remaining_spans"], {"state": "remaining"})

    meter.create_observable_gauge(
        "tracesieve.budget.spans", callbacks=[budget], unit="{span}", description="Budget used and remaining this period"
    )

    def boost(options):
        current = stats()
        if current and "boost" in current:
            yield Observation(current["boost"])

    meter.create_observable_gauge("tracesieve.adaptive.boost", callbacks=[boost], unit="1", description="Current adaptive multiplier")
