"""Type stubs for the native module ``tracesieve._core``."""

from typing import Any, Dict, List, Optional, Sequence, Tuple, final

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState

__all__ = [
    "DEFAULT_PRECISION",
    "ConfigError",
    "NativeDedup",
    "NativeSampler",
    "NativeSignals",
    "NativeTailBuffer",
    "adjusted_count",
    "decode_th",
    "encode_th",
    "probability_for_threshold",
    "read_ot",
    "rewrite_ot",
    "threshold_for_probability",
]

DEFAULT_PRECISION: int

class ConfigError(ValueError, TypeError): ...

@final
class NativeSampler:
    @staticmethod
    def probability(
        rate: Any, *, respect_parent: Any = None, precision: Any = None, class_name: str = "ProbabilitySampler"
    ) -> NativeSampler: ...
    @staticmethod
    def trace_id_ratio(rate: Any, *, respect_parent: Any = None, class_name: str = "TraceIdRatioSampler") -> NativeSampler: ...
    @staticmethod
    def rules(
        rules: Any,
        *,
        default_rate: Any,
        multipliers: Any = None,
        respect_parent: Any = None,
        precision: Any = None,
        clock: Any = None,
        class_name: str = "RuleSampler",
    ) -> NativeSampler: ...
    @staticmethod
    def adaptive(
        base: NativeSampler,
        signals: NativeSignals,
        *,
        error_steps: Any = None,
        error_rate_target: Any = None,
        min_spans: Any = None,
        latency_boost: Any = None,
        slow_ratio: Any = None,
        max_boost: Any = None,
        class_name: str = "AdaptiveSampler",
    ) -> NativeSampler: ...
    @staticmethod
    def budget(
        inner: NativeSampler,
        budget: Any,
        *,
        cost_per_span: Any = None,
        period: Any = None,
        timezone: Any = None,
        cap_forced_keeps: Any = None,
        downstream: Any = None,
        clock: Any = None,
        store: Any = None,
        class_name: str = "BudgetSampler",
    ) -> NativeSampler: ...
    @staticmethod
    def pipeline(
        document: Any,
        *,
        clock: Any = None,
        signals: Optional[NativeSignals] = None,
        previous: Optional[NativeSampler] = None,
        class_name: str = "PipelineSampler",
    ) -> Tuple[NativeSampler, Optional[NativeSignals], Dict[str, Any], List[str]]: ...
    @staticmethod
    def jaeger_remote(
        service_name: Any,
        *,
        initial_rate: Any = None,
        max_operations: Any = None,
        respect_parent: Any = None,
        precision: Any = None,
        clock: Any = None,
        class_name: str = "JaegerRemoteSampler",
    ) -> NativeSampler: ...
    def remote_update(self, document: Any) -> bool: ...
    def remote_status(self) -> Dict[str, Any]: ...
    def budget_status(self) -> Dict[str, Any]: ...
    def description_lines(self) -> List[str]: ...
    def budget_snapshot(self) -> Dict[str, Any]: ...
    def restore_budget(
        self, period_start: float, used_spans: int, saved_at: float, estimates: Optional[Tuple[float, float, float, float]] = None
    ) -> bool: ...
    def budget_first_start(self) -> None: ...
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
    def explain_plan(
        self,
        name: Any,
        kind: Optional[SpanKind] = None,
        attributes: Any = None,
        parent: bool = False,
        now: Optional[float] = None,
    ) -> Dict[str, Any]: ...
    def deferred(self) -> NativeSampler: ...
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
    def store_info(self) -> Dict[str, Any]: ...

@final
class NativeSignals:
    def __new__(
        cls,
        *,
        window: Any = None,
        resolution: Any = None,
        slow_threshold: Any = None,
        route_thresholds: Any = None,
        clock: Any = None,
        store: Any = None,
    ) -> NativeSignals: ...
    def store_info(self) -> Dict[str, Any]: ...
    def on_end(self, span: Any) -> None: ...
    def record_error(self, count: int = 1) -> None: ...
    def record_latency(self, seconds: float, route: Optional[str] = None) -> None: ...
    def counts(self) -> Dict[str, Any]: ...
    def set_all_recorded(self, all_recorded: bool) -> None: ...
    @property
    def all_recorded(self) -> bool: ...
    @property
    def window(self) -> float: ...
    @property
    def resolution(self) -> float: ...

@final
class NativeDedup:
    def __new__(cls, mode: Any = None, window: Any = None) -> NativeDedup: ...
    def begin(self, batch: Any) -> Tuple[List[Any], List[Tuple[int, int]]]: ...
    def finish(self, keys: List[Tuple[int, int]], delivered: bool) -> None: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def remembered(self) -> int: ...

@final
class NativeTailBuffer:
    def __new__(
        cls,
        *,
        decision_wait: Any = None,
        trace_timeout: Any = None,
        latency_threshold: Any = None,
        latency_probability: Any = None,
        max_traces: Any = None,
        max_spans_per_trace: Any = None,
        decision_cache_size: Any = None,
        max_queue_size: Any = None,
        max_export_batch_size: Any = None,
        schedule_delay: Any = None,
        clock: Any = None,
    ) -> NativeTailBuffer: ...
    @property
    def settings(self) -> Tuple[float, float, Optional[float], float, int, int, float]: ...
    def on_end(self, span: Any) -> None: ...
    def now(self) -> float: ...
    def take_due(self, wait: float, timeout: float) -> List[Tuple[int, List[Any], Any, bool, bool]]: ...
    def take_all(self) -> List[Tuple[int, List[Any], Any, bool, bool]]: ...
    def settle(self, trace_id: int, spans: List[Any], reason: Optional[str], weight: float = 1.0) -> None: ...
    def take_batch(self, max: int) -> List[Tuple[Any, Optional[str], float, bool]]: ...
    def drain(self) -> int: ...
    def counts(self) -> Dict[str, int]: ...

def threshold_for_probability(probability: float, precision: int = ...) -> int: ...
def encode_th(threshold: int) -> str: ...
def decode_th(text: str) -> Optional[int]: ...
def adjusted_count(threshold: int) -> float: ...
def probability_for_threshold(threshold: int) -> float: ...
def read_ot(value: str) -> Tuple[Optional[int], Optional[int]]: ...
def rewrite_ot(previous: Optional[str], threshold: Optional[int]) -> Optional[str]: ...
