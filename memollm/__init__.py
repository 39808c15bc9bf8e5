"""memollm: never pay twice for the same LLM answer.

Put ``@cached_llm`` on a function that calls a model and repeated calls are
answered from cache: in process, from Redis shared by many workers, or from an
embedded SQLite file that survives restarts.
"""

from __future__ import annotations

from ._decorator import CachedClassMethod, CachedFunction, cached_llm
from .codec import register_type
from .config import configure
from .core import LLMCache
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
from .outcomes import Lookup, Outcome, lookup
from .policy import AdaptiveTTL, Policy, Semantic
from .registry import register_tier
from .resilience.keypool import KeyPool, current_key
from .resilience.retry import RetryPolicy
from .statistics import CacheStats, stats, stats_by_function
from .switches import bypass, refresh, tenant

__all__ = [
    "AdaptiveTTL",
    "AllKeysExhaustedError",
    "BackendError",
    "CacheEvent",
    "CacheStats",
    "CachedClassMethod",
    "CachedFunction",
    "CodecError",
    "ConfigError",
    "IncompatibleEntryError",
    "KeyExplanation",
    "KeyPool",
    "LLMCache",
    "Lookup",
    "MemollmError",
    "Outcome",
    "Policy",
    "RetryPolicy",
    "Semantic",
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
