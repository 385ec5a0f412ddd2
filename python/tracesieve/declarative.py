"""OpenTelemetry declarative configuration files (``OTEL_CONFIG_FILE``): their
sampler section (``tracer_provider.sampler``), with tracesieve as a plugin
sampler in it.

The SDK builds a plugin sampler by calling its ``opentelemetry_sampler``
entry point with no argument, so the ``tracesieve`` entry point reads its own
node from the file ``OTEL_CONFIG_FILE`` names: the nodes are handed out in the
order the SDK builds them (a ``parent_based`` sampler's root, then its
``remote_parent_sampled``, ``remote_parent_not_sampled``,
``local_parent_sampled`` and ``local_parent_not_sampled`` delegates).

A ``tracesieve`` node holds a tracesieve pipeline document (its stages and
settings), or a ``composite/development`` section, evaluated natively with
tracesieve's own composable nodes allowed in it.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler

from tracesieve._checks import quoted
from tracesieve._core import ConfigError
from tracesieve.config import Source, load_config, source_path

#: Top-level keys that make a document an OpenTelemetry configuration file.
OTEL_KEYS = ("file_format", "tracer_provider")
#: The environment variable the SDK reads the configuration file's path from.
CONFIG_FILE_VARIABLE = "OTEL_CONFIG_FILE"
#: The name tracesieve has in a sampler section.
PLUGIN = "tracesieve"
COMPOSITE_KEYS = ("composite/development", "composite")
#: A ``parent_based`` sampler's delegates, in the order the SDK builds them.
PARENT_BASED_ORDER = ("root", "remote_parent_sampled", "remote_parent_not_sampled", "local_parent_sampled", "local_parent_not_sampled")
SAMPLERS = (
    "always_on",
    "always_off",
    "trace_id_ratio_based",
    "parent_based",
    "always_record",
    "composite/development",
    "probability/development",
    "jaeger_remote/development",
    PLUGIN,
)


class _AlwaysRecord(Sampler):
    """The specification's AlwaysRecord, for SDKs older than its own
    ``AlwaysRecordSampler`` (1.4x): its root's decision, a drop turned into
    RECORD_ONLY with the same attributes and trace state."""

    def __init__(self, root: Sampler):
        self._root = root

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **options: Any) -> Any:
        from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

        result = self._root.should_sample(parent_context, trace_id, name, *args, **options)
        if result.decision is Decision.DROP:
            result = SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"AlwaysRecordSampler{{{self._root.get_description()}}}"


def _always_record_class() -> Any:
    from opentelemetry.sdk.trace import sampling

    return getattr(sampling, "AlwaysRecordSampler", _AlwaysRecord)


#: The SDK's AlwaysRecordSampler where it has one, else the same decisions here.
AlwaysRecordSampler = _always_record_class()


def is_otel_config(document: Mapping[str, Any]) -> bool:
    """Whether a document is an OpenTelemetry configuration file (not a tracesieve one)."""
    return any(key in document for key in OTEL_KEYS)


def load(source: Source) -> Dict[str, Any]:
    """An OpenTelemetry configuration file, its environment references
    substituted, read as the SDK's loader reads it (a key given twice: the last)."""
    return load_config(source, substitute_env=True, unique_keys=False)


#: ``file_format``: MAJOR[.MINOR], with a pre-release tag ("1.0-rc.2") allowed.
_FILE_FORMAT = re.compile(r"(\d+)(?:\.(\d+))?(?:-[0-9A-Za-z.]+)?")
#: The schema's major version this reads, as the SDK's own loader does.
SUPPORTED_MAJOR = 1


def check_file_format(document: Mapping[str, Any], where: str = "") -> None:
    """Refuse a ``file_format`` the SDK's own loader refuses: one that is no
    version string, or of another major version than 1 (its sections could
    mean something else). A document without one (a mapping built in code) passes."""
    value = document.get("file_format")
    if value is None:
        return
    version = _FILE_FORMAT.fullmatch(value) if isinstance(value, str) else None
    if version is None:
        raise ConfigError(f'{where}file_format: {quoted(value)} is not a version string; expected one such as "1.0"')
    if int(version[1]) != SUPPORTED_MAJOR:
        raise ConfigError(
            f"{where}file_format: {quoted(value)} is not of major version {SUPPORTED_MAJOR}, which tracesieve "
            f"and the SDK read; expected {SUPPORTED_MAJOR}.x"
        )


