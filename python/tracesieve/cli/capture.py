"""``tracesieve capture``: keep traces after the fact in every service that
shares tail decisions through Redis ("this customer just reported a
problem"), from the command line: one announcement on the fleet's stream, as
a service's own ``capture(trace_id)`` makes."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any, List

from tracesieve._core import ConfigError, capture_announcement, redis_target
from tracesieve._redis import PASSWORD_VARIABLE, Secret, connect, scrub
from tracesieve._trace_ids import parse_trace_id
from tracesieve.fleet import require_client
from tracesieve.sharing import MAX_BATCH, STREAM_ENTRIES

#: Seconds the command waits for Redis before saying it could not announce.
TIMEOUT = 5.0
#: How long a stream this command made lives with no one announcing: the services' default share_ttl.
IDLE_STREAM_MS = 60_000


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("capture", help="keep traces after the fact in every service that shares tail decisions through Redis")
    parser.add_argument(
        "trace_ids",
        nargs="+",
        metavar="TRACE_ID",
        help="a trace id: 32 hexadecimal digits, as logs show it; - reads them from standard input",
    )
    parser.add_argument("--share", required=True, metavar="URL", help="the services' share= URL, such as redis://host:6379/0#checkout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tracesieve.cli.usage import UsageError

    try:
        trace_ids = [parse_trace_id(text) for text in _given(args.trace_ids)]
        raw, shown, key = redis_target(args.share, "--share", "tail")
        require_client()
    except (ValueError, ConfigError) as error:
        raise UsageError(str(error)) from None
    if _password_in(raw):
        print(
            f"tracesieve: warning: the password in --share shows to every user of this host in its process list; "
            f"give it in {PASSWORD_VARIABLE} instead",
            file=sys.stderr,
        )
    url = Secret(raw)
    del raw
    password = None
    try:
        client, password = connect(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry_on_timeout=False)
        _announce(client, key, trace_ids)
        client.close()
    except Exception as error:  # whatever Redis or the client does: one line, and exit 1
        print(f"tracesieve: {shown}: the capture was not announced: {scrub(f'{type(error).__name__}: {error}', password)}")
        return 1
    count = f"{len(trace_ids):,} trace{'s' if len(trace_ids) != 1 else ''}"
    print(
        f"announced {count} to the services sharing tail decisions at {shown}: each that shares there now exports its "
        "spans of them that it still retains, and keeps their spans still to end (reason shared:rule, as its budget allows)"
    )
    return 0


def _password_in(url: str) -> bool:
    """Whether the URL carries a password, in its userinfo or as an option."""
    parts = urllib.parse.urlsplit(url)
    return bool(parts.password) or any(name == "password" and value for name, value in urllib.parse.parse_qsl(parts.query))


def _given(arguments: List[str]) -> List[str]:
    """The trace ids given, each ``-`` replaced by those standard input holds
    (one or more to a line, as ``grep`` and ``cut`` leave them)."""
    given: List[str] = []
    for argument in arguments:
        given.extend(sys.stdin.read().split() if argument == "-" else [argument])
    if not given:
        raise ValueError("TRACE_ID: standard input held no trace id")
    return given


#: Add one batch to the stream, trimmed as the services trim it; a stream made
#: here (no service announced lately) expires as theirs does when idle.
_ADD = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'b', ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
"""


def _announce(client: Any, key: str, trace_ids: List[int]) -> None:
    """Add the announcements to the fleet's stream, in batches at most as
    large as a reader takes."""
    add = client.register_script(_ADD)
    for start in range(0, len(trace_ids), MAX_BATCH):
        batch = capture_announcement(trace_ids[start : start + MAX_BATCH])
        add(keys=[key], args=[batch, STREAM_ENTRIES, IDLE_STREAM_MS])
