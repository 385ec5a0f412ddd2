"""The rule-based composable sampler (ComposableRuleBased) and its predicates,
by the OpenTelemetry SDK's names. Each predicate is evaluated natively (also
when called on its own); any other callable works as a predicate too."""

from __future__ import annotations

from collections.abc import Sequence as CollectionsSequence
from collections.abc import Set as AbstractSet
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import AnyValue, Attributes

from tracesieve import _core
from tracesieve._checks import quoted, shown
from tracesieve._core import ConfigError
from tracesieve._scrub import scrubbed_logger
from tracesieve.composable._composable import Composable, ComposableSampler, Foreign, SamplingIntent, checked, compile_tree

_logger = scrubbed_logger("tracesieve.composable")

_PARENTS = ("none", "local", "remote")


def _strings(name: str, values: Any) -> Sequence[Any]:
    """A collection of values (never one bare string, which would be read
    character by character)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (CollectionsSequence, AbstractSet)):
        raise ConfigError(f"{name}: expected a list of strings, got {type(values).__name__}")
    return list(values)


class PredicateT(Protocol):
    def __call__(
        self,
        parent_ctx: Optional[Context],
        name: str,
        span_kind: Optional[SpanKind],
        attributes: Attributes,
        links: Optional[Sequence[Link]],
        trace_state: Optional[TraceState],
    ) -> bool: ...

    def __str__(self) -> str: ...


class _Predicate:
    """Base of tracesieve's predicates: a spec the native core evaluates."""

    _compiled: Optional[_core.NativeSampler] = None

    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        raise NotImplementedError

    def __call__(
        self,
        parent_ctx: Optional[Context],
        name: str,
        span_kind: Optional[SpanKind],
        attributes: Attributes,
        links: Optional[Sequence[Link]],
        trace_state: Optional[TraceState],
    ) -> bool:
        if self._compiled is None:
            # The predicate as a one-rule tree: it keeps (threshold 0) exactly when it matches.
            rule = _OneRule(self)
            self._compiled = compile_tree(rule, rule.get_description())
        threshold = self._compiled.intent(parent_ctx, name, span_kind, attributes, links, trace_state)[0]
        return threshold == 0


class _OneRule(Composable):
    def __init__(self, predicate: Any):
        self._predicate = predicate

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"rule_based": {"rules": [{"predicate": foreign.predicate(self._predicate), "sampler": {"always_on": {}}}]}}

    def get_description(self) -> str:
        return f"Predicate{{{self._predicate}}}"


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int, float))


class AttributePredicate(_Predicate):
    """An exact match of an attribute value (deprecated: use AttributeValuesPredicate)."""

    def __init__(self, key: str, value: AnyValue):
        _logger.warning("AttributePredicate is deprecated, use AttributeValuesPredicate instead")
        self.key = key
        self.value = value

    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        if _scalar(self.value):
            return {"attribute_equals": {"key": self.key, "value": self.value}}
        # A sequence value: compared in Python, as the SDK does.
        return foreign.predicate(_Equals(self.key, self.value))

    def __str__(self) -> str:
        return f"{self.key}={self.value!s}"


class _Equals:
    def __init__(self, key: str, value: Any):
        self._key, self._value = key, value

    def __call__(self, parent_ctx: Any, name: Any, span_kind: Any, attributes: Attributes, links: Any, trace_state: Any) -> bool:
        return bool(attributes) and attributes.get(self._key) == self._value  # type: ignore[union-attr]


class AlwaysMatchPredicate(_Predicate):
    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"always": {}}

    def __str__(self) -> str:
        return "AlwaysMatch"


class AllPredicate(_Predicate):
    """Every one of ``predicates`` holds."""

    def __init__(self, predicates: Sequence[PredicateT]):
        self._predicates = tuple(predicates)

    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"all": [foreign.predicate(p) for p in self._predicates]}

    def __str__(self) -> str:
        return " && ".join(str(predicate) for predicate in self._predicates)


