"""Configuration documents: their typed shape, and loading them from files.

This module owns reading: a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file is
read once, with bounds on size, nesting and YAML aliases, and every mistake is a
:class:`ConfigError` naming the file. What a document *means* (defaults, ranges,
stage order) is decided natively, once, when a sampler is built from it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, TypedDict, Union

from tracesieve._checks import check_path, quoted, shown
from tracesieve._core import ConfigError
from tracesieve._files import NotARegularFile, OpenToEveryone, open_trusted

__all__ = [
    "AdaptiveStage",
    "BudgetStage",
    "ConfigError",
    "Document",
    "ForceKeepStage",
    "JaegerRemoteStage",
    "Multiplier",
    "PolicyDocument",
    "ProbabilityStage",
    "RateLimitStage",
    "Rule",
    "RulesStage",
    "Source",
    "load_config",
    "load_policy",
]

#: Largest configuration file read, in bytes.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deepest nesting of tables and lists accepted.
MAX_DEPTH = 32
#: Most values a document may expand to: YAML aliases (``*name``) can make a
#: small file stand for an enormous document ("billion laughs").
MAX_VALUES = 1_000_000

Condition = Union[str, int, float, bool, Dict[str, Any]]


class Rule(TypedDict, total=False):
    """One rule: conditions, and exactly one of ``rate`` or ``action``."""

    name: str
    span_name: Condition
    route: Condition
    kind: Union[str, List[str]]
    root: bool
    match: Dict[str, Condition]
    rate: float
    action: str  # "keep" or "drop"


class Multiplier(TypedDict, total=False):
    """``{"attribute", "factors", "default"}`` or ``{"schedule": {"timezone", "windows"}}``."""

    attribute: str
    factors: Dict[str, float]
    default: float
    schedule: Dict[str, Any]


class _ForceKeepRequired(TypedDict):
    rules: List[Rule]


class ForceKeepStage(_ForceKeepRequired, total=False):
    capped_by_budget: bool


class AdaptiveStage(TypedDict, total=False):
    error_steps: List[List[float]]
    error_rate_target: float
    min_spans: int
    latency_boost: float
    slow_ratio: float
    max_boost: float
    window: float
    resolution: float
    slow_threshold: float
    route_thresholds: Dict[str, float]


class _RulesRequired(TypedDict):
    rules: List[Rule]
    default_rate: float


class RulesStage(_RulesRequired, total=False):
    multipliers: List[Multiplier]


class ProbabilityStage(TypedDict):
    rate: float


class _BudgetRequired(TypedDict):
    budget: float


class BudgetStage(_BudgetRequired, total=False):
    cost_per_span: float
    period: str  # hour, day, week, month
    timezone: str
    state_path: str
    save_interval: float
    downstream: str  # pace, follow
    name: str  # the service its host record is filed under


class _JaegerRemoteRequired(TypedDict):
    service_name: str


class JaegerRemoteStage(_JaegerRemoteRequired, total=False):
    endpoint: str  # http://host:5778 or file:///path.json
    polling_interval: float
    timeout: float
    initial_rate: float
    max_operations: int


class XRayRemoteStage(TypedDict, total=False):
    endpoint: str  # the X-Ray daemon or collector: http://127.0.0.1:2000
    polling_interval: float
    timeout: float
    service_name: str
    cloud_platform: str  # aws_ec2, aws_ecs, aws_eks, aws_lambda...


class TailSection(TypedDict, total=False):
    """``tracesieve.TracerProvider``'s tail settings (``TracerProvider.from_config``)."""

    decision_wait: float
    trace_timeout: float
    latency_threshold: float
    latency_probability: float
    rules: List[Rule]
    max_traces: int
    max_spans_per_trace: int
    decision_cache_size: int
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay: float
    shutdown_timeout: float
    share: str
    share_interval: float
    share_ttl: float
    budget_priorities: List[str]
    budget_exempt: List[str]
    retention_bytes: int


class _RateLimitRequired(TypedDict):
    traces_per_second: float


class RateLimitStage(_RateLimitRequired, total=False):
    burst: float


