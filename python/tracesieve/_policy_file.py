"""Reading a rule policy ({rules, default_rate, multipliers, ...}) from a file,
with errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Union

POLICY_KEYS = ("rules", "default_rate", "multipliers", "respect_parent", "precision")


def load_policy(path: Union[str, Path]) -> Dict[str, Any]:
    """The keyword arguments for ``RuleSampler`` held in a ``.toml``, ``.yaml`` or ``.json`` file."""
    from tracesieve._pipeline import ConfigError, load_config

    data = load_config(Path(path))
    unknown = [key for key in data if key not in POLICY_KEYS]
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key; expected one of {', '.join(POLICY_KEYS)}")
    return data


def rule_sampler_from_file(path: Union[str, Path]):
    """A ``RuleSampler`` built from a policy file; every error names the file."""
    from tracesieve._pipeline import ConfigError
    from tracesieve._samplers import RuleSampler

    policy = load_policy(path)
    try:
        return RuleSampler(**policy)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None