class AttributeValuesPredicate(_Predicate):
    """Some value of attribute ``key`` (each item of a sequence on its own), as
    ``str()`` writes it, is one of ``values``."""

    def __init__(self, key: str, values: Sequence[str]):
        self._key = key
        self._values = frozenset(_strings("values", values))

    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        # Only strings can equal a str(): other values never match, as in the SDK.
        values = sorted(v for v in self._values if isinstance(v, str))
        return {"attribute_values": {"key": self._key, "values": values}}

    def __str__(self) -> str:
        values = ",".join(sorted(self._values))
        return f"{self._key} in [{values}]"


class AttributePatternsPredicate(_Predicate):
    """Some value of attribute ``key`` matches one of the ``included`` shell
    patterns (any value, when none are given) and none of the ``excluded`` ones
    (``fnmatch.fnmatchcase``: ``*``, ``?``, ``[seq]``, ``[!seq]``, case-sensitive)."""

    def __init__(self, key: str, included: Optional[Sequence[str]] = None, excluded: Optional[Sequence[str]] = None):
        self._key = key
        self._included = tuple(_strings("included", included or ()))
        self._excluded = tuple(_strings("excluded", excluded or ()))

    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"attribute_patterns": {"key": self._key, "included": list(self._included), "excluded": list(self._excluded)}}

    def __str__(self) -> str:
        return f"{self._key} matches"


class SpanKindPredicate(_Predicate):
    """The span kind is one of ``span_kinds``."""

    def __init__(self, span_kinds: Sequence[SpanKind]):
        self._span_kinds = frozenset(span_kinds)

    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        names = sorted(kind.name.lower() for kind in self._span_kinds if isinstance(kind, SpanKind))
        return {"span_kinds": names}

    def __str__(self) -> str:
        kinds = ",".join(kind.name.lower() for kind in self._span_kinds)
        return f"span_kind in [{kinds}]"


class ParentPredicate(_Predicate):
    """The parent is one of ``parents``: ``"none"`` (a root), ``"local"`` or ``"remote"``."""

    def __init__(self, parents: Sequence[str]):
        unknown = sorted(str(p) for p in parents if p not in _PARENTS)
        if unknown:
            raise ConfigError(f"parents: {quoted(unknown[0])} is not a parent; expected none, local or remote")
        self._parents = frozenset(parents)

    def _predicate_spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"parent": sorted(self._parents)}

    def __str__(self) -> str:
        parents = ",".join(self._parents)
        return f"parent in [{parents}]"


RulesT = Sequence[Tuple[PredicateT, ComposableSampler]]


class _ComposableRuleBased(Composable):
    def __init__(self, rules: RulesT):
        self._rules: List[Tuple[PredicateT, ComposableSampler]] = []
        if isinstance(rules, (str, bytes)) or not isinstance(rules, CollectionsSequence):
            raise ConfigError(f"rules: expected a list of (predicate, sampler) pairs, got {type(rules).__name__}")
        for i, rule in enumerate(rules):
            if not (isinstance(rule, tuple) and len(rule) == 2):
                raise ConfigError(f"rules[{i}]: expected a (predicate, sampler) pair, got {shown(rule)}")
            predicate, sampler = rule
            if not callable(predicate):
                raise ConfigError(f"rules[{i}]: {quoted(predicate)} is not a predicate; expected a callable")
            self._rules.append((predicate, checked(sampler, f"rules[{i}]")))

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        rules = [{"predicate": foreign.predicate(p), "sampler": foreign.composable(s)} for p, s in self._rules]
        return {"rule_based": {"rules": rules}}

    def get_description(self) -> str:
        rules = ",".join(f"({predicate}:{sampler.get_description()})" for predicate, sampler in self._rules)
        return f"ComposableRuleBased{{[{rules}]}}"


def composable_rule_based(rules: RulesT) -> ComposableSampler:
    """A composable sampler whose first rule ``(predicate, sampler)`` that
    holds decides; when none holds, no threshold (a drop)."""
    return _ComposableRuleBased(rules)


__all__ = [
    "AllPredicate",
    "AlwaysMatchPredicate",
    "AttributePatternsPredicate",
    "AttributePredicate",
    "AttributeValuesPredicate",
    "ParentPredicate",
    "PredicateT",
    "RulesT",
    "SamplingIntent",
    "SpanKindPredicate",
    "composable_rule_based",
]
