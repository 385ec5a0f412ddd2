"""Loggers whose lines never show a password: every tracesieve logger gets a
filter that passes its message (and any traceback) through the native
``scrub``, so a URL a user gave with credentials is logged as ``user:***@``."""

from __future__ import annotations

import logging

from tracesieve._core import scrub

__all__ = ["scrub", "scrubbed_logger"]

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
