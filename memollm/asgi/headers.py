"""Which headers an answer keeps, which a caller of a miss gets, and the cache's own marks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._known import age

__all__ = ["SERVED_FROM_CACHE", "kept", "marks", "own_headers", "passed_on", "stored_headers"]


# Never passed on from the app: hop-by-hop, and what the server or the cache sets itself.
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server", "age"}
)


# Passed on to the caller of a miss, never replayed on a hit: they describe one upstream
# exchange (its id, rate limits, timing, cookies), not the answer.
_PER_EXCHANGE = frozenset(
    {"set-cookie", "x-request-id", "request-id", "cf-ray", "alt-svc", "via", "retry-after",
     "openai-processing-ms", "x-envoy-upstream-service-time", "strict-transport-security"}
)  # fmt: skip


SERVED_FROM_CACHE = frozenset({"hit", "semantic-hit", "stale", "coalesced"})


_PER_EXCHANGE_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "ratelimit-")


_OUTCOMES = {"hit": "HIT", "semantic-hit": "SEMANTIC-HIT", "miss": "MISS", "stale": "STALE",
             "coalesced": "HIT", "bypass": "BYPASS", "uncacheable": "BYPASS"}  # fmt: skip


def stored_headers(pairs: list[list[str]]) -> list[tuple[bytes, bytes]]:
    """Headers as an answer stores them, as ASGI sends them."""
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def marks(seen: Any) -> list[tuple[bytes, bytes]]:
    """The cache's own headers for what ``seen`` (a lookup) records: X-Cache, Age, the similarity."""
    marks = [(b"x-cache", _OUTCOMES.get(seen.outcome or "", "MISS").encode())]
    if seen.created is not None and seen.outcome in SERVED_FROM_CACHE:
        marks.append((b"age", age(seen.created)))
    if seen.similarity is not None:
        marks.append((b"x-cache-similarity", f"{seen.similarity:.4f}".encode()))
    return marks


def own_headers(live: dict[str, Any], seen: Any) -> list[tuple[bytes, bytes]] | None:
    """The app's full headers when the answer sent is the app's answer to this very request."""
    if seen.outcome in SERVED_FROM_CACHE:
        return None  # a stale answer after a failed call, say: never the failure's headers
    return live.get("headers")


def passed_on(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The app's headers a caller of a miss receives (the cache sets its own x-cache ones)."""
    out = []
    for k, v in headers:
        name = k.lower()
        if name.decode("latin-1") not in _HOP_BY_HOP and not name.startswith(b"x-cache"):
            out.append((name, v))
    return out


def kept(headers: list[tuple[bytes, bytes]]) -> list[list[str]]:
    """The headers stored with an answer and replayed on its hits."""
    kept = []
    for k, v in headers:
        name = k.decode("latin-1")
        if name not in _PER_EXCHANGE and not name.startswith(_PER_EXCHANGE_PREFIXES):
            kept.append([name, v.decode("latin-1")])
    return kept