def sampler_section(document: Mapping[str, Any], where: str = "") -> Mapping[str, Any]:
    """``tracer_provider.sampler``, checked to be a mapping (absent: ``parent_based`` with ``always_on``, the SDK's default)."""
    check_file_format(document, where)
    provider = document.get("tracer_provider") or {}
    if not isinstance(provider, Mapping):
        raise ConfigError(f"{where}tracer_provider: expected a mapping, got {type(provider).__name__}")
    section = provider.get("sampler")
    if section is None:
        return {"parent_based": {"root": {"always_on": None}}}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}tracer_provider.sampler: expected a mapping with one sampler, got {type(section).__name__}")
    return section


def _single(node: Any, path: str, where: str) -> Tuple[str, Any]:
    if not isinstance(node, Mapping) or len(node) != 1:
        got = ", ".join(node) if isinstance(node, Mapping) else type(node).__name__
        raise ConfigError(f"{where}{path}: expected exactly one sampler (one of {', '.join(SAMPLERS)}), got {got or 'nothing'}")
    ((name, spec),) = node.items()
    return name, spec


def plugin_nodes(section: Mapping[str, Any], path: str = "tracer_provider.sampler", where: str = "") -> List[Tuple[str, Any]]:
    """Every ``tracesieve`` node of a sampler section, with its path, in the
    order the SDK builds samplers (and so calls the entry point)."""
    name, spec = _single(section, path, where)
    if name == PLUGIN:
        return [(f"{path}.{PLUGIN}", spec)]
    if name == "parent_based" and isinstance(spec, Mapping):
        nodes: List[Tuple[str, Any]] = []
        for delegate in PARENT_BASED_ORDER:
            if spec.get(delegate) is not None:
                nodes.extend(plugin_nodes(spec[delegate], f"{path}.parent_based.{delegate}", where))
        return nodes
    if name == "always_record" and isinstance(spec, Mapping) and spec.get("root") is not None:
        return plugin_nodes(spec["root"], f"{path}.always_record.root", where)
    return []


def _ratio(spec: Any, path: str, where: str) -> float:
    ratio = (spec or {}).get("ratio", 1.0) if isinstance(spec, Mapping) else 1.0
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"{where}{path}.ratio: {quoted(ratio)} is out of range; expected a number in [0, 1]")
    return float(ratio)


def build_sampler(section: Mapping[str, Any], *, path: str = "tracer_provider.sampler", where: str = "", service: str = "") -> Sampler:
    """The sampler a sampler section describes, with the SDK's semantics for
    its built-in samplers; tracesieve's where it gives the same decisions."""
    from tracesieve.samplers import TraceIdRatioSampler

    name, spec = _single(section, path, where)
    here = f"{path}.{name}"
    if name == "always_on":
        return ALWAYS_ON
    if name == "always_off":
        return ALWAYS_OFF
    if name == "trace_id_ratio_based":
        return TraceIdRatioSampler(_ratio(spec, here, where), respect_parent=False)
    if name == "probability/development":
        # The specification's ProbabilitySampler is Composite(ComposableProbability).
        return _composite({"probability": {"ratio": _ratio(spec, here, where)}}, here, where)
    if name in COMPOSITE_KEYS:
        return _composite(spec, here, where)
    if name == PLUGIN:
        return plugin_sampler(spec, here, where, service)
    if name == "jaeger_remote/development":
        return _jaeger_remote(spec, here, where, service)
    if name == "always_record":
        # Every span goes to the processors; those the root drops are RECORD_ONLY, never exported.
        if not isinstance(spec, Mapping) or spec.get("root") is None:
            raise ConfigError(f"{where}{here}.root: missing; expected the sampler whose drops are recorded, such as {{parent_based: ...}}")
        unknown = [key for key in spec if key != "root"]
        if unknown:
            raise ConfigError(f"{where}{here}.{unknown[0]}: unknown setting; expected root")
        return AlwaysRecordSampler(build_sampler(spec["root"], path=f"{here}.root", where=where, service=service))
    if name == "parent_based":
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}{here}: expected a mapping of delegates, got {type(spec).__name__}")
        unknown = [key for key in spec if key not in PARENT_BASED_ORDER]
        if unknown:
            raise ConfigError(f"{where}{here}.{unknown[0]}: unknown delegate; expected one of {', '.join(PARENT_BASED_ORDER)}")
        delegates = {key: build_sampler(value, path=f"{here}.{key}", where=where, service=service) for key, value in spec.items() if value}
        root = delegates.pop("root", ALWAYS_ON)
        if not delegates and isinstance(root, TraceIdRatioSampler) and not root.respect_parent:
            return TraceIdRatioSampler(root.rate)  # ParentBased(TraceIdRatioBased), natively
        return ParentBased(root, **delegates)
    raise ConfigError(f"{where}{path}.{name}: unknown sampler; expected one of {', '.join(SAMPLERS)}")


