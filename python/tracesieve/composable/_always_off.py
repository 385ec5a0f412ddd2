"""The composable sampler that drops every span (no threshold)."""

from __future__ import annotations

from typing import Any, Dict

from tracesieve.composable._composable import Composable, ComposableSampler, Foreign


class _ComposableAlwaysOff(Composable):
    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"always_off": {}}

    def get_description(self) -> str:
        return "ComposableAlwaysOff"


_always_off = _ComposableAlwaysOff()


def composable_always_off() -> ComposableSampler:
    """A composable sampler that drops every span: no threshold, not reliable."""
    return _always_off
