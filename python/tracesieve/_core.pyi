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
    def get_description(self) -> str: ...
    @property
    def rate(self) -> float: ...
    @property
    def respect_parent(self) -> bool: ...
    @property
    def threshold(self) -> Optional[str]: ...
    def rule_names(self) -> List[str]: ...
    def stats(self) -> Dict[str, Any]: ...

def threshold_for_probability(probability: float, precision: int = ...) -> int: ...
def encode_th(threshold: int) -> str: ...
def decode_th(text: str) -> Optional[int]: ...
def adjusted_count(threshold: int) -> float: ...
def probability_for_threshold(threshold: int) -> float: ...
def read_ot(value: str) -> Tuple[Optional[int], Optional[int]]: ...
def rewrite_ot(previous: Optional[str], threshold: Optional[int]) -> Optional[str]: ...
