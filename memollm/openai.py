"""Cache an OpenAI client's calls in place: ``client = memollm.openai.wrap(OpenAI(), ttl=600)``.

Needs the ``openai`` package (the ``openai`` extra). The wrapped client's
``chat.completions.create``, ``responses.create`` and ``embeddings.create`` are cached (an
``AsyncOpenAI`` client's too, awaited); everything else is the real client's, uncached,
``with_raw_response`` included. Results are the SDK's own objects (``ChatCompletion``, ...);
``stream=True`` returns an iterable of the SDK's chunks, replayed from the cache on a hit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .core import LLMCache
from .sdk import CachedAsyncStream, CachedStream, Returns, wrap_client
from .sdk import cache_of as _cache_of

__all__ = ["METHODS", "CachedAsyncStream", "CachedStream", "cache_of", "wrap"]

METHODS = ("chat.completions.create", "responses.create", "embeddings.create")
C = TypeVar("C")


def wrap(client: C, *, methods: Mapping[str, Mapping[str, Any]] | None = None, **policy: Any) -> C:
    """``client`` (an ``OpenAI`` or ``AsyncOpenAI``) with its model calls cached.

    Args:
        client: The client to wrap; it is not changed.
        methods: Settings for one method on top of the others, e.g.
            ``{"embeddings.create": {"ttl": 86400}}``.
        **policy: Any :func:`memollm.cached_llm` setting (``ttl``, ``tiers``, ``semantic``, ...).
            Cached functions are named ``openai.<method>`` (for configuration and stats);
            ``timeout`` and ``extra_headers`` are never part of a key.

    Returns:
        A stand-in for ``client`` (typed as it, for your editor): its cached methods carry
        ``.cache`` (stats and helpers) like any decorated function.
    """
    import openai

    policy.setdefault("version", f"openai-{openai.__version__}")
    return wrap_client(client, METHODS, "openai", policy, methods, returns=_returns())  # type: ignore[no-any-return]


def _returns() -> dict[str, Returns]:
    """The SDK classes each cached method returns (a missing one, in an older SDK, is left out)."""
    out = {}
    try:
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        out["chat.completions.create"] = Returns(ChatCompletion, ChatCompletionChunk)
    except ImportError:
        pass
    try:
        from openai.types.responses import Response, ResponseStreamEvent

        out["responses.create"] = Returns(Response, ResponseStreamEvent)
    except ImportError:
        pass
    try:
        from openai.types import CreateEmbeddingResponse

        out["embeddings.create"] = Returns(CreateEmbeddingResponse)
    except ImportError:
        pass
    return out


def cache_of(client: object, method: str = "chat.completions.create", *, stream: bool = False) -> LLMCache:
    """The cache of a wrapped client's ``method`` (``stream=True``: of its streams), typed.

    ``memollm.openai.cache_of(client).stats()``; ``ValueError`` if the client is not wrapped.
    """
    return _cache_of(client, method, stream=stream)
