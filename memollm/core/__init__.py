"""The cache behind every decorated function, as a pipeline of small steps.

A call goes: :mod:`.decide` (key it, or bypass) -> :mod:`.tiers` (read through the tiers)
-> :mod:`.similar` (the semantic tier, on a miss) -> single-flight (:mod:`memollm.coalesce`)
-> :mod:`.upstream` (the model, with retries and key failover) -> :mod:`.encode` and
:mod:`.tiers` (store) ; :mod:`.lifetime` adds refresh-ahead and adaptive TTL, :mod:`.observe`
the outcome notes and events. :mod:`.sync` and :mod:`.aio` are the two faces that run these
steps; :mod:`.plan` and :mod:`.state` hold what they read; :mod:`.cache` is ``fn.cache``.
See docs/architecture.md.
"""

from .cache import LLMCache

__all__ = ["LLMCache"]
