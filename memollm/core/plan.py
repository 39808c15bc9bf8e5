"""A function's policy resolved for one configuration generation, with everything derived from it.

Built once per generation (``memollm.configure()``, ``register_tier()`` or a reset start a new
one) and read on every call, so the hot path never resolves configuration. Optional backend
capabilities (cross-process locks, a shared log of prompt vectors) are found here, once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._log import warn_once
from ..backends import Backend
from ..backends.capabilities import Counting, Locking, VectorLog
from ..backends.guard import Guarded
from ..backends.memory import MemoryBackend, MemoryItem
from ..keys import KeyBuilder
from ..policy import AdaptiveTTL, Policy, Semantic
from ..registry import get_tier, guard
from ..resilience.keypool import KeyPool
from ..resilience.retry import RetryPolicy

if TYPE_CHECKING:
    from ..semantic.settings import Settings
    from ..semantic.tier import SemanticTier

__all__ = ["Plan", "build"]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a call needs to know about its function's policy."""

    generation: int
    policy: Policy
    keys: KeyBuilder
    tiers: tuple[Backend, ...]
    names: tuple[str, ...]  # for stats and logs; a repeated name gets "#2"
    ttl: float | None  # seconds new entries stay fresh
    skip_sampled: bool
    enabled: bool
    hits: tuple[itertools.count[int], ...]  # the hit counter of each tier
    # The first tier's peek() when it is exactly the in-process memory tier: hits reuse its memo.
    peek: Callable[[str], MemoryItem | None] | None
    retry: RetryPolicy | None
    keys_pool: KeyPool | None
    key_param: str | None
    single_flight: bool
    lock: Guarded | None  # the tier whose backend holds cross-process locks
    stale: float | None  # seconds an expired entry may still be served if the call fails
    refresh_window: float  # a hit with less time left than this is refreshed (0: never)
    semantic: SemanticTier | None
    vector_log: Guarded | None  # the tier whose backend shares prompt vectors
    index_mode: str  # semantic_index: where the semantic index lives ("auto", "server", "process")
    settings: Settings | None  # what semantic= means (memollm.semantic.settings), with a semantic tier
    adaptive: AdaptiveTTL | None
    flat: bool  # memoised memory hits may take the flat path (no per-key bookkeeping needed)
    bounded: Semantic | None  # semantic hits with a promised error rate (Semantic(max_error=...))
    evidence: Backend | None  # the tier keeping their evidence: shared when there is one

    @property
    def resilient(self) -> bool:
        """Whether the upstream call goes through retries or a key pool."""
        return self.retry is not None or self.keys_pool is not None

    @property
    def shadow(self) -> bool:
        """Whether semantic lookups are only measured, never served."""
        return self.settings is not None and not self.settings.serves

    @property
    def physical_ttl(self) -> float | None:
        """How long tiers keep an entry: its TTL plus the stale window."""
        return None if self.ttl is None else self.ttl + (self.stale or 0.0)


def build(
    generation: int,
    policy: Policy,
    raw: Callable[..., Any],
    fid: str,
    *,
    hit_counter: Callable[[str], itertools.count[int]],
    semantic: SemanticTier | None,
) -> Plan:
    """The plan for ``raw`` (identity ``fid``) under ``policy``; ``semantic`` is its semantic tier."""
    tiers = tuple(get_tier(t) if isinstance(t, str) else guard(t) for t in policy.tiers)
    names = _unique(t if isinstance(t, str) else t.name for t in policy.tiers)
    key_policy = policy
    if policy.key_param is not None:  # an API key never belongs in a cache key
        key_policy = policy.replace(ignore=policy.ignore | {policy.key_param})
    lock = _capable(tiers, Locking) if policy.distributed else None
    if policy.distributed and lock is None:
        warn_once(("lock", fid), "%s: distributed=True needs a Redis tier in tiers; single-flight stays "
                  "in-process", fid)  # fmt: skip
    # Exactly MemoryBackend: a subclass may override get() and must be called.
    memory_first = type(tiers[0]) is MemoryBackend and policy.enabled
    sem = policy.semantic
    bounded = sem if isinstance(sem, Semantic) and sem.max_error is not None else None
    ttl = policy.ttl_seconds
    return Plan(
        generation=generation,
        policy=policy,
        keys=KeyBuilder(raw, key_policy, fid=fid),
        tiers=tiers,
        names=names,
        ttl=ttl,
        skip_sampled=policy.sampled == "skip",
        enabled=policy.enabled,
        hits=tuple(hit_counter(name) for name in names),
        peek=tiers[0].peek if memory_first else None,  # type: ignore[attr-defined]
        retry=policy.retry,  # type: ignore[arg-type]  # normalised by Policy
        keys_pool=policy.keys,
        key_param=policy.key_param,
        single_flight=policy.single_flight,
        lock=lock,
        stale=policy.stale_ttl,
        refresh_window=(ttl or 0.0) * (policy.refresh_ahead or 0.0),
        semantic=semantic,
        vector_log=_capable(tiers, VectorLog) if semantic is not None else None,
        index_mode=policy.semantic_index,
        settings=_settings(policy) if semantic is not None else None,
        adaptive=policy.adaptive,
        flat=memory_first and policy.adaptive is None,
        bounded=bounded,
        evidence=_evidence_tier(tiers) if bounded is not None and semantic is not None else None,
    )


def _settings(policy: Policy) -> Settings | None:
    from ..semantic.settings import resolve

    return resolve(policy.semantic, policy.verify)


def _evidence_tier(tiers: tuple[Backend, ...]) -> Backend | None:
    """Where comparisons are counted: the first shared tier that keeps counters, else the memory tier."""
    shared = next((t for t in tiers if isinstance(t, Guarded) and isinstance(t.backend, Counting)), None)
    return shared or next((t for t in tiers if isinstance(t, Counting)), None)


def _capable(tiers: tuple[Backend, ...], capability: type) -> Guarded | None:
    """The first guarded tier whose backend has ``capability``."""
    for tier in tiers:
        if isinstance(tier, Guarded) and isinstance(tier.backend, capability):
            return tier
    return None


def _unique(names: Any) -> tuple[str, ...]:
    """Tier names for stats and logs; a repeated name gets "#2", "#3"."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return tuple(out)
