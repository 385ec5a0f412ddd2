"""The checks of settings that only the Python layer uses (everything the
native layer receives is checked there). Each raises ``ConfigError`` naming
the field, the value and what would be valid."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

from tracesieve._core import ConfigError, scrub
from tracesieve._scrub import scrubbed_logger

#: Characters of a value a message quotes: a megabyte string is named, not repeated.
QUOTED_LENGTH = 80
#: The longest a thread can wait (about 292 years on Linux): every setting in
#: seconds is waited on somewhere, and a longer wait raises OverflowError there.
LONGEST_WAIT = threading.TIMEOUT_MAX
_LONGEST_WAIT_WORDS = (
    f"about {LONGEST_WAIT / 31_557_600:,.0f} years" if LONGEST_WAIT >= 31_557_600 else f"about {LONGEST_WAIT / 86_400:,.0f} days"
)


def shown(value: Any) -> str:
    """``type value`` as a message shows it, such as ``str '0.1'``."""
    return _described(value) or f"{type(value).__name__} {quoted(value)}"


def quoted(value: Any) -> str:
    """A value's repr as a message quotes it: its first ``QUOTED_LENGTH``
    characters and its length, an integer too long for Python to print
    described, and a value whose repr fails named by its type (a message
    must never raise)."""
    described = _described(value)
    if described:
        return described
    try:
        # Masked before it is clipped: clipped, a URL could lose the @ that marks its password.
        text = scrub(repr(value))
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return text if len(text) <= QUOTED_LENGTH else f"{text[:QUOTED_LENGTH]}... ({len(text):,} characters)"


def _described(value: Any) -> str:
    """An integer too long to read, described ('' for anything else)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return ""


def check_flag(name: str, value: Any) -> bool:
    """True or False, nothing else."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected True or False, got {shown(value)}")
    return value


def check_seconds(name: str, value: Any, *, minimum: float = 0.0, inclusive: bool = True) -> float:
    """A finite number of seconds at least (or above) ``minimum`` and at most
    ``LONGEST_WAIT``."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: expected a number of seconds {bound}, got {shown(value)}")
    if not finite_number(value) or value < minimum or (not inclusive and value == minimum):
        raise ConfigError(f"{name}: {quoted(value)} is out of range; expected a number of seconds {bound}")
    if value > LONGEST_WAIT:
        raise ConfigError(
            f"{name}: {quoted(value)} is out of range; expected a number of seconds {bound} "
            f"and at most {LONGEST_WAIT:,.0f} ({_LONGEST_WAIT_WORDS}, the longest wait a thread can make)"
        )
    return float(value)


def finite_number(value: Any) -> bool:
    """An int or float (not a bool) that a float holds finitely: an integer of
    hundreds of digits, which JSON and Python allow, is none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
    """A whole number (not a bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected a whole number >= {minimum}, got {shown(value)}")
    if value < minimum:
        raise ConfigError(f"{name}: {quoted(value)} is not a whole number >= {minimum}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """A number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name}: {quoted(value)} is out of range; expected a fraction in [0, 1]")
    return float(value)


def check_exporter(value: Any) -> Any:
    """Something with the ``SpanExporter`` methods."""
    missing = [name for name in ("export", "shutdown") if not callable(getattr(value, name, None))]
    if missing:
        raise ConfigError(f"exporter: expected a SpanExporter, got {type(value).__name__} (no {missing[0]}())")
    return value


def check_items(name: str, value: Any, kind: type, what: str, one: str) -> List[Any]:
    """A list or tuple (never a lone string) of ``what``, each ``one`` of type ``kind``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name}: expected a list of {what}, got {shown(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, kind):
            raise ConfigError(f"{name}[{index}]: expected {one}, got {shown(item)}")
    return list(value)


def check_tail_rules(value: Any) -> Optional[List[Dict[str, Any]]]:
    """None, or a tail's rules as the keep rules they are: a tail rule keeps
    every trace it matches, so a rate or an action other than "keep" is
    refused rather than turned into a keep."""
    if value is None:
        return None
    rules = check_items("rules", value, Mapping, "rules", "a rule: a mapping such as {'name': ..., 'match': {...}}")
    for index, rule in enumerate(rules):
        if "rate" in rule:
            raise ConfigError(
                f"rules[{index}].rate: a tail rule keeps every trace it matches, so it takes no rate "
                "(sample a share of traces in the head sampler instead)"
            )
        action = rule.get("action", "keep")
        if not (isinstance(action, str) and action == "keep"):
            raise ConfigError(
                f"rules[{index}].action: a tail rule keeps every trace it matches, got {shown(action)}; "
                'expected "keep" or no action (traces no rule keeps are dropped unless something else keeps them)'
            )
    return [{**rule, "action": "keep"} for rule in rules]


def check_meter_provider(value: Any) -> Any:
    """None (the global provider) or something with ``get_meter``."""
    if value is not None and not callable(getattr(value, "get_meter", None)):
        raise ConfigError(f"meter_provider: expected an OpenTelemetry MeterProvider, got {type(value).__name__} (no get_meter())")
    return value


def check_route_thresholds(value: Any) -> Optional[Dict[Any, Any]]:
    """None, or a mapping of route to seconds (the native layer checks each pair)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"route_thresholds: expected a mapping of route to seconds, such as {{'/api/search': 0.5}}, got {shown(value)}")
    return dict(value)


