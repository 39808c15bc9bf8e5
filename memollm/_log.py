"""The ``memollm`` logger, with warnings that are rate-limited, not repeated once per call.

Library code never prints; everything goes through the standard ``logging`` module
under the ``memollm`` logger, which applications configure as they like.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("memollm")

_said: set[tuple[object, ...]] = set()
_last: dict[tuple[object, ...], list[float]] = {}  # key -> [last logged at, suppressed since]
_lock = threading.Lock()
_LIMIT = 10_000


def warn_once(key: tuple[object, ...], message: str, *args: object) -> None:
    """Log ``message`` at WARNING the first time ``key`` is seen."""
    if _first(key):
        logger.warning(message, *args)


def info_once(key: tuple[object, ...], message: str, *args: object) -> None:
    """Log ``message`` at INFO the first time ``key`` is seen."""
    if _first(key):
        logger.info(message, *args)


def _first(key: tuple[object, ...]) -> bool:
    with _lock:
        if key in _said:
            return False
        if len(_said) >= _LIMIT:
            _said.clear()
        _said.add(key)
    return True


def warn_limited(key: tuple[object, ...], message: str, *args: object, interval: float = 60.0) -> None:
    """Log ``message`` at WARNING at most once per ``interval`` seconds for ``key``.

    The next message after a quiet spell says how many were suppressed.
    """
    now = time.monotonic()
    with _lock:
        state = _last.get(key)
        if state is not None and now - state[0] < interval:
            state[1] += 1
            return
        suppressed = 0 if state is None else int(state[1])
        if len(_last) >= _LIMIT:
            _last.clear()
        _last[key] = [now, 0]
    if suppressed:
        logger.warning(message + " (%d similar warnings suppressed)", *args, suppressed)
    else:
        logger.warning(message, *args)
