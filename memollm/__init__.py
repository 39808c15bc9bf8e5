"""memollm: never pay twice for the same LLM answer.

Put ``@cached_llm`` on a function that calls a model and repeated calls are
answered from cache: in process, from Redis shared by many workers, or from an
embedded SQLite file that survives restarts.
"""

from __future__ import annotations

from ._cache import LLMCache, stats_by_function
from ._cache import global_stats as stats
from ._control import Lookup, bypass, lookup, refresh, tenant
from ._decorator import CachedFunction, cached_llm
from ._stats import CacheStats
from .codec import register_type
from .config import configure, register_tier
from .errors import (
    AllKeysExhaustedError,
    BackendError,
    CodecError,
    ConfigError,
    IncompatibleEntryError,
    MemollmError,
    TierUnavailableError,
    UncacheableArgumentError,
)
from .events import CacheEvent
from .keys import KeyExplanation
from .policy import AdaptiveTTL, Policy
from .resilience.keypool import KeyPool, current_key
from .resilience.retry import RetryPolicy

__all__ = [
    "AdaptiveTTL",
    "AllKeysExhaustedError",
    "BackendError",
    "CacheEvent",
    "CacheStats",
    "CachedFunction",
    "CodecError",
    "ConfigError",
    "IncompatibleEntryError",
    "KeyExplanation",
    "KeyPool",
    "LLMCache",
    "Lookup",
    "MemollmError",
    "Policy",
    "RetryPolicy",
    "TierUnavailableError",
    "UncacheableArgumentError",
    "bypass",
    "cached_llm",
    "configure",
    "current_key",
    "lookup",
    "refresh",
    "register_tier",
    "register_type",
    "stats",
    "stats_by_function",
    "tenant",
]

__version__ = "0.1.0"
