"""``@cached_llm``: the front door. Thin: it builds an LLMCache and lets it wrap the function."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, Protocol, TypeVar, overload

from .core import LLMCache
from .errors import ConfigError
from .policy import AdaptiveTTL, Policy, Semantic

if TYPE_CHECKING:
    from .backends import Backend
    from .resilience.keypool import KeyPool
    from .resilience.retry import RetryPolicy

__all__ = ["CachedClassMethod", "CachedFunction", "cached_llm"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
T = TypeVar("T")
R_co = TypeVar("R_co", covariant=True)


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET
_DEFAULTS = Policy()


class CachedFunction(Protocol, Generic[P, R_co]):
    """A function decorated with ``@cached_llm``: callable as before, plus ``.cache``.

    On a class, it binds like the function it wraps: ``Bot().ask`` takes the method's
    parameters after ``self``, with their types.
    """

    cache: LLMCache

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    @overload
    def __get__(self, instance: None, owner: type | None = None, /) -> CachedFunction[P, R_co]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[T, P2], R_co], instance: T, owner: type | None = None, /
    ) -> CachedFunction[P2, R_co]: ...
    @overload  # a static method: nothing to bind
    def __get__(self, instance: object, owner: type | None = None, /) -> CachedFunction[P, R_co]: ...


class CachedClassMethod(Protocol, Generic[P, R_co]):
    """A class method decorated with ``@cached_llm``: bound to its class, it takes its parameters."""

    cache: LLMCache

    def __call__(self, cls: type[Any], /, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def __get__(self, instance: object, owner: type | None = None, /) -> CachedFunction[P, R_co]: ...


class _Decorate(Protocol):
    """What ``cached_llm(...)`` with settings returns: the decorator, typed for each kind."""

    @overload
    def __call__(self, wrapped: classmethod[Any, P, R], /) -> CachedClassMethod[P, R]: ...
    @overload
    def __call__(self, wrapped: Callable[Concatenate[type[T], P], R], /) -> CachedClassMethod[P, R]: ...
    @overload
    def __call__(self, wrapped: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached_llm(wrapped: classmethod[Any, P, R], /) -> CachedClassMethod[P, R]: ...


@overload
def cached_llm(wrapped: Callable[Concatenate[type[T], P], R], /) -> CachedClassMethod[P, R]: ...


@overload
def cached_llm(wrapped: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached_llm(
    wrapped: None = None,
    /,
    *,
    policy: Policy | None = None,
    name: str | None = None,
    ttl: float | timedelta | AdaptiveTTL | _Unset | None = UNSET,
    namespace: str | _Unset = UNSET,
    tiers: Iterable[str | Backend] | str | _Unset = UNSET,
    semantic: float | bool | Semantic | Literal["shadow"] | _Unset | None = UNSET,
    cache_if: Callable[[Any], object] | _Unset | None = UNSET,
    sampled: Literal["cache", "skip"] | _Unset = UNSET,
    strict: bool | _Unset = UNSET,
    version: str | int | _Unset | None = UNSET,
    ignore: Iterable[str] | str | _Unset = UNSET,
    key: Callable[..., object] | _Unset | None = UNSET,
    max_entry_bytes: int | _Unset = UNSET,
    enabled: bool | _Unset = UNSET,
    retry: RetryPolicy | int | bool | _Unset | None = UNSET,
    keys: KeyPool | _Unset | None = UNSET,
    key_param: str | _Unset | None = UNSET,
    single_flight: bool | _Unset = UNSET,
    distributed: bool | _Unset = UNSET,
    lock_timeout: float | _Unset = UNSET,
    stale_ttl: float | _Unset | None = UNSET,
    refresh_ahead: float | _Unset | None = UNSET,
    scope: Callable[[], object] | _Unset | None = UNSET,
    prompt_arg: str | _Unset | None = UNSET,
    embedder: Any = UNSET,
    verify: Callable[[str, str, float], bool] | bool | _Unset | None = UNSET,
    semantic_top_k: int | _Unset = UNSET,
    semantic_max_entries: int | _Unset = UNSET,
    semantic_max_bytes: int | _Unset = UNSET,
    semantic_index: Literal["auto", "server", "process"] | _Unset = UNSET,
    usage: Callable[[Any, str, str | None], Any] | _Unset | None = UNSET,
    answer_text: Callable[[Any], str] | _Unset | None = UNSET,
) -> _Decorate: ...


def cached_llm(
    wrapped: Any = None,
    /,
    *,
    policy: Policy | None = None,
    name: str | None = None,
    **settings: Any,
) -> Any:
    """Cache a function that calls a model, so the same question is paid for once.

    Works on sync and async functions, methods, class and static methods, and
    generators (streams are recorded and replayed chunk by chunk). Use it bare
    (``@cached_llm``) or with settings (``@cached_llm(ttl=600)``).

    Args:
        wrapped: The function (when used without parentheses).
        policy: A :class:`Policy` to start from; keyword settings override its fields.
        name: The name configuration overrides match (default ``module.qualname``).
        **settings: Any :class:`Policy` field: ``ttl``, ``namespace``, ``tiers``,
            ``semantic``, ``cache_if``, ``sampled``, ``strict``, ``version``, ``ignore``,
            ``key``, ``max_entry_bytes``, ``enabled``, ``retry``, ``keys``, ``key_param``,
            ``single_flight``, ``distributed``, ``lock_timeout``, ``stale_ttl``,
            ``refresh_ahead``, ``scope``, ``prompt_arg``, ``embedder``, ``verify``,
            ``semantic_top_k``, ``semantic_max_entries``, ``semantic_max_bytes``,
            ``semantic_index``, ``usage``, ``answer_text``.

    Returns:
        The wrapped function, with an :class:`LLMCache` as its ``cache`` attribute:
        ``fn.cache.stats()``, ``.clear()``, ``.invalidate(...)``, ``.explain_key(...)``,
        ``.uncached``.

    Raises:
        ConfigError: A setting is unknown or has a bad value.
    """
    unknown = set(settings) - {f.name for f in fields(Policy)}
    if unknown:
        raise ConfigError(f"cached_llm(): unknown setting(s): {', '.join(sorted(unknown))}")
    explicit = {k: v for k, v in settings.items() if v is not UNSET}
    if wrapped is None:
        return functools.partial(cached_llm, policy=policy, name=name, **explicit)
    target: object = wrapped
    if not callable(target) and not isinstance(target, (classmethod, staticmethod)):
        raise ConfigError(f"cached_llm() decorates functions, got {wrapped!r}")
    merged: dict[str, Any] = {}
    if policy is not None:
        if not isinstance(policy, Policy):
            raise ConfigError(f"policy must be a memollm.Policy, got {policy!r}")
        # Only what the Policy changes counts as the decorator's own choice.
        merged = {
            f.name: getattr(policy, f.name)
            for f in fields(Policy)
            if getattr(policy, f.name) != getattr(_DEFAULTS, f.name)
        }
    merged.update(explicit)
    Policy(**merged)  # name the bad value here, at decoration time
    cache = LLMCache(wrapped, settings=merged, name=name)
    return cache.wrap(wrapped)
