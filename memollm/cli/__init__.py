"""The ``memollm`` command line: ``demo``, ``stats``, ``clear``, ``inspect``, ``serve``, ``calibrate``.

Built on click, with rich for tables and progress bars.
"""

from __future__ import annotations

from . import calibrate, demo, model, serve, store  # noqa: F401 - importing registers the commands
from ._app import main

__all__ = ["main"]
