"""The composable sampler that follows the parent (ComposableParentThreshold)."""

from __future__ import annotations

from typing import Any, Dict

from tracesieve.composable._composable import Composable, ComposableSampler, Foreign, checked


class _ComposableParentThreshold(Composable):
    def __init__(self, root_sampler: ComposableSampler):
        self._root_sampler = checked(root_sampler, "root_sampler")
        self._description = f"ComposableParentThreshold{{root={root_sampler.get_description()}}}"

    def _spec(self, foreign: Foreign) -> Dict[str, Any]:
        return {"parent_threshold": {"root": foreign.composable(self._root_sampler)}}

    def get_description(self) -> str:
        return self._description


def composable_parent_threshold(root_sampler: ComposableSampler) -> ComposableSampler:
    """A composable sampler that follows the parent, and asks ``root_sampler``
    about spans with no parent: a child gets its parent's threshold (reliable)
    when the parent has one, else threshold 0 (not reliable) when the parent was
    sampled, else no threshold."""
    return _ComposableParentThreshold(root_sampler)
