"""The wrapt proxy a cached function is wrapped in."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import wrapt

__all__ = ["wrap"]

Call = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def _plain_wrapper(func: Callable[..., Any], wrapper: Call) -> type[Any]:
    """A FunctionWrapper class for one plain function, whose calls go straight to ``wrapper``.

    wrapt's ``__call__`` probes ``wrapped.__self__`` on every call, to find functions that
    were already bound when decorated; on a plain function that probe raises and swallows an
    AttributeError, which costs more than a whole memory-tier hit. A plain function has no
    ``__self__``, so the call can go straight to the wrapper. ``func`` and ``wrapper`` are
    closed over rather than read from the proxy: reading attributes through wrapt's proxy
    costs about 2,000 instructions per call, a seventh of a hit. Binding to instances and
    classes (the descriptor path) is wrapt's own, unchanged.
    """

    def __call__(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        return wrapper(func, None, args, kwargs)

    return type("CachedFunction", (wrapt.FunctionWrapper,), {"__call__": __call__, "__module__": __name__})


def wrap(func: Callable[..., Any], wrapper: Call, state: object) -> Any:
    """Wrap ``func`` so calls go through ``wrapper``, with ``state`` as its ``cache`` attribute."""
    cls = _plain_wrapper(func, wrapper) if isinstance(func, types.FunctionType) else wrapt.FunctionWrapper
    proxy = cls(func, wrapper)
    # Stored on the proxy itself (not forwarded to func), as wrapt.bind_state_to_wrapper does.
    proxy.__self_setattr__("cache", state)
    return proxy
