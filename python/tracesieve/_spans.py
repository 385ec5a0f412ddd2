"""The Python side of native spans: what the native recorder asks the SDK to
do where the SDK's own behaviour must be matched exactly (cleaning unusual
attribute values, an exception's attributes), decorating functions with
``start_as_current_span``, and replaying a kept record into the SDK's own
span, whose ``start`` and ``end`` run the provider's span processors."""

from __future__ import annotations

import functools
import inspect
import logging
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, cast

from opentelemetry import attributes as _attributes
from opentelemetry import baggage as _baggage
from opentelemetry import context as _context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import SpanLimits, _Span
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState, set_span_in_context
from opentelemetry.trace.status import Status, StatusCode

#: A value the installed SDK drops (older SDKs drop invalid values; newer ones convert them).
DROP = object()

_NEW_CLEANING = hasattr(_attributes, "_clean_attribute_value")


def clean(value: Any, max_length: Optional[int]) -> Any:
    """``value`` as the installed SDK cleans an attribute value (its warnings
    included), or ``DROP``."""
    if _NEW_CLEANING:
        return _attributes._clean_attribute_value(value, max_length)
    cleaned = _attributes._clean_attribute("value", value, max_length)  # type: ignore[attr-defined]
    return DROP if cleaned is None else cleaned


def clean_mapping(mapping: Any, max_length: Optional[int]) -> Tuple[Dict[str, Any], int]:
    """A mapping of attributes as the installed SDK cleans it for a span, and
    how many of its entries that cleaning dropped."""
    if not isinstance(mapping, Mapping):
        return {}, 0
    if _NEW_CLEANING:
        cleaned = _attributes._clean_attribute_value(dict(mapping), max_length)
        return cleaned, len(mapping) - len(cleaned)
    out: Dict[str, Any] = {}
    for key, value in mapping.items():
        value = _attributes._clean_attribute(key, value, max_length)  # type: ignore[attr-defined]
        if value is not None:
            out[key] = value
    return out, 0


def _text(value: Any) -> str:
    """``str(value)``, or a placeholder naming its type when its ``__str__`` raises."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__qualname__}>"


def exception_attributes(exception: BaseException, escaped: Any) -> Dict[str, Any]:
    """The attributes the SDK's ``record_exception`` gives an exception event
    (for something that is not an exception, its type and text); text that
    cannot be had is a placeholder, never an error raised into the application."""
    if not isinstance(exception, BaseException):
        return {
            "exception.type": type(exception).__qualname__,
            "exception.message": _text(exception),
            "exception.stacktrace": "",
            "exception.escaped": _text(escaped),
        }
    stacktrace = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
    module = type(exception).__module__
    qualname = type(exception).__qualname__
    exception_type = f"{module}.{qualname}" if module and module != "builtins" else qualname
    return {
        "exception.type": exception_type,
        "exception.message": _text(exception),
        "exception.stacktrace": stacktrace,
        "exception.escaped": _text(escaped),
    }


def eviction_warning() -> Optional[str]:
    """What the installed SDK logs when a full attributes dict drops its
    oldest entry (None: it logs nothing), so native spans log the same."""
    logger = logging.getLogger("opentelemetry.attributes")
    seen: List[str] = []

    class Catch(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append(record.getMessage())
            return False

    catch = Catch()
    level, disabled = logger.level, logger.disabled
    logger.addFilter(catch)
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    try:
        probe = _attributes.BoundedAttributes(1, immutable=False)
        probe["first"] = 1
        probe["second"] = 2
    finally:
        logger.removeFilter(catch)
        logger.setLevel(level)
        logger.disabled = disabled
    return seen[0] if seen else None


def decorate(tracer: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], function: Callable[..., Any]) -> Callable[..., Any]:
    """``@tracer.start_as_current_span(...)`` on a function (or a coroutine
    function): a span around each call, as the SDK's decorator form gives."""
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(*call_args: Any, **call_kwargs: Any) -> Any:
            with tracer.start_as_current_span(*args, **kwargs):
                return await function(*call_args, **call_kwargs)

        return run_async

    @functools.wraps(function)
    def run(*call_args: Any, **call_kwargs: Any) -> Any:
        with tracer.start_as_current_span(*args, **kwargs):
            return function(*call_args, **call_kwargs)

    return run