class Document(TypedDict, total=False):
    """A pipeline configuration (``from_config``); stages run in the order written."""

    respect_parent: bool
    trust_incoming: bool  # false at an edge service: spans with a remote parent are decided afresh
    precision: int
    record_rule: bool
    defer: bool
    reload: bool
    reload_interval: float
    # memory, host, file:///path[#name] (the host's processes) or redis://host/0[#fleet] (a fleet):
    # where the budget, rate limit and windows live
    store: Optional[str]
    tail: TailSection  # read by TracerProvider.from_config
    force_keep: ForceKeepStage
    adaptive: AdaptiveStage
    rules: RulesStage
    probability: ProbabilityStage
    jaeger_remote: JaegerRemoteStage
    xray_remote: XRayRemoteStage
    budget: BudgetStage
    rate_limit: RateLimitStage


class PolicyDocument(TypedDict, total=False):
    """A rules file for ``OTEL_TRACES_SAMPLER=tracesieve_rules``: ``RuleSampler``'s arguments."""

    rules: List[Rule]
    default_rate: float
    multipliers: List[Multiplier]
    respect_parent: bool
    trust_incoming: bool
    precision: int


Source = Union[Mapping[str, Any], str, "os.PathLike[str]"]
POLICY_KEYS = ("rules", "default_rate", "multipliers", "respect_parent", "trust_incoming", "precision")


def source_path(source: Any) -> Path:
    """The file a configuration source names: text or an ``os.PathLike``."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if isinstance(name, str) and name:
            return Path(check_path("source", name))
    raise ConfigError(f"source: expected a configuration: a mapping, or the path of a .toml, .yaml or .json file; got {shown(source)}")


def load_config(source: Source, *, substitute_env: bool = False, unique_keys: bool = True) -> Dict[str, Any]:
    """The configuration document from a mapping, or from a ``.toml``,
    ``.yaml``/``.yml`` or ``.json`` file (YAML with safe loading only).

    ``substitute_env``: replace ``${VAR}``, ``${VAR:-default}`` (and ``$$``) in
    the values of a YAML or JSON file, as OpenTelemetry's declarative
    configuration does: after parsing, so keys and comments are never touched;
    a plain YAML value that was a reference takes the type its text reads as.

    ``unique_keys``: refuse a key given twice in one YAML or JSON mapping
    (their parsers keep the last silently; TOML refuses it itself). False
    reads such a file as OpenTelemetry's own loader does, the last one winning.

    Raises :class:`ConfigError`, naming the file, for a missing or unreadable
    file, a file over 4 MiB, malformed text, nesting deeper than 32 levels, a
    document that expands to more than a million values (YAML aliases), a value
    no parser reads (an integer of more than 4,300 digits, a YAML date that is
    no date), an empty document, or a top level that is not a table.
    """
    if isinstance(source, Mapping):
        return dict(source)
    path = source_path(source)
    text = _read(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = _toml(path, text)
        elif suffix in (".yaml", ".yml"):
            data = _yaml(path, text, substitute_env, unique_keys)
        elif suffix == ".json":
            data = _json(path, text, unique_keys)
            if substitute_env:
                try:
                    data = _substituted(data, _Expansion(path))
                except InvalidReference as error:
                    raise ConfigError(f"{path}: {error}") from None
        else:
            raise ConfigError(f"{path}: unknown file type {suffix or '(none)'!r}; expected .toml, .yaml, .yml or .json")
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply; expected at most {MAX_DEPTH} levels") from None
    except ConfigError:
        raise
    except ValueError as error:
        # What the parsers' own errors miss: a YAML date that is no date (2001-13-45),
        # or an integer of more than 4,300 digits (Python's limit), in any format.
        problem = "a number of more than 4,300 digits" if "integer string conversion" in str(error) else str(error)
        raise ConfigError(f"{path}: unreadable value: {problem}; expected a configuration's numbers, text and tables") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of stages and settings at the top level, got {type(data).__name__}")
    if not data:
        raise ConfigError(f"{path}: empty; expected at least one stage or setting (an empty policy would keep every span)")
    _check_shape(path, data)
    return data


def load_policy(path: Union[str, os.PathLike[str]]) -> Dict[str, Any]:
    """The keyword arguments for ``RuleSampler`` held in a rules file."""
    return check_policy(load_config(Path(path)), f"{path}: ")


def is_rules_file(document: Mapping[str, Any]) -> bool:
    """A rules file (RuleSampler's arguments) rather than a pipeline: its
    ``rules`` is a list (a pipeline's ``rules`` stage is a mapping)."""
    return isinstance(document.get("rules"), list)


def check_policy(data: Dict[str, Any], where: str = "") -> Dict[str, Any]:
    """``data`` as RuleSampler's keyword arguments, or a ConfigError naming the
    first unknown key (with the likely intent for a typo such as ``defualt_rate``)."""
    unknown = [key for key in data if key not in POLICY_KEYS]
    if unknown:
        import difflib

        from tracesieve._core import NativeSampler

        close = difflib.get_close_matches(str(unknown[0]), POLICY_KEYS, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        try:
            NativeSampler.pipeline(data)
            hint = " (this is a pipeline file: use OTEL_TRACES_SAMPLER=tracesieve, or tracesieve.from_config)"
        except ConfigError:
            pass
        raise ConfigError(f"{where}{unknown[0]}: unknown key{hint}; expected one of {', '.join(POLICY_KEYS)}")
    return data


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; expected a tracesieve configuration (.toml, .yaml or .json)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror or error}") from None
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; expected a configuration file (.toml, .yaml or .json)")
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes is too large; expected a configuration of at most {MAX_FILE_BYTES:,} bytes")
    try:
        with open_trusted(path) as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except NotARegularFile as error:
        raise ConfigError(f"{path}: {error}; expected a configuration file (.toml, .yaml or .json)") from None
    except OpenToEveryone as error:
        raise ConfigError(f"{path}: not read, as {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: too large; expected a configuration of at most {MAX_FILE_BYTES:,} bytes")
    try:
        # A leading byte order mark (Windows editors write one) is no part of the text.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _toml(path: Path, text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def _json(path: Path, text: str, unique_keys: bool = True) -> Any:
    def once_each(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        seen: Dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ConfigError(f"{path}: {_twice(key)}")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=once_each if unique_keys else None)
    except json.JSONDecodeError as error:
        hint = ""
        before = text[: error.pos].rstrip()
        if before.endswith(",") and text[error.pos : error.pos + 1] in "]}":
            hint = " (a trailing comma before the closing bracket: JSON allows none; remove it)"
        raise ConfigError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}{hint}") from None


#: A substitution reference, as the configuration data model writes it: ``${`` then what it holds, up to ``}``.
_REFERENCE = re.compile(r"\$\{([^}]+)\}")
#: What a reference to a variable holds: ``NAME`` or ``env:NAME``, and an optional ``:-default``.
_ENV_REFERENCE = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^\n]*))?")
#: A reference of another scheme (a language's own, such as Java's ``sys:``): none is read here.
_OTHER_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_]*):")


