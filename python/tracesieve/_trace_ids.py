"""A trace id as people find it (a log line, a ticket, a header), read as the
128-bit number the SDK uses."""

from __future__ import annotations

import re
from typing import Union

from tracesieve._checks import quoted

#: 32 hexadecimal digits, bare or as 0x...; a W3C traceparent
#: (version-traceid-spanid-flags); an X-Ray trace id (1-8 hex-24 hex), whose
#: parts joined are the OpenTelemetry trace id.
_FORMS = (
    re.compile(r"(?:0x)?(?P<id>[0-9a-f]{32})"),
    re.compile(r"[0-9a-f]{2}-(?P<id>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}"),
    re.compile(r"1-(?P<time>[0-9a-f]{8})-(?P<rest>[0-9a-f]{24})"),
)


def parse_trace_id(trace_id: Union[int, str]) -> int:
    """``trace_id`` as an int: an int itself, 32 hexadecimal digits (``0x``
    before them, or upper case, alike), a traceparent or an X-Ray trace id.
    A ValueError names what was given and what would do."""
    if isinstance(trace_id, str):
        text = trace_id.strip().lower()
        for form in _FORMS:
            found = form.fullmatch(text)
            if found is not None:
                trace_id = int(found["id"] if "id" in form.groupindex else found["time"] + found["rest"], 16)
                break
        else:
            raise ValueError(
                f"trace_id: expected 32 hexadecimal digits (as logs show it), a traceparent or an X-Ray trace id "
                f"(1-5759e988-bd862e3fe1be46a994272793), or an int, got {quoted(trace_id)}"
            )
    if isinstance(trace_id, bool) or not isinstance(trace_id, int) or not 0 < trace_id < 1 << 128:
        raise ValueError(f"trace_id: expected a non-zero 128-bit trace id, got {quoted(trace_id)}")
    return trace_id
