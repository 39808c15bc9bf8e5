"""Who a call is to: a function's stable name, and which argument values are not arguments."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["function_id", "not_given"]

# SDKs' "argument not given" markers (openai, anthropic and other Stainless-made SDKs; httpx).
_NOT_GIVEN = frozenset({"NotGiven", "Omit", "UseClientDefault"})


def not_given(value: object) -> bool:
    """Whether ``value`` is an SDK's marker for an argument that was not passed."""
    tp = type(value)
    if tp.__name__ not in _NOT_GIVEN:
        return False
    if tp.__module__.split(".", 1)[0] in ("openai", "anthropic", "httpx"):
        return True
    try:  # other SDKs made by the same generator have the same markers, and they are falsy
        return not bool(value)
    except Exception:  # noqa: BLE001 - a marker that cannot say is not one we know
        return False


def function_id(func: Callable[..., Any]) -> str:
    """The stable identity of a function: module and qualified name.

    Scripts run as ``__main__`` also get their file's stem, so two scripts'
    ``ask()`` functions never share entries in a shared tier.
    """
    module = getattr(func, "__module__", None) or "<unknown>"
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file:
            module = f"__main__:{Path(main_file).stem}"
    return f"{module}.{getattr(func, '__qualname__', getattr(func, '__name__', '<callable>'))}"
