"""The tiers policies name: registered in code, made from a URL in the configuration, or the default.

``"memory"`` is always there; ``"redis"`` and ``"sqlite"`` can come from ``MEMOLLM_REDIS_URL``
and ``MEMOLLM_SQLITE_PATH``, any name from the config file's ``[backends]`` table, or from
:func:`register_tier`. Every tier but the plain in-process memory tier sits behind a circuit
breaker (one per backend object, whichever policies use it).
"""

from __future__ import annotations

import weakref
from typing import Any

from .backends import Backend, from_url
from .backends.guard import CircuitBreaker, Guarded
from .backends.memory import MemoryBackend
from .config import backend_url, generation, on_reset
from .errors import ConfigError
from .policy import Policy

__all__ = ["forget", "get_tier", "guard", "register_tier"]

_tiers: dict[str, Backend] = {}
_guards: weakref.WeakKeyDictionary[Any, Guarded] = weakref.WeakKeyDictionary()


def register_tier(name: str, backend: Backend, *, breaker: CircuitBreaker | None = None) -> None:
    """Make ``backend`` the tier that policies call ``name``.

    Every tier but the plain in-process memory tier gets a circuit breaker (``breaker``,
    or a default one): after a few consecutive failures it is skipped, and probed again
    after a backoff.
    """
    Policy(tiers=(name,))  # validates the name
    with generation.lock:
        _tiers[name] = guard(backend, breaker)
        generation.bump()


def guard(backend: Any, breaker: CircuitBreaker | None = None) -> Backend:
    """``backend`` behind its circuit breaker (the plain memory tier, which cannot fail, as it is)."""
    if type(backend) is MemoryBackend or isinstance(backend, Guarded):
        return backend  # type: ignore[no-any-return, unused-ignore]
    with generation.lock:
        guarded = _guards.get(backend)
        if guarded is None or (breaker is not None and guarded.breaker is not breaker):
            guarded = _guards[backend] = Guarded(backend, breaker)
        return guarded


def get_tier(name: str) -> Backend:
    """The tier called ``name``: registered, configured by URL, or the default ``"memory"``."""
    with generation.lock:
        backend = _tiers.get(name)
        if backend is not None:
            return backend
        url = backend_url(name)
        if url is not None:
            try:
                made: Any = from_url(url)
            except (ValueError, OSError) as exc:
                raise ConfigError(f"tier {name!r}: {exc}") from None
        elif name == "memory":
            made = MemoryBackend()
        else:
            raise ConfigError(
                f"no tier named {name!r}: call memollm.register_tier({name!r}, backend), set "
                f"MEMOLLM_REDIS_URL / MEMOLLM_SQLITE_PATH, or add it to [backends] in the config file"
            )
        backend = _tiers[name] = guard(made)
        return backend


def forget() -> None:
    """Drop every registered and configured tier (for :func:`memollm.config.reset`)."""
    with generation.lock:
        _tiers.clear()


on_reset(forget)
