"""Native spans against the SDK's: the same workloads through the SDK's
``TracerProvider`` and ``tracesieve.TracerProvider``, every exported span
compared field by field (names, kinds, contexts, parents, trace state,
attributes with their types and dropped counts, events, links, status,
exception attributes, explicit times, resource, scope), and the warnings
both log. Ids are compared through the trace's shape (spans are named by
their path from the root), clock readings through their order."""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Tuple

import pytest
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from provider_workloads import EXPLICIT, WORKLOADS
from tracesieve import ProbabilitySampler, TracerProvider
from tracesieve.tail import LATE, REASON, TAIL_KEPT

RESOURCE = Resource({"service.name": "fidelity", "deployment.environment": "test"})
TAIL_MARKS = {REASON, TAIL_KEPT, LATE, "tracesieve.adjusted_count"}
#: SpanLimits small enough for the ``limits`` workload to meet each of them.
SMALL_LIMITS = {
    "max_span_attributes": 5,
    "max_events": 3,
    "max_links": 2,
    "max_event_attributes": 2,
    "max_link_attributes": 2,
    "max_span_attribute_length": 4,
    "max_attribute_length": 6,
}


class CountingIds(IdGenerator):
    """Ids in the order they are asked for: the same in both runs of a sequential workload."""

    def __init__(self) -> None:
        self.next = 0

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return (0xABCD << 64) | self.next


