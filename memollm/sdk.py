"""Caching an SDK client's methods in place: behind ``memollm.openai.wrap`` and ``memollm.anthropic.wrap``.

A wrapped client is a thin stand-in: the cached methods are replaced, everything else (other
resources, ``with_raw_response``, options) is the real client's, uncached. A cached method is
a keyword-only function over the SDK method, so every argument that changes the answer is in
the key (the SDK's "not given" markers are not: see :mod:`memollm.identity`), and ``stream=True``
goes to a cached generator whose chunks replay one by one, handed back in a small stream
object that iterates and works as a context manager like the SDK's.

Three things make a wrapped client's entries right for any process that reads them:

- the provider's endpoint is part of every key and semantic partition (its base URL, and
  where set the organization, project and default query such as Azure's ``api-version``), so
  two clients of two providers never answer for each other; the API key is not (rotating it
  keeps the cache);
- the SDK's result classes are named as what the cached functions return, so the codec
  restores them in any process (an allow-list of the SDK's own model classes, validated by
  pydantic on every read; nothing found in stored bytes is ever imported);
- only complete answers are stored (:mod:`memollm.complete`): a stream that stopped before
  its finish reason, ``response.completed`` or ``message_stop`` passes through uncached.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, NamedTuple

from . import complete
from ._decorator import cached_llm
from .core import LLMCache

__all__ = ["CachedAsyncStream", "CachedStream", "Returns", "cache_of", "endpoint_of", "wrap_client"]

# Never part of a key: how long to wait, and headers (where auth and tracing live).
IGNORED = frozenset({"timeout", "extra_headers"})


class CachedStream:
    """A cached (or recorded) stream of chunks: iterate it, or use it in a ``with`` block."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[Any]:
        return self._chunks

    def __next__(self) -> Any:
        return next(self._chunks)

    def __enter__(self) -> CachedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop early: a stream not read to its end is not stored."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class CachedAsyncStream:
    """Async :class:`CachedStream`: ``async for`` it, or use it in an ``async with`` block."""

    def __init__(self, chunks: AsyncIterator[Any]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._chunks

    async def __anext__(self) -> Any:
        return await self._chunks.__anext__()

    async def __aenter__(self) -> CachedAsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop early: a stream not read to its end is not stored."""
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class Returns(NamedTuple):
    """What an SDK method returns: its result class, and the class of its stream's chunks (or None)."""

    value: Any
    chunk: Any = None


def endpoint_of(client: Any) -> str:
    """Which provider a client talks to: its base URL (without credentials), and a digest of the rest.

    The rest is the organization, the project and the default query (Azure's ``api-version``),
    where set; digested, since a query may hold a credential and keys are explained in clear.
    """
    url = getattr(client, "base_url", None)
    place = str(url or "")
    if url is not None and hasattr(url, "copy_with"):
        place = str(url.copy_with(username=None, password=None, query=None, fragment=None))
    rest = []
    for name in ("organization", "project"):
        value = getattr(client, name, None)  # Anthropic's client has an ``organization`` resource
        rest.append([name, value if isinstance(value, str) else ""])
    query = getattr(client, "default_query", None)
    if isinstance(query, Mapping) and query:
        rest.append(["query", repr(sorted((str(k), str(v)) for k, v in query.items()))])
    if any(value for _, value in rest):
        place += " #" + hashlib.blake2b(repr(rest).encode(), digest_size=8).hexdigest()
    return place


def cache_of(client: Any, method: str, *, stream: bool = False) -> LLMCache:
    """The cache of a wrapped client's method (its streams' with ``stream=True``): stats, clear, ...

    Typed, where ``client.chat.completions.create.cache`` is not (the wrapped client is typed
    as the SDK's own class). ``ValueError`` if the method is not cached by memollm.
    """
    target = client
    try:
        for part in method.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise ValueError(f"{method!r} is not a method of {client!r}") from None
    found = getattr(target, "stream_cache" if stream else "cache", None)
    if not isinstance(found, LLMCache):
        raise ValueError(f"{method!r} of {client!r} is not cached by memollm: wrap the client first")
    return found


def _settings(policy: Mapping[str, Any], rule: Callable[[Any], object]) -> dict[str, Any]:
    """The method's cached_llm settings: ``rule`` decides first what may be stored, then ``cache_if``."""
    ignore = frozenset(policy.get("ignore", ())) | IGNORED
    return {**policy, "ignore": ignore, "cache_if": complete.requiring(rule, policy.get("cache_if"))}


def _chunks_whole(chunks: Any) -> object:
    return complete.events(chunks)


def _identify(value: Any, chunks: Any, name: str, returns: Returns | None, iterator: Any) -> None:
    """Name a method's two functions for it, and say what they return.

    The name gives the method keys of its own, apart from every other method's; the return
    annotation names the SDK classes the codec may restore.
    """
    value.__qualname__, chunks.__qualname__ = name, name + ".stream"
    if returns is not None:
        value.__annotations__["return"] = returns.value
        chunks.__annotations__["return"] = iterator[returns.chunk]


def cached_method(
    original: Callable[..., Any],
    name: str,
    policy: Mapping[str, Any],
    *,
    returns: Returns | None = None,
    endpoint: str = "",
) -> Callable[..., Any]:
    """A cached stand-in for an SDK method (sync or async), streams included.

    ``returns`` names the SDK classes its results may be restored as; ``endpoint`` (the
    provider's, see :func:`endpoint_of`) is part of every key.
    """
    values, streams = _settings(policy, complete.answer), _settings(policy, _chunks_whole)
    if inspect.iscoroutinefunction(inspect.unwrap(original)):  # SDKs wrap their async methods
        return _async_method(
            original, name, values=values, streams=streams, returns=returns, endpoint=endpoint
        )

    def value(memollm_endpoint: str = endpoint, **kwargs: Any) -> Any:
        return original(**kwargs)

    def chunks(memollm_endpoint: str = endpoint, **kwargs: Any) -> Iterator[Any]:
        stream = original(**kwargs)
        try:
            yield from stream
        finally:
            getattr(stream, "close", lambda: None)()

    _identify(value, chunks, name, returns, Iterator)
    value = cached_llm(name=name, **values)(value)
    chunks = cached_llm(name=name + ".stream", **streams)(chunks)

    def method(**kwargs: Any) -> Any:
        if kwargs.get("stream") is True:
            return CachedStream(chunks(**kwargs))
        return value(**kwargs)

    method.cache = value.cache  # type: ignore[attr-defined]  # fn.cache: stats and helpers
    method.stream_cache = chunks.cache  # type: ignore[attr-defined]
    return method


def _async_method(
    original: Callable[..., Any],
    name: str,
    *,
    values: Mapping[str, Any],
    streams: Mapping[str, Any],
    returns: Returns | None,
    endpoint: str,
) -> Callable[..., Any]:
    async def value(memollm_endpoint: str = endpoint, **kwargs: Any) -> Any:
        return await original(**kwargs)

    async def chunks(memollm_endpoint: str = endpoint, **kwargs: Any) -> AsyncIterator[Any]:
        stream = await original(**kwargs)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                result = close()
                if inspect.isawaitable(result):
                    await result

    _identify(value, chunks, name, returns, AsyncIterator)
    value = cached_llm(name=name, **values)(value)
    chunks = cached_llm(name=name + ".stream", **streams)(chunks)

    async def method(**kwargs: Any) -> Any:
        if kwargs.get("stream") is True:
            return CachedAsyncStream(chunks(**kwargs))
        return await value(**kwargs)

    method.cache = value.cache  # type: ignore[attr-defined]
    method.stream_cache = chunks.cache  # type: ignore[attr-defined]
    return method


class _Resource:
    """An SDK resource with some attributes replaced; the rest is the real resource's."""

    def __init__(self, target: Any, replaced: dict[str, Any]) -> None:
        self.__dict__["_target"] = target
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_target"], name)

    def __repr__(self) -> str:
        return f"<memollm cached {self.__dict__['_target']!r}>"


def wrap_client(
    client: Any,
    paths: tuple[str, ...],
    prefix: str,
    policy: Mapping[str, Any],
    methods: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    returns: Mapping[str, Returns] | None = None,
) -> Any:
    """``client`` with the methods at ``paths`` ("chat.completions.create") cached.

    ``methods`` gives a method its own settings on top of ``policy`` (``{"embeddings.create":
    {"ttl": 86400}}``); a path that does not exist on this client (an older SDK) is skipped.
    ``returns`` names each method's result classes (see :class:`Returns`).
    """
    unknown = set(methods or ()) - set(paths)
    if unknown:
        raise ValueError(f"wrap(methods=...): not a cached method: {', '.join(sorted(unknown))}")
    endpoint = endpoint_of(client)
    tree: dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        owner = client
        try:
            for part in parents:
                owner = getattr(owner, part)
            original = getattr(owner, leaf)
        except AttributeError:
            continue
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        settings = {**policy, **(methods or {}).get(path, {})}
        returned = (returns or {}).get(path)
        node[leaf] = cached_method(
            original, f"{prefix}.{path}", settings, returns=returned, endpoint=endpoint
        )
    return _build(client, tree)


def _build(target: Any, tree: dict[str, Any]) -> Any:
    return _Resource(
        target, {k: _build(getattr(target, k), v) if isinstance(v, dict) else v for k, v in tree.items()}
    )
