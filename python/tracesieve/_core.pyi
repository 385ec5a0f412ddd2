"""Type stubs for the native module ``tracesieve._core``."""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState

DEFAULT_PRECISION: int

class NativeSampler:
    @staticmethod
    def probability(
        rate: float, *, respect_parent: bool = True, precision: int = ..., class_name: str = "ProbabilitySampler"
    ) -> "NativeSampler": ...
    @staticmethod
    def trace_id_ratio(rate: float, *, respect_parent: bool = True, class_name: str = "TraceIdRatioSampler") -> "NativeSampler": ...
    @staticmethod
    def rules(
        rules: Any,
        *,
        default_rate: float,
        multipliers: Any = None,
        respect_parent: bool = True,
        precision: int = ...,
        clock: Optional[Callable[[], float]] = None,
        class_name: str = "RuleSampler",
    ) -> "NativeSampler": ...
    @staticmethod
    def adaptive(
        base: "NativeSampler",
        signals: "NativeSignals",
        *,
        error_steps: Optional[List[Tuple[int, float]]] = None,
        error_rate_target: Optional[float] = None,
        min_spans: int = 20,
        latency_boost: float = 2.0,
        slow_ratio: float = 0.1,
        max_boost: float = 10.0,
        class_name: str = "AdaptiveSampler",
    ) -> "NativeSampler": ...
    @staticmethod
    def budget(
        inner: "NativeSampler",
        budget: int,
        *,
        period: str = "month",
        timezone: str = "UTC",
        cap_forced_keeps: bool = False,
        clock: Optional[Callable[[], float]] = None,
        class_name: str = "BudgetSampler",
    ) -> "NativeSampler": ...
    @staticmethod
    def pipeline(
        document: Any,
        *,
        clock: Optional[Callable[[], float]] = None,
        signals: Optional["NativeSignals"] = None,
        class_name: str = "PipelineSampler",
    ) -> Tuple["NativeSampler", Optional["NativeSignals"]]: ...
    def budget_status(self) -> Dict[str, Any]: ...
    def restore_budget(self, period_start: float, used: int) -> bool: ...
    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Any = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult: ...
    def explain(
        self,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Any = None,
        root: bool = True,
        now: Optional[float] = None,
    ) -> Dict[str, Any]: ...
    def deferred(self) -> "NativeSampler": ...
    @property
    def defer(self) -> bool: ...
    def get_description(self) -> str: ...
    @property
    def rate(self) -> float: ...
    @property
    def respect_parent(self) -> bool: ...
    @property
    def threshold(self) -> Optional[str]: ...
    def rule_names(self) -> List[str]: ...
    def stats(self) -> Dict[str, Any]: ...

class NativeSignals:
    def __new__(
        cls,
        *,
        window: float = 300.0,
        resolution: float = 1.0,
        slow_threshold: float = 2.0,
        route_thresholds: Optional[List[Tuple[str, float]]] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> "NativeSignals": ...
    def on_end(self, span: Any) -> None: ...
    def record_error(self, count: int = 1) -> None: ...
    def record_latency(self, seconds: float, route: Optional[str] = None) -> None: ...
    def counts(self) -> Dict[str, Any]: ...
    @property
    def window(self) -> float: ...
    @property
    def resolution(self) -> float: ...

class NativeDedup:
    def __new__(cls, mode: str = "identity", window: int = 100_000) -> "NativeDedup": ...
    def filter(self, batch: Any) -> List[Any]: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def remembered(self) -> int: ...

def threshold_for_probability(probability: float, precision: int = ...) -> int: ...
def encode_th(threshold: int) -> str: ...
def decode_th(text: str) -> Optional[int]: ...
def adjusted_count(threshold: int) -> float: ...
def probability_for_threshold(threshold: int) -> float: ...
def read_ot(value: str) -> Tuple[Optional[int], Optional[int]]: ...
def rewrite_ot(previous: Optional[str], threshold: Optional[int]) -> Optional[str]: ...
