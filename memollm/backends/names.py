"""How memollm names what it keeps beside entries, so that tiers and tools tell them from entries.

Keys of entries are ``{namespace}:{function digest}:{call digest}``; beside them live a lock
per key being called (``lock:`` before it), a server index's vector hashes (``vec:``), a
partition's shared vector log, and the evidence counters of error-bounded semantic hits,
by the suffixes below. ``memollm stats`` and ``inspect`` leave them out.
"""

from __future__ import annotations

__all__ = [
    "AUXILIARY_PREFIXES", "AUXILIARY_SUFFIXES", "ENTRY_EVIDENCE", "LOCK", "PARTITION_EVIDENCE", "VECTOR",
    "VECTOR_LOG",
]  # fmt: skip

LOCK = "lock:"  # prefix: the cross-process lock of a key being called
VECTOR = "vec:"  # prefix: a prompt's vector in the server index
VECTOR_LOG = ":vectors"  # suffix: a partition's shared log of prompt vectors
PARTITION_EVIDENCE = ":obs"  # suffix: a semantic partition's comparisons
ENTRY_EVIDENCE = ":seen"  # suffix: one entry's comparisons
AUXILIARY_PREFIXES = (LOCK, VECTOR)
AUXILIARY_SUFFIXES = (VECTOR_LOG, PARTITION_EVIDENCE, ENTRY_EVIDENCE)
