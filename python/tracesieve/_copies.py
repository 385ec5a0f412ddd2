"""Deep copies and pickles built from a constructor's arguments, for objects
whose native state can be neither copied nor pickled."""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional, Tuple, Type, TypeVar

from opentelemetry.sdk.trace import SpanProcessor

from tracesieve._scrub import Secret

__all__ = ["BuiltFromArguments"]

#: What builds an object again: a callable, its positional and keyword arguments.
Recipe = Tuple[Callable[..., Any], Tuple[Any, ...], Dict[str, Any]]
Made = TypeVar("Made", bound="BuiltFromArguments")


class BuiltFromArguments:
    """Keeps the arguments an instance was made with. ``copy.copy`` shares the
    native state, as a shallow copy shares what it holds; ``copy.deepcopy`` and
    ``pickle`` build the object anew from its arguments (copied or pickled with
    it), as the SDK's samplers are copied by their settings. A deep copy shares
    the meter provider and span processor it was given."""

    #: None: made as part of another object, which is what to copy. A Secret:
    #: the arguments may hold credentials (a store URL with a password).
    _recipe: Optional[Secret[Recipe]]

    def __new__(cls: Type[Made], *args: Any, **kwargs: Any) -> Made:
        made = super().__new__(cls)
        made._recipe = Secret((cls, args, kwargs))
        return made

    def __copy__(self) -> Any:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo: Dict[int, Any]) -> Any:
        build, args, kwargs = self._revealed()
        # What the object reports to or reads from is shared, not copied: a meter
        # provider (which cannot be copied) and a span processor a provider feeds.
        for value in (*args, *kwargs.values()):
            if callable(getattr(value, "get_meter", None)) or isinstance(value, SpanProcessor):
                memo[id(value)] = value
        return build(*copy.deepcopy(args, memo), **copy.deepcopy(kwargs, memo))

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_built, self._revealed())

    def _revealed(self) -> Recipe:
        if self._recipe is None:
            raise TypeError(f"this {type(self).__name__} is part of the sampler that made it: copy or pickle that sampler instead")
        return self._recipe.reveal()


def _built(build: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    return build(*args, **kwargs)
