"""No password in what tracesieve shows: every tracesieve logger gets a filter
that passes its message (and any traceback) through the native ``scrub``, and
every ``ConfigError`` scrubs its message, so a URL a user gave with
credentials is shown as ``user:***@``."""

from __future__ import annotations

import logging
from typing import Any

from tracesieve._core import ConfigError, scrub

__all__ = ["scrub", "scrubbed_logger"]


def _scrubbed_init(self: BaseException, *args: Any) -> None:
    BaseException.__init__(self, *(scrub(arg) if isinstance(arg, str) else arg for arg in args))


# ConfigError is made natively, which scrubs its own messages; the ones raised in
# Python quote URLs too (an endpoint of the wrong scheme), so the type scrubs them all.
ConfigError.__init__ = _scrubbed_init  # type: ignore[method-assign]

_FORMATTER = logging.Formatter()


class _Scrubbing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not format: the handler reports that, as it would
            return True
        shown = scrub(message)
        if shown != message:
            record.msg, record.args = shown, ()
        if record.exc_info and not record.exc_text:
            # Formatted here once, scrubbed; handlers reuse exc_text as it is.
            record.exc_text = scrub(_FORMATTER.formatException(record.exc_info))
        return True


def scrubbed_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, with the scrubbing filter (added once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(existing, _Scrubbing) for existing in logger.filters):
        logger.addFilter(_Scrubbing())
    return logger
