"""The ``memollm`` logger, with warnings that are said once, not once per call."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("memollm")

_said: set[tuple[object, ...]] = set()
_lock = threading.Lock()
_LIMIT = 10_000


def warn_once(key: tuple[object, ...], message: str, *args: object) -> None:
    """Log ``message`` at WARNING the first time ``key`` is seen."""
    with _lock:
        if key in _said:
            return
        if len(_said) >= _LIMIT:
            _said.clear()
        _said.add(key)
    logger.warning(message, *args)
