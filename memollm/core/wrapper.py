"""The wrapt proxy a cached function is wrapped in."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import wrapt

__all__ = ["wrap"]

Call = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


class _PlainFunctionWrapper(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """wrapt's FunctionWrapper with a direct call path for plain functions.

    wrapt's ``__call__`` probes ``wrapped.__self__`` on every call, to find
    functions that were already bound when decorated. On a plain function that
    probe raises and swallows an AttributeError, which costs more than a whole
    memory-tier hit. A plain function has no ``__self__``, so the probe can never
    succeed and the call goes straight to the wrapper. Binding to instances and
    classes (the descriptor path) is wrapt's own, unchanged.
    """

    def __init__(self, wrapped: Callable[..., Any], wrapper: Call) -> None:
        super().__init__(wrapped, wrapper)
        self._self_call = wrapper

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        return self._self_call(self.__wrapped__, None, args, kwargs)


def wrap(func: Callable[..., Any], wrapper: Call, state: object) -> Any:
    """Wrap ``func`` so calls go through ``wrapper``, with ``state`` as its ``cache`` attribute."""
    cls = _PlainFunctionWrapper if isinstance(func, types.FunctionType) else wrapt.FunctionWrapper
    proxy = cls(func, wrapper)
    # Stored on the proxy itself (not forwarded to func), as wrapt.bind_state_to_wrapper does.
    proxy.__self_setattr__("cache", state)
    return proxy
