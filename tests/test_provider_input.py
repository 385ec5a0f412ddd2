"""Native spans given whatever an application can pass (values whose ``str``,
``bool``, ``==`` or iteration raise, lone surrogates, wrong types): no span
call raises into the application, an exception leaving
``start_as_current_span`` is the application's own, and every span started
is accounted for."""

from __future__ import annotations

import math
from typing import Any, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceState, set_span_in_context

from test_provider import balanced, stepped


class Unprintable:
    """A value whose every protocol raises."""

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __bool__(self) -> bool:
        raise RuntimeError("bool")

    def __iter__(self) -> Any:
        raise RuntimeError("iter")


class UnprintableKey:
    """A hashable dict key whose ``str`` and ``==`` raise."""

    __hash__ = object.__hash__

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")


class FailingMapping(dict):  # type: ignore[type-arg]
    """A mapping that fails as soon as it is read."""

    def items(self) -> Any:
        raise RuntimeError("items")

    def __iter__(self) -> Any:
        raise RuntimeError("iter")

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("getitem")


class AppError(Exception):
    """The application's own error, with an unprintable message."""

    def __str__(self) -> str:
        raise RuntimeError("str")


TEXTS = ["", "GET /", "\ud800", "/api/\udfff", "x" * 5000, "\x00", "é"]
hostile = st.deferred(
    lambda: st.one_of(
        st.sampled_from(TEXTS),
        st.sampled_from([0, -1, 1 << 70, True, 0.5, math.nan, math.inf, None, b"\xff", object(), {1}]),
        st.builds(Unprintable),
        st.builds(UnprintableKey),
        st.lists(hostile, max_size=3),
        st.dictionaries(st.sampled_from(TEXTS), hostile, max_size=2),
    )
)
keys = st.one_of(st.sampled_from(TEXTS), st.builds(UnprintableKey), st.sampled_from([1, None, ("t",)]))
attribute_maps = st.one_of(st.none(), st.builds(lambda: FailingMapping(a=1)), hostile, st.dictionaries(keys, hostile, max_size=4))
names = st.one_of(st.sampled_from(TEXTS), hostile)
times = st.sampled_from([None, 0, -5, 1 << 70, 1.5, "now", 1_700_000_000_000_000_000]) | st.builds(Unprintable)
contexts = st.one_of(
    st.none(),
    hostile,
    st.builds(
        lambda trace_id, ot: set_span_in_context(NonRecordingSpan(SpanContext(trace_id, 7, True, 1, TraceState([("ot", ot)])))),
        st.integers(1, (1 << 128) - 1),
        st.sampled_from(["th:8", "th:", "x", "rv:00000000000000;th:0"]),
    ),
)
links = st.one_of(
    st.none(),
    hostile,
    st.lists(st.one_of(hostile, st.builds(lambda a: Link(SpanContext(5, 6, True), a), attribute_maps)), max_size=3),
)
statuses = st.one_of(
    st.sampled_from([StatusCode.ERROR, StatusCode.OK, Status(StatusCode.UNSET)]),
    st.builds(lambda d: Status(StatusCode.ERROR, d), st.sampled_from(TEXTS)),
    hostile,
)
calls = st.lists(
    st.one_of(
        st.tuples(st.just("set_attribute"), keys, hostile),
        st.tuples(st.just("set_attributes"), attribute_maps),
        st.tuples(st.just("add_event"), names, attribute_maps, times),
        st.tuples(st.just("add_link"), st.one_of(st.just(SpanContext(5, 6, True)), hostile), attribute_maps),
        st.tuples(st.just("set_status"), statuses, hostile),
        st.tuples(
            st.just("record_exception"),
            st.one_of(st.builds(AppError), st.builds(ValueError, names), hostile),
            attribute_maps,
            times,
            hostile,
        ),
        st.tuples(st.just("update_name"), names),
        st.tuples(st.just("end"), times),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=names,
    context=contexts,
    kind=st.one_of(st.none(), st.just(SpanKind.SERVER), hostile),
    attributes=attribute_maps,
    links=links,
    start=times,
    span_calls=calls,
)
def test_no_span_call_raises_into_the_application(
    name: Any, context: Any, kind: Any, attributes: Any, links: Any, start: Any, span_calls: List[Any]
) -> None:
    provider, tracer, exporter, clock = stepped(rate=1.0)
    span = tracer.start_span(name, context=context, kind=kind, attributes=attributes, links=links, start_time=start)
    for method, *arguments in span_calls:
        getattr(span, method)(*arguments)
    span.end()
    clock.now += 2
    provider.step()
    assert len(exporter.get_finished_spans()) == 1
    balanced(provider.stats())


@pytest.mark.parametrize("raised", [AppError(), ValueError("bad input \ud800")], ids=["unprintable", "surrogate"])
def test_the_applications_error_leaves_start_as_current_span_unchanged(raised: Exception) -> None:
    provider, tracer, exporter, clock = stepped(rate=1.0)
    with pytest.raises(type(raised)) as caught:
        with tracer.start_as_current_span("GET /"):
            raise raised
    assert caught.value is raised
    clock.now += 2
    provider.step()
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == (
        "AppError: <unprintable AppError>" if isinstance(raised, AppError) else "ValueError: bad input \ufffd"
    )
    assert [event.name for event in span.events] == ["exception"]


def test_lone_surrogates_in_span_text_become_replacement_characters() -> None:
    """A name, event name or status description holding a lone surrogate (no
    exporter can encode one) is recorded with U+FFFD in its place; attribute
    values keep theirs, as the SDK keeps them."""
    provider, tracer, exporter, clock = stepped(rate=1.0)
    span = tracer.start_span("GET \ud800/", attributes={"http.route": "/\udfff"})
    span.add_event("event \udc00")
    span.end()
    renamed = tracer.start_span("x")
    renamed.update_name("renamed \udfff")
    renamed.set_status(Status(StatusCode.ERROR, "down \ud800"))
    renamed.end()
    clock.now += 2
    provider.step()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"GET \ufffd/", "renamed \ufffd"}
    assert [e.name for e in spans["GET \ufffd/"].events] == ["event \ufffd"]
    assert spans["GET \ufffd/"].attributes["http.route"] == "/\udfff"
    assert spans["renamed \ufffd"].status.description == "down \ufffd"


