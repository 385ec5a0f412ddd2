"""The composable sampler that keeps every span (threshold 0, reliable)."""

from __future__ import annotations

from typing import Any, Dict

from tracesieve.composable._composable import Composable, ComposableSampler, Foreign


class _ComposableAlwaysOn(Composable):
    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"always_on": {}}

    def get_description(self) -> str:
        return "ComposableAlwaysOn"


_always_on = _ComposableAlwaysOn()


def composable_always_on() -> ComposableSampler:
    """A composable sampler that keeps every span: threshold 0, reliable, no attributes."""
    return _always_on
