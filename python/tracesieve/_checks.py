"""The checks of settings that only the Python layer uses (everything the
native layer receives is checked there). Each raises ``ConfigError`` naming
the field, the value and what would be valid."""

from __future__ import annotations

import math
from typing import Any

from tracesieve._core import ConfigError


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def check_flag(name: str, value: Any) -> bool:
    """True or False, nothing else."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected True or False, got {_shown(value)}")
    return value


def check_seconds(name: str, value: Any, *, minimum: float = 0.0, inclusive: bool = True) -> float:
    """A finite number of seconds at least (or above) ``minimum``."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: expected a number of seconds {bound}, got {_shown(value)}")
    if not math.isfinite(value) or value < minimum or (not inclusive and value == minimum):
        raise ConfigError(f"{name}: {value!r} is out of range; expected a number of seconds {bound}")
    return float(value)


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
    """A whole number (not a bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected a whole number >= {minimum}, got {_shown(value)}")
    if value < minimum:
        raise ConfigError(f"{name}: {value!r} is not a whole number >= {minimum}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """A number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name}: {value!r} is out of range; expected a fraction in [0, 1]")
    return float(value)


def check_exporter(value: Any) -> Any:
    """Something with the ``SpanExporter`` methods."""
    missing = [name for name in ("export", "shutdown") if not callable(getattr(value, name, None))]
    if missing:
        raise ConfigError(f"exporter: expected a SpanExporter, got {type(value).__name__} (no {missing[0]}())")
    return value
