"""memollm as LiteLLM's cache: ``memollm.litellm.enable(ttl=600)``, then ``completion(..., caching=True)``.

Needs ``litellm`` (the ``litellm`` extra). LiteLLM keeps its own cache logic
(which calls are cached, its keys, assembling streams and replaying them, per-call
``cache={...}`` controls) and hands memollm what to store and look up under its key, through
its documented cache interface: a ``Cache`` whose backend is a LiteLLM ``BaseCache``. memollm
keeps the entries in its tiers (memory, Redis, SQLite), with its tenants, stats and events.
Exact only: LiteLLM passes a key and the messages, not the model apart from the prompt, so a
semantic partition cannot be built (use ``memollm serve`` or the decorator for that).
"""

from __future__ import annotations

import asyncio
from typing import Any

from litellm.caching.base_cache import BaseCache

from ._decorator import cached_llm
from .errors import ConfigError
from .policy import Policy
from .statistics import CacheStats

__all__ = ["MemoLLMCache", "enable"]

_FOREVER = 10 * 365 * 86400  # LiteLLM's default_ttl for entries that never expire


class MemoLLMCache(BaseCache):
    """A LiteLLM cache backend whose entries live in memollm's tiers.

    Args:
        name: The name for configuration overrides and stats (default ``"litellm"``).
        **policy: Any :func:`memollm.cached_llm` setting but ``semantic``.
    """

    def __init__(self, *, name: str = "litellm", **policy: Any) -> None:
        if policy.get("semantic") not in (None, False):
            raise ConfigError(
                "memollm.litellm: LiteLLM's cache interface gives keys only; semantic is not possible"
            )
        # Whatever cached_llm accepts (seconds, a timedelta, an AdaptiveTTL, None), read as seconds.
        seconds = Policy(ttl=policy.get("ttl", Policy().ttl)).ttl_seconds
        super().__init__(default_ttl=max(1, round(seconds)) if seconds is not None else _FOREVER)

        def litellm_entry(key: str) -> Any:
            raise LookupError("never called: the cache is read and written, not called through")

        policy.setdefault("version", "litellm-1")
        self._fn = cached_llm(name=name, **policy)(litellm_entry)

    def get_cache(self, key: str, **kwargs: Any) -> Any:
        """The entry LiteLLM stored under ``key``, or None."""
        return self._fn.cache.get(key)

    async def async_get_cache(self, key: str, **kwargs: Any) -> Any:
        """Async :meth:`get_cache`."""
        return await self._fn.cache.aget(key)

    def set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        """Store what LiteLLM gives under ``key`` (its per-call ``ttl`` is not used: the policy's is)."""
        self._fn.cache.store(value, key)

    async def async_set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        """Async :meth:`set_cache` (the tier writes run on a worker thread)."""
        await asyncio.to_thread(self.set_cache, key, value)

    async def async_set_cache_pipeline(self, cache_list: list[tuple[str, Any]], **kwargs: Any) -> None:
        """Store several entries."""
        for key, value in cache_list:
            await self.async_set_cache(key, value)

    def flush_cache(self) -> None:
        """Remove every entry."""
        self._fn.cache.clear()

    async def disconnect(self) -> None:
        """Nothing to close: the tiers belong to memollm."""

    def stats(self) -> CacheStats:
        """Hits, misses and savings."""
        return self._fn.cache.stats()


def enable(**policy: Any) -> MemoLLMCache:
    """Make memollm LiteLLM's cache (``litellm.cache``); calls with ``caching=True`` use it.

    Returns the backend, for ``.stats()``. ``litellm.cache = None`` turns caching off again.
    """
    import litellm
    from litellm.caching.caching import Cache
    from litellm.types.caching import LiteLLMCacheType

    backend = MemoLLMCache(**policy)
    cache = Cache(type=LiteLLMCacheType.LOCAL)
    cache.cache = backend
    litellm.cache = cache
    return backend
