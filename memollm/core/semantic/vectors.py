"""Where prompt vectors live: the Redis server's index, or each process's index fed by a shared log.

With a server index (the Redis tier's server has vector search) nothing is kept in the
process: prompts are added to and searched in the server, and a new process finds every
prompt at once. Otherwise each process keeps its own index, absorbing what other processes
(or an earlier run) logged in the Redis or SQLite tier. Either way a failing tier is skipped:
a lookup finds nothing, exact caching goes on.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..._log import info_once, warn_once
from ...backends.guard import CircuitBreaker, Guarded
from ..walk import failed

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ...backends import Backend
    from ...backends.capabilities import VectorLog
    from ...backends.redis_vectors import RedisVectorIndex
    from ...semantic.index import Candidate
    from ..plan import Plan
    from ..state import State

__all__ = ["ServerIndex", "add", "add_many", "candidates", "clear", "remove", "server_index"]


def candidates(
    state: State, plan: Plan, partition: str, vector: npt.NDArray[np.float32], text: str
) -> Iterator[Candidate]:
    """Verified stored prompts similar enough to ``text``, most similar first."""
    semantic = plan.semantic
    assert semantic is not None
    settings = plan.settings
    assert settings is not None
    server = server_index(plan)
    if server is None:
        _pull(state, plan, partition, len(vector))
        yield from semantic.candidates(partition, vector, text, settings)
        return
    from ...semantic.index import Candidate  # the semantic extra is there: a vector was made

    blob = vector.astype("float32").tobytes()
    try:
        rows = server.tier.call(lambda: server.index.search(partition, blob, semantic.top_k, settings.floor))
    except Exception as exc:  # noqa: BLE001 - a failing tier is skipped: no candidate
        failed(state, plan, server.tier.name, exc)
        return
    yield from semantic.verified(
        text, (Candidate(key, prompt, similarity) for key, prompt, similarity in rows), settings
    )


def _pull(state: State, plan: Plan, partition: str, dim: int) -> None:
    """Absorb the vectors other processes (or an earlier run) logged for this partition."""
    log, semantic = plan.vector_log, plan.semantic
    if log is None or semantic is None or not semantic.sync_due(partition):
        return
    cursor = semantic.cursor(partition)
    try:
        rows, cursor = log.call(lambda: cast("VectorLog", log.backend).vlog_since(partition, cursor))
    except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
        failed(state, plan, log.name, exc)
        return
    semantic.absorb(partition, rows, cursor, dim)


def add(
    state: State, plan: Plan, partition: str, *, key: str, text: str, vector: npt.NDArray[np.float32]
) -> None:
    """Index one new entry's prompt."""
    add_many(state, plan, partition, keys=[key], texts=[text], vectors=vector[None, :])


def add_many(
    state: State, plan: Plan, partition: str, *, keys: list[str], texts: list[str], vectors: Any
) -> None:
    """Index new entries' prompts of one partition (in the server, or here and in the log)."""
    semantic = plan.semantic
    assert semantic is not None
    expires = None if plan.ttl is None else state.clock() + plan.ttl
    server = server_index(plan)
    if server is not None:
        import numpy as np  # the semantic extra is there: vectors were made

        rows = [
            (k, t, np.asarray(v, dtype=np.float32).tobytes())
            for k, t, v in zip(keys, texts, vectors, strict=True)
        ]
        try:
            server.tier.call(lambda: server.index.add_many(partition, rows, expires))
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped: the prompts go unindexed
            failed(state, plan, server.tier.name, exc)
        return
    semantic.index.add_many(partition, keys, vectors, texts, expires)
    log = plan.vector_log
    if log is None:
        return
    rows = [
        (key, text, semantic.pack(vector)) for key, text, vector in zip(keys, texts, vectors, strict=True)
    ]
    try:
        log.call(lambda: cast("VectorLog", log.backend).vlog_extend(partition, rows, expires))
    except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
        failed(state, plan, log.name, exc)


def remove(state: State, plan: Plan, partition: str, key: str) -> None:
    """Forget a prompt whose entry is gone (expired, evicted or invalidated)."""
    semantic = plan.semantic
    assert semantic is not None
    server = server_index(plan)
    if server is None:
        semantic.index.remove(partition, key)
        return
    try:
        server.tier.call(lambda: server.index.remove(key))
    except Exception as exc:  # noqa: BLE001 - a failing tier is skipped: the candidate is checked anyway
        failed(state, plan, server.tier.name, exc)


def clear(state: State, plan: Plan, prefix: str) -> None:
    """Forget the prompts of every entry under ``prefix``."""
    semantic = plan.semantic
    assert semantic is not None
    semantic.index.clear(prefix)
    server = server_index(plan)
    if server is not None:
        try:
            server.tier.call(lambda: server.index.clear(prefix))
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            failed(state, plan, server.tier.name, exc)


@dataclass(frozen=True, slots=True)
class ServerIndex:
    """The semantic index in a Redis server, behind a circuit breaker of its own.

    Its own, not the exact tier's: a failing index costs semantic misses, never exact reads
    and writes.
    """

    tier: Guarded
    index: RedisVectorIndex


_detected: weakref.WeakKeyDictionary[Backend, ServerIndex | None] = weakref.WeakKeyDictionary()


def server_index(plan: Plan) -> ServerIndex | None:
    """The Redis tier's server index when the policy allows it and the server can.

    Asked of the server on the first semantic step that needs it (never while a plan is built),
    then kept per backend; a server that cannot be reached is asked again later.
    """
    mode, tiers, fid = plan.index_mode, plan.tiers, plan.keys.function_id
    if mode == "process" or plan.semantic is None:
        return None
    from ...backends.redis import RedisBackend
    from ...backends.redis_vectors import RedisVectorIndex, supports_vector_search

    for tier in tiers:
        backend = tier.backend if isinstance(tier, Guarded) else None
        if isinstance(tier, Guarded) and isinstance(backend, RedisBackend) and not backend.cluster:
            if backend not in _detected:
                try:
                    able = tier.call(lambda b=backend: supports_vector_search(b))  # type: ignore[misc]
                except Exception:  # noqa: BLE001 - unreachable now: the process index, asked again later
                    return None
                _detected[backend] = (
                    ServerIndex(Guarded(backend, CircuitBreaker(), name=f"{tier.name} vector index"),
                                RedisVectorIndex(backend))
                    if able else None
                )  # fmt: skip
                if able:
                    info_once(("server-index", id(backend)), "%r: the semantic index is in the Redis server "
                              "(vector search); processes keep no vectors", backend)  # fmt: skip
            found = _detected[backend]
            if found is not None:
                return found
    if mode == "server":
        warn_once(("server-index", fid), "%s: semantic_index='server' needs a Redis tier whose server "
                  "has vector search (Redis Stack, RediSearch, Redis 8); using the in-process index",
                  fid)  # fmt: skip
    return None
