"""Cache an Anthropic client's calls in place: ``client = memollm.anthropic.wrap(Anthropic(), ttl=600)``.

Needs the ``anthropic`` package (the ``anthropic`` extra). The wrapped
client's ``messages.create`` is cached (an ``AsyncAnthropic`` client's too), ``stream=True``
included (the SDK's events, replayed one by one on a hit); everything else is the real
client's, uncached. ``messages.stream(...)``, the SDK's helper that accumulates a message as
it streams, is left uncached: use ``messages.create(..., stream=True)`` to cache a stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .core import LLMCache
from .sdk import Returns, wrap_client
from .sdk import cache_of as _cache_of

__all__ = ["METHODS", "cache_of", "wrap"]

METHODS = ("messages.create",)
C = TypeVar("C")


def wrap(client: C, *, methods: Mapping[str, Mapping[str, Any]] | None = None, **policy: Any) -> C:
    """``client`` (an ``Anthropic`` or ``AsyncAnthropic``) with ``messages.create`` cached.

    Args:
        client: The client to wrap; it is not changed.
        methods: Settings for one method on top of the others.
        **policy: Any :func:`memollm.cached_llm` setting. Cached functions are named
            ``anthropic.<method>``; ``timeout`` and ``extra_headers`` are never part of a key.

    Returns:
        A stand-in for ``client`` whose cached methods carry ``.cache``.
    """
    import anthropic
    from anthropic.types import Message, RawMessageStreamEvent

    policy.setdefault("version", f"anthropic-{anthropic.__version__}")
    returns = {"messages.create": Returns(Message, RawMessageStreamEvent)}
    return wrap_client(client, METHODS, "anthropic", policy, methods, returns=returns)  # type: ignore[no-any-return]


def cache_of(client: object, method: str = "messages.create", *, stream: bool = False) -> LLMCache:
    """The cache of a wrapped client's ``method`` (``stream=True``: of its streams), typed.

    ``memollm.anthropic.cache_of(client).stats()``; ``ValueError`` if the client is not wrapped.
    """
    return _cache_of(client, method, stream=stream)
