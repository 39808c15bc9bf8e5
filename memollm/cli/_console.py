"""The console commands print to: the terminal's width, or no wrapping at all when piped or logged."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["console"]

_UNWRAPPED = 10_000  # columns when the output is not a terminal: lines stay whole in files and CI logs


def console(**options: Any) -> Any:
    """A rich Console; on a terminal as wide as it, elsewhere wide enough never to wrap."""
    from rich.console import Console

    if not sys.stdout.isatty():
        options.setdefault("width", _UNWRAPPED)
    return Console(**options)