def _context_of(fields: Tuple[Any, ...]) -> SpanContext:
    trace_id, span_id, remote, flags, trace_state = fields
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(flags), trace_state=TraceState(trace_state))


def _apply(entries: Dict[str, Any], limit: Optional[int], later: Mapping[str, Any]) -> int:
    """Set ``later`` into ``entries`` as ``BoundedAttributes`` sets them (the
    oldest out at the limit), without logging; how many went out."""
    evicted = 0
    for key, value in later.items():
        if key in entries:
            del entries[key]
        elif limit is not None and len(entries) >= limit:
            evicted += 1
            if limit == 0:
                continue
            del entries[next(iter(entries))]
        entries[key] = value
    return evicted


def _set_later(attributes: Any, start: Mapping[str, Any], later: Mapping[str, Any], invalid: int, evictions: int) -> None:
    """The attributes the span's calls set after start (each in the order it
    was last set), after what processors' ``on_start`` set, as on the SDK's
    span; dropped counts as the calls counted them (``invalid``, and
    ``evictions`` at the limit), plus whatever more went out because
    ``on_start`` added attributes. Nothing is logged again."""
    if later:
        added = len(attributes._dict) != len(start)
        pushed_out = _apply(attributes._dict, attributes.maxlen, later)
        if added:
            evictions += pushed_out - _apply(dict(start), attributes.maxlen, later)
    attributes.dropped += invalid + evictions


def replay(
    record: Tuple[Any, ...],
    tail: Optional[Mapping[str, Any]],
    provider: Any,
    scopes: Sequence[Tuple[Any, Any]],
    limits: SpanLimits,
) -> None:
    """Replay one kept record into the SDK's own span: constructed with its
    start name, attributes and links, started (each span processor's
    ``on_start``), then given its final attributes, events, status and name,
    then ended at its end time (``on_end``). ``tail``: the tail's marks, set
    last."""
    (
        context_fields,
        parent_fields,
        tracer,
        kind,
        start_name,
        name,
        start_time,
        end_time,
        start_attributes,
        start_dropped,
        later_attributes,
        later_invalid,
        later_evictions,
        events,
        events_dropped,
        links,
        links_dropped,
        status,
        description,
        baggage,
        record_exception,
        set_status_on_exception,
    ) = record
    parent = None if parent_fields is None else _context_of(parent_fields)
    info, scope = scopes[tracer]
    span_links: List[Link] = [Link(_context_of(fields), link_attributes) for fields, link_attributes, _ in links]
    span = _Span(
        name=start_name,
        context=_context_of(context_fields),
        parent=parent,
        sampler=provider.sampler,
        resource=provider.resource,
        attributes=start_attributes,
        span_processor=provider._active_span_processor,
        kind=SpanKind(kind),
        links=span_links,
        instrumentation_info=info,
        record_exception=record_exception,
        set_status_on_exception=set_status_on_exception,
        limits=limits,
        instrumentation_scope=scope,
    )
    span_attributes = cast(BoundedAttributes, span._attributes)
    span_attributes.dropped = start_dropped
    for link, (_, _, link_dropped) in zip(span._links, links):
        link.attributes.dropped = link_dropped  # type: ignore[union-attr]
    cast(BoundedList, span._links).dropped = links_dropped
    parent_context = _context.Context()
    if parent is not None:
        parent_context = set_span_in_context(NonRecordingSpan(parent), parent_context)
    for key, value in baggage:
        parent_context = _baggage.set_baggage(key, value, parent_context)
    span.start(start_time=start_time, parent_context=parent_context)
    _set_later(span_attributes, start_attributes, later_attributes, later_invalid, later_evictions)
    for event_name, timestamp, event_attributes, event_dropped in events:
        span.add_event(event_name, event_attributes, timestamp)
        span._events[-1].attributes.dropped = event_dropped  # type: ignore[union-attr]
    cast(BoundedList, span._events).dropped += events_dropped
    if name != start_name:
        span.update_name(name)
    if status:
        span.set_status(Status(StatusCode(status), description))
    if tail:
        # Outside the limits, as TailSamplingProcessor's marked copies: a mark never evicts an attribute.
        span_attributes._dict.update(tail)
    span.end(end_time=end_time)