def test_an_unprintable_name_is_named_after_its_type() -> None:
    provider, tracer, exporter, clock = stepped(rate=1.0)
    span = tracer.start_span(Unprintable())  # type: ignore[arg-type]
    span.add_event(Unprintable())  # type: ignore[arg-type]
    span.record_exception(AppError(), escaped=Unprintable())  # type: ignore[arg-type]
    span.end()
    clock.now += 2
    provider.step()
    (exported,) = exporter.get_finished_spans()
    assert exported.name == "<unprintable Unprintable>"
    assert [e.name for e in exported.events] == ["<unprintable Unprintable>", "exception"]
    assert exported.events[1].attributes["exception.message"] == "<unprintable AppError>"
    assert exported.events[1].attributes["exception.escaped"] == "<unprintable Unprintable>"


class BrokenIds:
    """An id generator that raises or makes no valid id."""

    def __init__(self, made: Any) -> None:
        self.made = made

    def _make(self) -> Any:
        if isinstance(self.made, BaseException):
            raise self.made
        return self.made

    generate_trace_id = _make
    generate_span_id = _make


@pytest.mark.parametrize(
    "made, said",
    [
        (RuntimeError("no ids"), "raised RuntimeError: no ids"),
        ("abc", "returned str 'abc', not a valid id"),
        (2**200, "returned an integer of about 61 digits, not a valid id"),
        (-5, "returned int -5, not a valid id"),
        (0, "returned int 0, not a valid id"),
        (True, "returned bool True, not a valid id"),
    ],
    ids=["raises", "text", "too big", "negative", "zero", "bool"],
)
def test_an_id_generator_that_fails_gives_random_ids_and_one_warning(made: Any, said: str, caplog: Any) -> None:
    """Found by giving the provider broken id generators: one that raised or made
    ids out of range raised TypeError or OverflowError from start_span, and one
    that made 0 gave a context that said it was valid."""
    import tracesieve

    provider = tracesieve.TracerProvider(id_generator=BrokenIds(made), shutdown_on_exit=False)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        with tracer.start_as_current_span("child") as child:
            pass
    for span in (root, child):
        context = span.get_span_context()
        assert context.is_valid and 0 < context.trace_id < 2**128 and 0 < context.span_id < 2**64
    assert child.get_span_context().trace_id == root.get_span_context().trace_id
    warnings = [record.getMessage() for record in caplog.records if "id generator" in record.getMessage()]
    assert warnings == [f"tracesieve: the id generator's generate_trace_id() {said}; random ids are used where it fails"]
    provider.shutdown()


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_id_generator_interrupted_by_the_user_is_not_swallowed(stop: Any) -> None:
    import tracesieve

    provider = tracesieve.TracerProvider(id_generator=BrokenIds(stop()), shutdown_on_exit=False)
    with pytest.raises(stop):
        provider.get_tracer("t").start_span("root")
    provider.shutdown()