class _Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[Tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("opentelemetry"):
            self.records.append((record.name, record.levelno, record.getMessage()))


def run(workload: Any, native: bool, sampler: Any = ALWAYS_ON, **options: Any) -> Tuple[List[Any], List[Tuple[str, int, str]]]:
    """The spans ``workload`` exports through one provider, and what OpenTelemetry logged meanwhile."""
    exporter = InMemorySpanExporter()
    if native:
        provider: Any = TracerProvider(sampler=sampler, resource=RESOURCE, decision_wait=0.01, shutdown_on_exit=False, **options)
    else:
        provider = sdk_trace.TracerProvider(sampler=sampler, resource=RESOURCE, shutdown_on_exit=False, **options)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    logs = _Logs()
    root = logging.getLogger()
    root.addHandler(logs)
    try:
        workload(provider)
    finally:
        root.removeHandler(logs)
    assert provider.force_flush(10_000)
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans, logs.records


def _context(context: Any) -> Tuple[Any, ...]:
    return (int(context.trace_flags), tuple(context.trace_state.items()), context.is_remote)


def _stacktrace(text: str) -> str:
    """A stack trace without the frames of OpenTelemetry's and contextlib's
    own context managers (which native spans do not have)."""
    lines = text.splitlines()
    kept: List[str] = []
    skip = False
    for line in lines:
        if line.startswith("  File "):
            skip = "/opentelemetry/" in line or "contextlib.py" in line
        if not skip:
            kept.append(line)
    return "\n".join(kept)


def _value(key: str, value: Any) -> Any:
    if key == "exception.stacktrace":
        value = _stacktrace(value)
    if isinstance(value, str):
        value = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", value)
    if key.endswith(".port") or key in {"net.peer.port", "net.host.port"}:
        value = "PORT"
    return (type(value).__name__, value)


def _attributes(attributes: Any) -> List[Tuple[str, Any]]:
    return [(key, _value(key, value)) for key, value in (attributes or {}).items() if key not in TAIL_MARKS]


def canonical(spans: List[Any]) -> Dict[Tuple[str, ...], Dict[str, Any]]:
    """Each span by its path of names from the root (duplicates numbered in
    start order), with every field, ids replaced by paths and clock readings
    by their order among the run's readings."""
    by_id = {(s.context.trace_id, s.context.span_id): s for s in spans}

    def path(span: Any) -> Tuple[str, ...]:
        names = [span.name]
        seen = set()
        while span.parent is not None and (span.parent.trace_id, span.parent.span_id) in by_id:
            key = (span.parent.trace_id, span.parent.span_id)
            if key in seen:
                break
            seen.add(key)
            span = by_id[key]
            names.append(span.name)
        return tuple(reversed(names))

    readings = sorted(
        {t for s in spans for t in [s.start_time, s.end_time, *(e.timestamp for e in s.events)] if t is not None and t >= 10**12}
    )
    order = {t: i for i, t in enumerate(readings)}

    def when(t: Any) -> Any:
        return ("explicit", t) if t is not None and t < 10**12 else ("clock", order.get(t))

    paths: Dict[Tuple[int, int], Tuple[str, ...]] = {}
    counts: Dict[Tuple[str, ...], int] = {}
    for span in sorted(spans, key=lambda s: (s.start_time, path(s))):
        base = path(span)
        counts[base] = counts.get(base, 0) + 1
        paths[(span.context.trace_id, span.context.span_id)] = base + ((f"#{counts[base]}",) if counts[base] > 1 else ())

    def ref(context: Any) -> Any:
        key = (context.trace_id, context.span_id)
        return paths.get(key, (hex(context.trace_id), hex(context.span_id)))

    out: Dict[Tuple[str, ...], Dict[str, Any]] = {}
    for span in spans:
        roots = {ref(s.context)[0] for s in spans if s.context.trace_id == span.context.trace_id}
        out[paths[(span.context.trace_id, span.context.span_id)]] = {
            "trace": sorted(map(str, roots)),
            "kind": span.kind,
            "context": _context(span.context),
            "parent": None if span.parent is None else (ref(span.parent), _context(span.parent)),
            "attributes": _attributes(span.attributes),
            "dropped_attributes": span.dropped_attributes - sum(1 for key in TAIL_MARKS if key in (span.attributes or {})) * 0,
            "events": [(e.name, when(e.timestamp), _attributes(e.attributes), e.dropped_attributes) for e in span.events],
            "dropped_events": span.dropped_events,
            "links": [
                (ref(link.context), _context(link.context), _attributes(link.attributes), link.dropped_attributes) for link in span.links
            ],
            "dropped_links": span.dropped_links,
            "status": (span.status.status_code, span.status.description),
            "times": (when(span.start_time), when(span.end_time)),
            "resource": (dict(span.resource.attributes), span.resource.schema_url),
            "scope": (
                span.instrumentation_scope.name,
                span.instrumentation_scope.version,
                span.instrumentation_scope.schema_url,
                dict(span.instrumentation_scope.attributes or {}),
            ),
        }
    return out


def _sequential(name: str) -> bool:
    return name not in {"threads", "tasks"}


def without_clock(fields: Dict[str, Any]) -> Dict[str, Any]:
    """A span's fields with clock readings as just "clock" (explicit times stay)."""
    fields = dict(fields)
    fields["times"] = tuple(t if t[0] == "explicit" else "clock" for t in fields["times"])
    fields["events"] = [(e[0], e[1] if e[1][0] == "explicit" else "clock", *e[2:]) for e in fields["events"]]
    return fields


def assert_same(name: str, sdk: Tuple[List[Any], Any], ours: Tuple[List[Any], Any], *, compare_clock: bool) -> None:
    sdk_spans, sdk_logs = sdk
    our_spans, our_logs = ours
    expected, got = canonical(sdk_spans), canonical(our_spans)
    assert sorted(got) == sorted(expected), f"{name}: different spans"
    for key in expected:
        want, have = expected[key], got[key]
        if not compare_clock:
            want, have = without_clock(want), without_clock(have)
        assert have == want, f"{name}: span {key} differs"
    assert sorted(our_logs) == sorted(sdk_logs), f"{name}: different warnings"


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_field_matches_the_sdk(name: str) -> None:
    workload = WORKLOADS[name]
    sdk = run(workload, native=False)
    ours = run(workload, native=True)
    assert sdk[0], "the workload exports spans"
    assert_same(name, sdk, ours, compare_clock=_sequential(name))


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_limit_is_the_sdks(name: str) -> None:
    limits = SpanLimits(**SMALL_LIMITS)
    sdk = run(WORKLOADS[name], native=False, span_limits=limits)
    ours = run(WORKLOADS[name], native=True, span_limits=limits)
    assert_same(name, sdk, ours, compare_clock=_sequential(name))


def test_the_limit_variables_are_read_as_the_sdk_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in {
        "OTEL_ATTRIBUTE_COUNT_LIMIT": "3",
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5",
        "OTEL_SPAN_EVENT_COUNT_LIMIT": "2",
        "OTEL_SPAN_LINK_COUNT_LIMIT": "1",
        "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT": "1",
        "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT": "1",
    }.items():
        monkeypatch.setenv(variable, value)
    for name in ("limits", "nested", "exceptions"):
        assert_same(name, run(WORKLOADS[name], native=False), run(WORKLOADS[name], native=True), compare_clock=True)


def test_unlimited_limits_match() -> None:
    limits = SpanLimits(
        max_span_attributes=SpanLimits.UNSET,
        max_events=SpanLimits.UNSET,
        max_links=SpanLimits.UNSET,
        max_event_attributes=SpanLimits.UNSET,
        max_link_attributes=SpanLimits.UNSET,
    )
    assert_same(
        "limits",
        run(WORKLOADS["limits"], False, span_limits=limits),
        run(WORKLOADS["limits"], True, span_limits=limits),
        compare_clock=True,
    )


@pytest.mark.parametrize("name", ["nested", "exceptions", "timestamps_and_ends", "limits"])
def test_ids_and_trace_state_pass_through_exactly(name: str) -> None:
    """With the same id generator, the very ids match; with a tracesieve
    sampler, so does the ``th`` it writes."""
    sampler = ProbabilitySampler(1.0)
    sdk_spans, _ = run(WORKLOADS[name], native=False, sampler=sampler, id_generator=CountingIds())
    our_spans, _ = run(WORKLOADS[name], native=True, sampler=sampler, id_generator=CountingIds())

    def ids(spans: List[Any]) -> List[Any]:
        return sorted(
            (
                s.context.trace_id,
                s.context.span_id,
                None if s.parent is None else (s.parent.trace_id, s.parent.span_id),
                str(s.context.trace_state),
                int(s.context.trace_flags),
            )
            for s in spans
        )

    assert ids(our_spans) == ids(sdk_spans)
    assert any("th:0" in str(s.context.trace_state) for s in our_spans)


def test_traces_the_tail_keeps_match_the_sdk_but_for_its_marks() -> None:
    """A trace only the tail kept (the head recorded it and did not sample
    it) is exported as the SDK exports a sampled one, plus the tail's marks."""
    for name in ("exceptions", "nested"):
        sdk = run(WORKLOADS[name], native=False, sampler=ALWAYS_ON)
        ours_spans, _ours_logs = run(WORKLOADS[name], native=True, sampler=ProbabilitySampler(0.0, defer=True))
        kept = [s for s in ours_spans if (s.attributes or {}).get(TAIL_KEPT)]
        assert kept, "errors keep traces"
        assert all(s.context.trace_flags.sampled for s in kept)
        expected = canonical(sdk[0])
        for key, fields in canonical(ours_spans).items():
            fields = without_clock(fields)
            want = without_clock(expected[key])
            if fields["parent"] is not None and fields["parent"][0] in set(expected):
                # A local parent's context is as it was recorded, unsampled (as TailSamplingProcessor leaves it).
                (path, (flags, state, remote)) = want["parent"]
                want["parent"] = (path, (flags & ~1, state, remote))
            assert fields == want, f"{name}: {key}"


def test_native_ids_are_valid_random_and_flagged() -> None:
    """With the SDK's RandomIdGenerator, ids are made natively: valid,
    distinct, and flagged random (W3C level 2) as the SDK flags them."""
    spans, _ = run(WORKLOADS["threads"], native=True, id_generator=RandomIdGenerator())
    sdk_spans, _ = run(WORKLOADS["threads"], native=False, id_generator=RandomIdGenerator())
    span_ids = [s.context.span_id for s in spans]
    assert len(set(span_ids)) == len(span_ids) and all(0 < i < 1 << 64 for i in span_ids)
    assert all(0 < s.context.trace_id < 1 << 128 for s in spans)
    assert {int(s.context.trace_flags) for s in spans} == {int(s.context.trace_flags) for s in sdk_spans}


def test_times_given_as_float_nanoseconds_are_kept() -> None:
    """Regression: start_time=time.time() * 1e9 (a float, which the SDK takes)
    was dropped for the clock's reading, so the span lost the time it was given."""

    def floats(provider: Any) -> None:
        tracer = provider.get_tracer("t")
        tracer.start_span("float times", start_time=1.7e18).end(end_time=1.7e18 + 2.5e9)
        tracer.start_span("int times", start_time=1_700_000_000_000_000_000).end(end_time=1_700_000_002_500_000_000)

    spans, _ = run(floats, native=True)
    assert {(span.name, span.start_time, span.end_time) for span in spans} == {
        ("float times", 1_700_000_000_000_000_000, 1_700_000_002_500_000_000),
        ("int times", 1_700_000_000_000_000_000, 1_700_000_002_500_000_000),
    }
    assert all(isinstance(span.start_time, int) and isinstance(span.end_time, int) for span in spans)


def test_exception_events_keep_the_applications_frames() -> None:
    """The one difference in ``record_exception``: the SDK's stack trace also
    lists its own context manager's frames; ours lists the application's."""
    sdk_spans, _ = run(WORKLOADS["exceptions"], native=False)
    our_spans, _ = run(WORKLOADS["exceptions"], native=True)
    sdk_trace_text = next(s for s in sdk_spans if s.name == "raises").events[0].attributes["exception.stacktrace"]
    our_trace_text = next(s for s in our_spans if s.name == "raises").events[0].attributes["exception.stacktrace"]
    assert 'raise ValueError("bad order")' in our_trace_text and 'raise ValueError("bad order")' in sdk_trace_text
    assert "provider_workloads.py" in our_trace_text
    assert _stacktrace(our_trace_text) == _stacktrace(sdk_trace_text)
    assert EXPLICIT + 1 in [e.timestamp for s in our_spans for e in s.events]


def test_a_flask_app_with_its_instrumentation_exports_what_the_sdk_exports() -> None:
    """A real Flask app (server spans, remote parents through ``traceparent``),
    outgoing ``requests`` and ``urllib3`` calls, a failing route."""
    from provider_workloads import flask_app

    sdk = run(flask_app, native=False)
    ours = run(flask_app, native=True)
    kinds = {span.kind.name for span in sdk[0]}
    assert {"SERVER", "CLIENT", "INTERNAL"} <= kinds and len(sdk[0]) >= 10
    assert_same("flask", sdk, ours, compare_clock=False)