class InvalidReference(ValueError):
    """A ``${...}`` the configuration data model makes a parse error."""


def _twice(key: Any, lines: str = "") -> str:
    # Parsers keep the last and drop the first without a word: an edit that
    # left two "rules" or two "rate" lines would silently lose one.
    return f"{quoted(key)} is given twice in one mapping{lines}; a key may be given once"


class _Expansion:
    """What environment references add to a document, bounded like the file
    itself: 400,000 references to a 20 kB variable made a 3.6 MB file 8 GB."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.added = 0

    def grow(self, characters: int) -> None:
        self.added += characters
        if self.added > MAX_FILE_BYTES:
            raise ConfigError(
                f"{self.path}: its environment references add more than {MAX_FILE_BYTES:,} characters; "
                "expected a configuration (is a variable much longer than meant, or referred to very often?)"
            )


def substitute(text: str, expansion: Optional[_Expansion] = None) -> str:
    """``text`` with environment references replaced as the configuration data
    model specifies: ``$$`` escapes are found first, left to right, and give
    ``$``; between them, ``${NAME}`` or ``${env:NAME}`` gives the variable, or
    when it is unset or empty its ``:-default``, else nothing. A reference that
    names no variable (``${1A}``, ``${A:?e}``, another scheme's ``${sys:x}``)
    raises ``InvalidReference``. What they add counts against ``expansion``."""

    def replace(match: re.Match[str]) -> str:
        reference = _ENV_REFERENCE.fullmatch(match.group(1))
        if reference is None:
            other = _OTHER_PREFIX.match(match.group(1))
            # "A:?e" is a shell's operator after a name, not a scheme: only ":-" is read.
            if other is not None and other.group(1) != "env" and not match.group(1)[other.end() :].startswith(("?", "+", "=")):
                raise InvalidReference(
                    f"{match.group(0)} has the prefix {other.group(1)!r}, which is not read here; expected ${{env:NAME}}"
                )
            raise InvalidReference(
                f"{match.group(0)} is no environment reference; expected ${{NAME}} or ${{NAME:-default}} with NAME of letters, "
                "digits and _, not starting with a digit (and :- the only operator; write $$ for a literal $)"
            )
        value = os.environ.get(reference.group(1)) or reference.group(2) or ""
        if expansion is not None:
            expansion.grow(len(value))
        return value

    return "$".join(_REFERENCE.sub(replace, piece) for piece in text.split("$$"))


def _substituted(value: Any, expansion: _Expansion) -> Any:
    if isinstance(value, str):
        return substitute(value, expansion)
    if isinstance(value, list):
        return [_substituted(item, expansion) for item in value]
    if isinstance(value, dict):
        return {key: _substituted(item, expansion) for key, item in value.items()}
    return value


def _yaml(path: Path, text: str, substitute_env: bool = False, unique_keys: bool = True) -> Any:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """Safe loading that refuses deep nesting while composing (before any recursion runs deep)."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep (at line {mark.line + 1})")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # The mapping's own keys, before merge keys (<<) bring theirs in: those may be overridden.
            lines: Dict[Any, int] = {}
            for key_node, _ in node.value if unique_keys else ():
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in lines:
                        where = f" (lines {lines[key]} and {key_node.start_mark.line + 1})"
                        raise ConfigError(f"{path}: {_twice(key_node.value, where)}")
                    lines[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    def substitute_nodes(loader: BoundedLoader, root: Any) -> None:
        expansion = _Expansion(path)
        seen = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                try:
                    value = substitute(node.value, expansion)
                except InvalidReference as error:
                    raise ConfigError(f"{path}: line {node.start_mark.line + 1}: {error}") from None
                if value != node.value:
                    node.value = value
                    if node.style is None:  # a plain value reads as what it now says
                        node.tag = loader.resolve(yaml.ScalarNode, value, (True, False))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                stack.extend(value for _, value in node.value)  # values only: keys are never substituted

    try:
        loader = BoundedLoader(text)
        try:
            root = loader.get_single_node()
            if root is not None and substitute_env:
                substitute_nodes(loader, root)
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if "\\t" in problem or "\t" in problem:
            problem += " (YAML indents with spaces only: replace the tabs with spaces)"
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    return {} if data is None else data


def _check_shape(path: Path, data: Any) -> None:
    """Refuse documents nested deeper than MAX_DEPTH or expanding to more than
    MAX_VALUES values. Shared containers (YAML aliases) are measured once each,
    iteratively, so neither a deep nor an aliased document can make this slow."""
    size: Dict[int, int] = {}
    depth: Dict[int, int] = {}
    stack: List[Tuple[Any, bool]] = [(data, False)]
    while stack:
        value, children_done = stack.pop()
        if not isinstance(value, (dict, list)) or (id(value) in size and not children_done):
            continue
        items = list(value.values()) if isinstance(value, dict) else value
        containers = [item for item in items if isinstance(item, (dict, list))]
        if not children_done:
            if len(stack) > MAX_VALUES:
                raise ConfigError(f"{path}: expands to more than {MAX_VALUES:,} values; expected a configuration (YAML aliases?)")
            stack.append((value, True))
            stack.extend((item, False) for item in containers)
            continue
        depth[id(value)] = 1 + max((depth[id(item)] for item in containers), default=0)
        size[id(value)] = 1 + len(items) - len(containers) + sum(size[id(item)] for item in containers)
        if depth[id(value)] > MAX_DEPTH:
            raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep; expected at most {MAX_DEPTH}")
        if size[id(value)] > MAX_VALUES:
            raise ConfigError(
                f"{path}: expands to more than {MAX_VALUES:,} values; expected a configuration (YAML aliases can make "
                "a small file stand for an enormous document: write the values out)"
            )
