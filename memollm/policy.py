"""The frozen value that says how one function is cached."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError
from .semantic.options import Semantic, checked_semantic
from .settings_text import CODE_ONLY, convert

if TYPE_CHECKING:
    from .backends import Backend
    from .resilience.keypool import KeyPool
    from .resilience.retry import RetryPolicy

__all__ = ["AdaptiveTTL", "Policy", "Semantic"]

_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_TIER_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,31}$")
# Settings that hold code cannot come from a file or the environment.


@dataclass(frozen=True, slots=True)
class AdaptiveTTL:
    """A TTL that hot entries earn: the long tail keeps ``base``, popular entries live longer.

    An entry starts with ``base`` seconds. Once it has been hit ``hot_after`` times (hits
    seen by this process), its expiry moves to ``hot`` seconds from that moment, and keeps
    moving while it stays popular; but never past ``max_ttl`` seconds from its creation,
    so a popular answer is still re-asked at least that often. ``max_ttl`` defaults to
    ``hot``.

    For example ``AdaptiveTTL(base=600, hot=86400, hot_after=3)``: questions asked once or
    twice are cached for ten minutes, hot questions for up to a day.
    """

    base: float = 600.0
    hot: float = 86400.0
    hot_after: int = 3
    max_ttl: float | None = None

    def __post_init__(self) -> None:
        for name in ("base", "hot"):
            _check_seconds(f"AdaptiveTTL.{name}", getattr(self, name))
        if self.hot < self.base:
            raise ConfigError(f"AdaptiveTTL.hot ({self.hot}) must be at least base ({self.base})")
        if isinstance(self.hot_after, bool) or not isinstance(self.hot_after, int) or self.hot_after < 1:
            raise ConfigError(f"AdaptiveTTL.hot_after must be a positive int, got {self.hot_after!r}")
        if self.max_ttl is None:
            object.__setattr__(self, "max_ttl", float(self.hot))
        else:
            _check_seconds("AdaptiveTTL.max_ttl", self.max_ttl)
            if self.max_ttl < self.base:
                raise ConfigError(f"AdaptiveTTL.max_ttl ({self.max_ttl}) must be at least base ({self.base})")

    @property
    def cap(self) -> float:
        """Seconds from creation no entry outlives."""
        return float(self.max_ttl)  # type: ignore[arg-type]  # set in __post_init__


@dataclass(frozen=True, slots=True)
class Policy:
    """How a function's results are cached.

    Args:
        ttl: Seconds (or a ``timedelta``) an entry stays fresh; ``None`` never expires; an
            :class:`AdaptiveTTL` for lifetimes that grow with popularity.
        namespace: Groups entries so they can be cleared together; part of every key.
        tiers: Cache tiers to read through, fastest first: names (``"memory"``) or
            backend objects.
        semantic: ``True`` for the semantic tier: the difference rules, the recommended cosine
            threshold and the learned verifier (96.5% of the semantic hits on public labeled
            pairs were right; docs/semantic.md), a cosine
            threshold (``0.92``), a :class:`Semantic` (``Semantic(max_error=0.02)``: hits
            with an error rate learned on your traffic), ``"shadow"`` to measure without
            serving, or ``None`` for exact caching only.
        cache_if: Called with the result (a list of chunks for streams); a falsy
            return skips storing it. Use it to keep refusals and truncated answers out.
        sampled: ``"cache"`` caches calls whose ``temperature`` is above 0 (a hit
            replays one sample); ``"skip"`` calls the model every time for them.
        strict: Raise memollm errors (an argument that cannot be keyed, a failing
            tier) instead of logging a warning and calling through uncached.
        version: A salt to bump when the prompt template or model behind the function
            changes, so old answers are no longer served.
        ignore: Argument names left out of the key (``client``, ``timeout``, ``api_key``).
        key: A callable taking the function's arguments and returning the value to key
            on; replaces the automatic key entirely.
        max_entry_bytes: Results whose encoding is larger are not stored.
        enabled: ``False`` turns caching off for the function (calls go straight through).
        retry: Retry transient failures of the call: a ``RetryPolicy``, ``True`` for the
            default one, or a number of attempts.
        keys: A ``KeyPool`` of API keys to rotate and fail over between.
        key_param: The parameter the chosen key is passed in (left out of the key); without
            it the function reads ``memollm.current_key()``.
        single_flight: Concurrent identical misses in this process make one call.
        distributed: Also across processes, with a lock in the Redis tier.
        lock_timeout: Seconds a cross-process lock lives, and that others wait for its result.
        stale_ttl: Seconds entries are kept past their TTL, to be served if the call fails.
        refresh_ahead: A hit with less than this fraction of its TTL left is served and
            refreshed in the background.
        scope: A callable giving the tenant the call is for; part of every key. Without it,
            ``memollm.tenant(...)`` sets the scope for a block.
        prompt_arg: The argument holding the prompt to embed for the semantic tier.
        embedder: The semantic tier's embedder (an ``Embedder`` or a callable); default a
            fastembed model (``MEMOLLM_EMBED_MODEL``, ``MEMOLLM_EMBED_MODEL_PATH``).
        verify: ``verify(query, cached_prompt, similarity) -> bool``, a check a semantic
            candidate must pass; ``None`` for the built-in guards, ``False`` for none.
        semantic_top_k: Candidates a semantic lookup considers.
        semantic_max_entries: Prompts kept per semantic partition (least recently used go).
        semantic_index: Where the semantic index lives: ``"auto"`` in the Redis tier's server
            when it has vector search (Redis Stack, RediSearch, Redis 8), else in each process;
            ``"server"`` or ``"process"`` to choose (``"server"`` without a server that can,
            warns once and keeps the process index).
        semantic_max_bytes: Memory the function's semantic index may hold (vectors, prompts,
            graphs), over all its partitions; the least recently used partitions go first.
        usage: ``usage(result, prompt, model) -> memollm.usage.Usage``, the tokens a result
            cost, for the savings in stats and events; default :func:`memollm.usage.usage_of`
            (OpenAI- or Anthropic-style ``usage`` when present, else estimated).
        answer_text: ``answer_text(result) -> str``, the answer a result holds, for comparing a
            cached answer with a fresh one (error-bounded semantic hits, shadow mode); default
            :func:`memollm.usage.text_of` (a string, a completion's message, a stream's deltas).
    """

    ttl: float | timedelta | AdaptiveTTL | None = 3600.0
    namespace: str = "default"
    tiers: tuple[str | Backend, ...] = ("memory",)
    semantic: float | bool | Semantic | Literal["shadow"] | None = None
    cache_if: Callable[[Any], object] | None = None
    sampled: Literal["cache", "skip"] = "cache"
    strict: bool = False
    version: str | int | None = None
    ignore: frozenset[str] = field(default_factory=frozenset)
    key: Callable[..., object] | None = None
    max_entry_bytes: int = 16 * 1024 * 1024
    enabled: bool = True
    retry: RetryPolicy | int | bool | None = None
    keys: KeyPool | None = None
    key_param: str | None = None
    single_flight: bool = True
    distributed: bool = False
    lock_timeout: float = 30.0
    stale_ttl: float | None = None
    refresh_ahead: float | None = None
    scope: Callable[[], object] | None = None
    prompt_arg: str | None = None
    embedder: Any = None
    verify: Callable[[str, str, float], bool] | bool | None = None
    semantic_top_k: int = 5
    semantic_max_entries: int = 10_000
    semantic_max_bytes: int = 256 * 1024 * 1024
    semantic_index: Literal["auto", "server", "process"] = "auto"
    usage: Callable[[Any, str, str | None], Any] | None = None
    answer_text: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ttl", _check_ttl(self.ttl))
        if not isinstance(self.namespace, str) or not _NAMESPACE.match(self.namespace):
            raise ConfigError(
                f"namespace must be 1-64 characters of letters, digits, '_', '.' or '-', "
                f"got {self.namespace!r}"
            )
        object.__setattr__(self, "tiers", _check_tiers(self.tiers))
        object.__setattr__(self, "semantic", checked_semantic(self.semantic))
        for name in ("cache_if", "key", "usage", "answer_text"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"{name} must be callable or None, got {value!r}")
        if self.sampled not in ("cache", "skip"):
            raise ConfigError(f"sampled must be 'cache' or 'skip', got {self.sampled!r}")
        for name in ("strict", "enabled"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, (str, int))
        ):
            raise ConfigError(f"version must be a string, an int or None, got {self.version!r}")
        raw_ignore: object = self.ignore
        ignore = (raw_ignore,) if isinstance(raw_ignore, str) else tuple(raw_ignore)  # type: ignore[arg-type]
        if not all(isinstance(name, str) for name in ignore):
            raise ConfigError(f"ignore must be argument names, got {self.ignore!r}")
        object.__setattr__(self, "ignore", frozenset(ignore))
        size = self.max_entry_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ConfigError(f"max_entry_bytes must be a positive int, got {size!r}")
        if self.semantic_index not in ("auto", "server", "process"):
            where = self.semantic_index
            raise ConfigError(f"semantic_index must be 'auto', 'server' or 'process', got {where!r}")
        self._check_resilience()

    def _check_resilience(self) -> None:
        from .resilience.keypool import KeyPool

        object.__setattr__(self, "retry", _check_retry(self.retry))
        if self.keys is not None and not isinstance(self.keys, KeyPool):
            raise ConfigError(f"keys must be a memollm.KeyPool, got {type(self.keys).__name__}")
        param = self.key_param
        if param is not None and (not isinstance(param, str) or not param.isidentifier()):
            raise ConfigError(f"key_param must be a parameter name, got {param!r}")
        for name in ("single_flight", "distributed"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("lock_timeout", "stale_ttl"):
            value = getattr(self, name)
            if value is not None or name == "lock_timeout":
                _check_seconds(name, value)
        if self.scope is not None and not callable(self.scope):
            raise ConfigError(f"scope must be a callable returning the tenant, got {self.scope!r}")
        if self.verify not in (None, False) and not callable(self.verify):
            raise ConfigError(f"verify must be a callable, None or False, got {self.verify!r}")
        for name in ("semantic_top_k", "semantic_max_entries", "semantic_max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        ahead = self.refresh_ahead
        if ahead is not None and (
            isinstance(ahead, bool) or not isinstance(ahead, (int, float)) or not 0 < ahead < 1
        ):
            raise ConfigError(f"refresh_ahead must be a fraction of the TTL in (0, 1), got {ahead!r}")

    @property
    def ttl_seconds(self) -> float | None:
        """The TTL new entries get, as seconds (``None`` when entries never expire)."""
        if isinstance(self.ttl, AdaptiveTTL):
            return self.ttl.base
        return self.ttl  # type: ignore[return-value]  # normalised in __post_init__

    @property
    def adaptive(self) -> AdaptiveTTL | None:
        """The :class:`AdaptiveTTL`, when the TTL is one."""
        return self.ttl if isinstance(self.ttl, AdaptiveTTL) else None

    def replace(self, **changes: Any) -> Policy:
        """Return a copy with ``changes`` applied and validated."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ConfigError(f"unknown policy setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    @classmethod
    def parse_settings(cls, data: Mapping[str, object], *, source: str) -> dict[str, Any]:
        """Validate settings read from ``source`` (a file or the environment) into field values.

        Strings are converted the way the environment needs (``"600"``, ``"true"``,
        ``"memory,redis"``); values of the right type pass as they are.
        """
        out: dict[str, Any] = {}
        for name, raw in data.items():
            if name not in _FIELDS:
                raise ConfigError(f"{source}: unknown policy setting {name!r}")
            if name in CODE_ONLY:
                raise ConfigError(f"{source}: {name!r} holds code and can only be set in Python")
            try:
                out[name] = convert(name, raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{source}: bad value {raw!r} for {name!r}: {exc}") from None
        try:
            cls(**out)  # validate the values together, with the source in the message
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        return out


_FIELDS = tuple(f.name for f in fields(Policy))


def _check_ttl(ttl: object) -> float | AdaptiveTTL | None:
    if isinstance(ttl, AdaptiveTTL):
        return ttl
    if isinstance(ttl, Mapping):  # a table in a config file: {base = 600, hot = 86400, ...}
        try:
            return AdaptiveTTL(**ttl)
        except TypeError as exc:
            raise ConfigError(f"ttl table must hold base, hot, hot_after and max_ttl: {exc}") from None
    if isinstance(ttl, timedelta):
        ttl = ttl.total_seconds()
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise ConfigError(f"ttl must be a number of seconds or None, got {ttl!r}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ConfigError(f"ttl must be a positive, finite number of seconds, got {ttl!r}")
    return float(ttl)


def _check_tiers(tiers: object) -> tuple[object, ...]:
    result: tuple[object, ...] = (tiers,) if isinstance(tiers, str) else tuple(tiers)  # type: ignore[arg-type]
    if not result:
        raise ConfigError("tiers must name at least one tier, got an empty list")
    for tier in result:
        if isinstance(tier, str):
            if not _TIER_NAME.match(tier):
                raise ConfigError(f"tier names are lowercase identifiers, got {tier!r}")
        elif not (callable(getattr(tier, "get", None)) and callable(getattr(tier, "set", None))):
            raise ConfigError(f"tiers holds {tier!r}, which is neither a tier name nor a backend")
    return result


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")


def _check_retry(retry: object) -> object:
    from .resilience.retry import RetryPolicy

    if retry is True:
        return RetryPolicy()
    if retry is False or retry is None:
        return None
    if isinstance(retry, int):
        return RetryPolicy(attempts=retry)
    if not isinstance(retry, RetryPolicy):
        raise ConfigError(f"retry must be a RetryPolicy, True, a number of attempts or None, got {retry!r}")
    return retry
