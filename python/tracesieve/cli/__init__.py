"""The ``tracesieve`` command: simulate a policy on realistic traffic, check
and explain a configuration, list the budget records, capture traces across a
fleet, time the samplers, run the demo. One module per command; bad input is
one line on stderr and exit code 2. A reader that goes
away (``tracesieve demo | head``) ends the command quietly, as it ends ``cat``."""

from __future__ import annotations

import argparse
import os
import select
import sys
from typing import Optional, Sequence

from tracesieve._scrub import scrub
from tracesieve.cli.usage import Parser, UsageError


def _parser() -> argparse.ArgumentParser:
    from tracesieve.cli import bench, capture, check, demo, explain, host_records, simulate

    parser = Parser(
        prog="tracesieve",
        description="Smart trace sampling for OpenTelemetry Python: simulate, check, explain, records, capture, bench, demo.",
    )
    parser.add_argument("--version", action="version", version=_version(), help="print the versions a bug report needs, and exit")
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    simulate.add_parser(commands)
    check.add_parser(commands)
    explain.add_parser(commands)
    host_records.add_parser(commands)
    capture.add_parser(commands)
    bench.add_parser(commands)
    demo.add_parser(commands)
    parser.set_defaults(command=None)
    return parser


def _version() -> str:
    """tracesieve's version, with the SDK's and Python's beside it."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import tracesieve

    try:
        sdk = version("opentelemetry-sdk")
    except PackageNotFoundError:
        sdk = "not installed"
    return f"tracesieve {tracesieve.__version__} (opentelemetry-sdk {sdk}, {platform.python_implementation()} {platform.python_version()})"


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            args = _parser().parse_args(["simulate", *argv])
        return int(args.run(args))
    except BrokenPipeError as error:
        if not _reader_gone():
            return _failed(error)
        # Nothing more can be shown; what is still buffered goes nowhere, not to a traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: how a shell reports a command the broken pipe stopped
    except (UsageError, ValueError, TypeError, OSError) as error:
        return _failed(error)
    except KeyboardInterrupt:
        print("tracesieve: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT: how a shell reports a command Ctrl-C stopped


def _failed(error: Exception) -> int:
    # What is echoed came from the command line or a file: hide any password in it.
    print(f"tracesieve: error: {scrub(str(error))}", file=sys.stderr)
    return 2


def _reader_gone() -> bool:
    """Whether standard output is a pipe nobody reads any more (the broken pipe
    was not a socket's)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False
