"""Caching an SDK client's methods in place: behind ``memollm.openai.wrap`` and ``memollm.anthropic.wrap``.

A wrapped client is a thin stand-in: the cached methods are replaced, everything else (other
resources, ``with_raw_response``, options) is the real client's, uncached. A cached method is
a keyword-only function over the SDK method, so every argument that changes the answer is in
the key (the SDK's "not given" markers are not: see :mod:`memollm.identity`), and ``stream=True``
goes to a cached generator whose chunks replay one by one, handed back in a small stream
object that iterates and works as a context manager like the SDK's.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from ._decorator import cached_llm

__all__ = ["CachedAsyncStream", "CachedStream", "wrap_client"]

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


def cached_method(original: Callable[..., Any], name: str, policy: Mapping[str, Any]) -> Callable[..., Any]:
    """A cached stand-in for an SDK method (sync or async), streams included."""
    settings = {**policy, "ignore": frozenset(policy.get("ignore", ())) | IGNORED}
    if inspect.iscoroutinefunction(inspect.unwrap(original)):  # SDKs wrap their async methods
        return _async_method(original, name, settings)

    @cached_llm(name=name, **settings)
    def value(**kwargs: Any) -> Any:
        return original(**kwargs)

    @cached_llm(name=name + ".stream", **settings)
    def chunks(**kwargs: Any) -> Iterator[Any]:
        stream = original(**kwargs)
        try:
            yield from stream
        finally:
            getattr(stream, "close", lambda: None)()

    def method(**kwargs: Any) -> Any:
        if kwargs.get("stream") is True:
            return CachedStream(chunks(**kwargs))
        return value(**kwargs)

    method.cache = value.cache  # type: ignore[attr-defined]  # fn.cache: stats and helpers
    method.stream_cache = chunks.cache  # type: ignore[attr-defined]
    return method


def _async_method(original: Callable[..., Any], name: str, settings: Mapping[str, Any]) -> Callable[..., Any]:
    @cached_llm(name=name, **settings)
    async def value(**kwargs: Any) -> Any:
        return await original(**kwargs)

    @cached_llm(name=name + ".stream", **settings)
    async def chunks(**kwargs: Any) -> AsyncIterator[Any]:
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
) -> Any:
    """``client`` with the methods at ``paths`` ("chat.completions.create") cached.

    ``methods`` gives a method its own settings on top of ``policy`` (``{"embeddings.create":
    {"ttl": 86400}}``); a path that does not exist on this client (an older SDK) is skipped.
    """
    unknown = set(methods or ()) - set(paths)
    if unknown:
        raise ValueError(f"wrap(methods=...): not a cached method: {', '.join(sorted(unknown))}")
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
        node[leaf] = cached_method(original, f"{prefix}.{path}", {**policy, **(methods or {}).get(path, {})})
    return _build(client, tree)


def _build(target: Any, tree: dict[str, Any]) -> Any:
    return _Resource(
        target, {k: _build(getattr(target, k), v) if isinstance(v, dict) else v for k, v in tree.items()}
    )