def _composite(spec: Any, path: str, where: str) -> Sampler:
    from tracesieve.composable import CompositeSampler

    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}{path}: expected a composable sampler (a mapping), got {type(spec).__name__}")
    try:
        return CompositeSampler.from_spec(spec, path=path)
    except ConfigError as error:
        raise ConfigError(f"{where}{error}") from None


def plugin_sampler(spec: Any, path: str = PLUGIN, where: str = "", service: str = "") -> Sampler:
    """A ``tracesieve`` node: a composite section, or a pipeline document.
    ``service``: the file's ``service.name``, which names a budget's record
    when the budget does not (the SDK's resource comes from the file too, and
    ``OTEL_SERVICE_NAME`` does not apply to it)."""
    from tracesieve.pipeline import PipelineSampler

    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"{where}{path}: expected a tracesieve pipeline (its stages and settings) or a composite/development section")
    composite = [key for key in spec if key in COMPOSITE_KEYS]
    if composite:
        if len(spec) != 1:
            other = next(key for key in spec if key not in COMPOSITE_KEYS)
            raise ConfigError(f"{where}{path}.{other}: a composite section stands alone; put pipelines inside it as tracesieve nodes")
        return _composite(spec[composite[0]], f"{path}.{composite[0]}", where)
    if "tail" in spec:
        # Read by tracesieve.TracerProvider alone, which a file the SDK builds never makes: it would do nothing.
        raise ConfigError(
            f"{where}{path}.tail: a tail section is read by tracesieve.TracerProvider, and the SDK builds the provider "
            "of an OpenTelemetry configuration file; remove it (add a TailSamplingProcessor to the provider in code, "
            "with defer: true here) or use a tracesieve document with TracerProvider.from_config"
        )
    try:
        return PipelineSampler(dict(spec), service_name=service or None)
    except ConfigError as error:
        raise ConfigError(f"{where}{path}.{error}") from None


def _jaeger_remote(spec: Any, path: str, where: str, service: str) -> Sampler:
    from tracesieve.remote import JaegerRemoteSampler, resource_service_name

    if not isinstance(spec, Mapping) or "endpoint" not in spec:
        raise ConfigError(f"{where}{path}: missing field endpoint (the Jaeger sampling endpoint)")
    initial = spec.get("initial_sampler") or {"always_on": None}
    name, initial_spec = _single(initial, f"{path}.initial_sampler", where)
    if name in ("trace_id_ratio_based", "probability/development"):
        rate = _ratio(initial_spec, f"{path}.initial_sampler.{name}", where)
    elif name in ("always_on", "always_off"):
        rate = 1.0 if name == "always_on" else 0.0
    else:
        raise ConfigError(f"{where}{path}.initial_sampler: expected always_on, always_off, trace_id_ratio_based or probability/development")
    interval_ms = spec.get("interval", 60_000)
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, (int, float)) or interval_ms <= 0:
        raise ConfigError(f"{where}{path}.interval: {quoted(interval_ms)} is not a number of milliseconds > 0")
    return JaegerRemoteSampler(
        service or resource_service_name(),
        endpoint=str(spec["endpoint"]),
        polling_interval=interval_ms / 1000.0,
        initial_rate=rate,
        respect_parent=False,
    )


