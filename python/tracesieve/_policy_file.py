"""Reading a rule policy ({rules, default_rate, multipliers, ...}) from a JSON
or TOML file, with errors that name the file and the key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Union

POLICY_KEYS = ("rules", "default_rate", "multipliers", "respect_parent", "precision")


def load_policy(path: Union[str, Path]) -> Dict[str, Any]:
    """The keyword arguments for ``RuleSampler`` held in a ``.json`` or ``.toml`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; expected a rules file (.json or .toml)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read: {error}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    elif suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - exercised on Python < 3.11 only
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: invalid TOML: {error}") from None
    else:
        raise ValueError(f"{path}: unknown file type {suffix or '(none)'!r}; expected .json or .toml")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table/object at the top level, got {type(data).__name__}")
    unknown = [key for key in data if key not in POLICY_KEYS]
    if unknown:
        raise ValueError(f"{path}: {unknown[0]}: unknown key; expected one of {', '.join(POLICY_KEYS)}")
    return data


def rule_sampler_from_file(path: Union[str, Path]):
    """A ``RuleSampler`` built from a policy file; every error names the file."""
    from tracesieve._samplers import RuleSampler

    policy = load_policy(path)
    try:
        return RuleSampler(**policy)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{path}: {error}") from None