#: The longest path the system opens (Linux's PATH_MAX): a longer one is refused
#: by its length at construction, never quoted whole in a message or a warning.
MAX_PATH = 4096


def check_path(name: str, value: Any) -> Any:
    """A file path: text or an ``os.PathLike``, at most ``MAX_PATH`` characters."""
    if not isinstance(value, (str, os.PathLike)) or not str(os.fspath(value)):
        raise ConfigError(f"{name}: expected a file path (str or pathlib.Path), got {shown(value)}")
    length = len(str(os.fspath(value)))
    if length > MAX_PATH:
        raise ConfigError(f"{name}: a path of {length:,} characters; expected at most {MAX_PATH:,}")
    return value


def check_seed(value: Any) -> Optional[int]:
    """None or a whole number, for a reproducible random sequence."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"seed: expected a whole number or None, got {shown(value)}")
    return value


#: The SDK's ``BatchSpanProcessor`` variables, read for a batch setting not given:
#: the setting, its variable, the variable's unit in seconds (1e-3: milliseconds).
BATCH_VARIABLES = {
    "max_queue_size": ("OTEL_BSP_MAX_QUEUE_SIZE", None),
    "max_export_batch_size": ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", None),
    "schedule_delay": ("OTEL_BSP_SCHEDULE_DELAY", 1e-3),
}


def batch_setting(name: str, value: Any, default: Any) -> Any:
    """``value`` when given; else its ``OTEL_BSP_*`` variable when set (as the
    SDK's batch processor reads it, a count or milliseconds); else ``default``.
    A variable that holds no valid value is a ``ConfigError`` naming it."""
    if value is not None:
        return value
    variable, unit = BATCH_VARIABLES[name]
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if unit is None:
        try:
            count = int(text)
        except ValueError:
            count = 0
        if count < 1:
            raise ConfigError(f"{variable}: {quoted(text)} is not a whole number >= 1 (read for {name}, which was not given)")
        return count
    try:
        milliseconds = float(text)
    except ValueError:
        milliseconds = math.nan
    if not math.isfinite(milliseconds) or milliseconds < 0 or milliseconds * unit > LONGEST_WAIT:
        raise ConfigError(
            f"{variable}: {quoted(text)} is not a number of milliseconds >= 0 and at most "
            f"{LONGEST_WAIT * 1e3:,.0f} (read for {name}, which was not given)"
        )
    return milliseconds * unit


#: What a misconfigured zero-code sampler keeps, unless TRACESIEVE_FALLBACK_RATE says otherwise.
DEFAULT_FALLBACK_RATE = 0.01
FALLBACK_VARIABLE = "TRACESIEVE_FALLBACK_RATE"


def parse_rate(name: str, text: str) -> float:
    """A sampling rate in [0, 1] from the text of an environment variable."""
    try:
        rate = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {quoted(text)} is not a number; expected a sampling rate in [0, 1], such as 0.1") from None
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{name}: {quoted(text)} is out of range; expected a sampling rate in [0, 1]")
    return rate


def fallback_rate() -> float:
    """The rate of the fallback sampler: ``TRACESIEVE_FALLBACK_RATE``, else 0.01."""
    text = os.environ.get(FALLBACK_VARIABLE, "").strip()
    if not text:
        return DEFAULT_FALLBACK_RATE
    try:
        return parse_rate(FALLBACK_VARIABLE, text)
    except ConfigError as error:
        scrubbed_logger("tracesieve.config").error("tracesieve: %s; using %s", error, DEFAULT_FALLBACK_RATE)
        return DEFAULT_FALLBACK_RATE
