"""No password in what tracesieve shows: every tracesieve logger gets a filter
that passes its message (and any traceback) through the native ``scrub``, and
every ``ConfigError`` scrubs its message, so a URL a user gave with
credentials is shown as ``user:***@``; what must keep a credential holds it
in a ``Secret``, which shows as ``***``."""

from __future__ import annotations

import logging
from typing import Any, Generic, TypeVar

from tracesieve._core import ConfigError, scrub

__all__ = ["Secret", "scrub", "scrubbed_logger"]

Value = TypeVar("Value")


class Secret(Generic[Value]):
    """A value that may hold credentials (a store URL, the arguments a sampler
    was built from): shown as ``***`` by ``repr`` and ``str``, so no attribute,
    log or error made from it reveals them."""

    __slots__ = ("_value",)

    def __init__(self, value: Value) -> None:
        self._value = value

    def reveal(self) -> Value:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


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