def service_name(document: Mapping[str, Any]) -> str:
    """``service.name`` from the file's ``resource.attributes``, if it sets one."""
    resource = document.get("resource") or {}
    attributes = resource.get("attributes") if isinstance(resource, Mapping) else None
    for attribute in attributes or []:
        if isinstance(attribute, Mapping) and attribute.get("name") == "service.name" and attribute.get("value"):
            return str(attribute["value"])
    return ""


def from_config(
    source: Source,
    *,
    clock: Optional[Callable[[], float]] = None,
    meter_provider: Any = None,
    reload: Optional[bool] = None,
) -> Sampler:
    """A sampler from a configuration: a tracesieve pipeline (a dict, or a TOML
    / YAML / JSON file; see :func:`tracesieve.pipeline.from_config`), or a
    whole OpenTelemetry configuration file (one with ``file_format`` or
    ``tracer_provider`` at its top), whose ``tracer_provider.sampler`` section
    it builds: a ``tracesieve`` node or a ``composite/development`` section
    natively, the SDK's built-in samplers with the SDK's decisions."""
    from tracesieve.pipeline import from_config as pipeline_from_config

    if _is_otel_config(source):
        return from_otel_config(source)
    return pipeline_from_config(source, clock=clock, meter_provider=meter_provider, reload=reload)


def _is_otel_config(source: Source) -> bool:
    if isinstance(source, Mapping):
        return is_otel_config(source)
    if source_path(source).suffix.lower() not in (".yaml", ".yml", ".json"):
        return False
    return is_otel_config(load_config(source, unique_keys=False))


def from_otel_config(source: Source) -> Sampler:
    """The sampler of an OpenTelemetry configuration file (or document)."""
    where = "" if isinstance(source, Mapping) else f"{source_path(source)}: "
    document = load(source)
    section = sampler_section(document, where)
    if not isinstance(source, Mapping):
        _anchor_nodes(section, where, source_path(source).absolute())
    return build_sampler(section, where=where, service=service_name(document))


def _anchor_nodes(section: Mapping[str, Any], where: str, file: Path) -> None:
    """Take each tracesieve node's relative ``budget.state_path`` from the
    file's folder, as in a tracesieve document, not from wherever the service
    runs (``/`` for many)."""
    from tracesieve.pipeline import anchored

    for _, spec in plugin_nodes(section, where=where):
        if isinstance(spec, dict) and "budget" in spec:
            spec["budget"] = anchored(spec, file)["budget"]


_handed_out: Dict[Tuple[str, int, int], int] = {}
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a thread building a sampler may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def next_plugin_node() -> Optional[Tuple[str, str, Any, str]]:
    """For the entry point: the next ``tracesieve`` node of the file
    ``OTEL_CONFIG_FILE`` names, as ``(where, path, spec, service)`` (service:
    the file's ``service.name``, or ""); None when no such file is set, or it
    has no ``tracesieve`` node."""
    name = os.environ.get(CONFIG_FILE_VARIABLE, "").strip()
    if not name:
        return None
    path = Path(name)
    where = f"{path}: "
    document = load(path)
    nodes = plugin_nodes(sampler_section(document, where), where=where)
    if not nodes:
        return None
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _lock:
        index = _handed_out.get(key, 0)
        _handed_out[key] = index + 1
    node_path, spec = nodes[index % len(nodes)]
    if isinstance(spec, Mapping):
        from tracesieve.pipeline import anchored

        spec = anchored(spec, path.absolute())
    return where, node_path, spec, service_name(document)
