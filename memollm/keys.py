"""What "the same call" means: canonical, stable cache keys for function calls.

A key is blake2b (128 bits) over the canonical encoding (:mod:`memollm.canonical`) of the key
schema version, the function's identity and ``version`` salt, the tenant scope, and every
bound argument with defaults applied. The same call gives the same key in any process, on
any machine and any supported Python version.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .canonical import SCALARS, canonical, pack, readable, types_for_arity, types_of
from .errors import UncacheableArgumentError
from .policy import Policy
from .prompt import SEMANTIC_MAX_CHARS, find_prompt
from .switches import current_tenant

__all__ = ["KEY_SCHEMA", "KeyBuilder", "KeyExplanation", "KeyInfo", "SemanticParts", "function_id"]

KEY_SCHEMA = 1
_MEMO_LIMIT = 4096
# Names whose value decides whether a call samples (OpenAI's default temperature is 1).
_TEMPERATURE = "temperature"
_PROMPTISH = ("messages", "prompt", "input")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A computed key and what the call told us while computing it."""

    key: str
    sampled: bool


@dataclass(frozen=True, slots=True)
class SemanticParts:
    """What a semantic lookup of a call needs: its prompt text and its exact partition."""

    text: str
    partition: str


@dataclass(frozen=True, slots=True)
class KeyExplanation:
    """The canonical parts that make up one call's key, for seeing why two calls missed."""

    key: str
    namespace: str
    function: str
    version: str | int | None
    schema: int
    arguments: dict[str, object]
    ignored: tuple[str, ...]
    sampled: bool
    scope: object = None


def function_id(func: Callable[..., Any]) -> str:
    """The stable identity of a function: module and qualified name.

    Scripts run as ``__main__`` also get their file's stem, so two scripts'
    ``ask()`` functions never share entries in a shared tier.
    """
    module = getattr(func, "__module__", None) or "<unknown>"
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file:
            module = f"__main__:{Path(main_file).stem}"
    return f"{module}.{getattr(func, '__qualname__', getattr(func, '__name__', '<callable>'))}"


class KeyBuilder:
    """Computes keys for calls to one function under one policy."""

    def __init__(self, func: Callable[..., Any], policy: Policy, *, fid: str | None = None) -> None:
        raw = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
        self.policy = policy
        self.function_id = fid or function_id(raw)
        self.signature = inspect.signature(raw)
        self._var_kw = any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in self.signature.parameters.values()
        )
        fn_digest = hashlib.blake2b(self.function_id.encode(), digest_size=8).hexdigest()
        self.prefix = f"{policy.namespace}:{fn_digest}:"
        self._memo: dict[tuple[Any, ...], KeyInfo] = {}
        self._self_ignored = bool(self.signature.parameters) and (
            next(iter(self.signature.parameters)) in policy.ignore
        )
        self._scope: Callable[[], object] = policy.scope or current_tenant

    def info(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> KeyInfo:
        """Return the key for a call, reusing earlier work for repeated scalar arguments.

        Raises ``UncacheableArgumentError`` (an argument cannot be keyed) or
        ``TypeError`` (the arguments do not fit the signature).
        """
        # The probe carries every argument's type: 1, 1.0 and True are equal as dict
        # keys but not as arguments; and the tenant scope, part of every key.
        scope = self._scope()
        if scope is not None:
            scope = (scope, type(scope))  # only a set tenant needs its type in the probe
        types = types_for_arity(len(args), types_of)(args)
        if kwargs:
            probe: tuple[Any, ...] = (
                scope,
                instance,
                types,
                args,
                tuple(map(type, kwargs.values())),
                tuple(kwargs.items()),
            )
        else:
            probe = (scope, instance, types, args)
        try:
            found = self._memo.get(probe)
        except TypeError:  # an unhashable argument: nothing to reuse
            return self._compute(instance, args, kwargs)[0]
        if found is None:
            found = self._compute(instance, args, kwargs)[0]
            if self._memoizable(instance, probe):
                if len(self._memo) >= _MEMO_LIMIT:
                    self._memo.clear()
                self._memo[probe] = found
        return found

    def _memoizable(self, instance: object, probe: tuple[Any, ...]) -> bool:
        # Only scalars: their equality is value equality. An instance is only safe when it
        # is a class (keyed by name) or left out of the key. A key= callable may read state
        # beyond its arguments (a tenant in a contextvar), so its keys are never reused.
        if self.policy.key is not None:
            return False
        if not (instance is None or self._self_ignored or isinstance(instance, type)):
            return False
        return SCALARS.issuperset(probe[2]) and (len(probe) == 4 or SCALARS.issuperset(probe[4]))

    def explain(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> KeyExplanation:
        """Return the canonical components of a call's key."""
        info, components = self._compute(instance, args, kwargs)
        p = self.policy
        return KeyExplanation(
            key=info.key,
            namespace=p.namespace,
            function=self.function_id,
            version=p.version,
            schema=KEY_SCHEMA,
            arguments={name: readable(v) for name, v in components.items()},
            ignored=tuple(sorted(p.ignore)),
            sampled=info.sampled,
            scope=readable(self._scoped()),
        )

    def _compute(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[KeyInfo, dict[str, object]]:
        arguments = self._bind(instance, args, kwargs)
        full = (instance, *args) if instance is not None else args
        components: dict[str, object] = {}
        if self.policy.key is not None:
            try:
                custom = self.policy.key(*full, **kwargs)
            except Exception as exc:
                raise UncacheableArgumentError(
                    "key()", exc, reason=f"the key= callable raised {type(exc).__name__}: {exc}"
                ) from exc
            components["<key>"] = canonical(custom, "key()")
        else:
            for name, value in arguments.items():
                if name not in self.policy.ignore:
                    components[name] = canonical(value, name)
        material = pack([KEY_SCHEMA, self.function_id, self.policy.version, self._scoped(), components])
        digest = hashlib.blake2b(material, digest_size=16).hexdigest()
        return KeyInfo(self.prefix + digest, self._sampled(arguments)), components

    def _bind(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        full = (instance, *args) if instance is not None else args
        bound = self.signature.bind(*full, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _scoped(self) -> object:
        scope = self._scope()
        try:
            return canonical(scope, "<scope>")
        except UncacheableArgumentError as exc:
            raise UncacheableArgumentError(
                "<scope>", scope, reason=f"the tenant scope {type(scope).__name__} cannot be part of a key"
            ) from exc

    def semantic(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> SemanticParts | None:
        """The prompt text and exact partition of a call, or None if it has no prompt to embed.

        The prompt is ``prompt_arg``, else a ``prompt``/``question``/``query``/``input`` string,
        else the last user message of OpenAI-style ``messages``; None if it is longer than
        ``SEMANTIC_MAX_CHARS``. Everything else (system prompt, earlier turns, model,
        sampling, tools, tenant, other arguments) is the partition, so a semantic match
        never crosses any of it.
        """
        arguments = self._bind(instance, args, kwargs)
        found = find_prompt(arguments, self.policy.prompt_arg)
        if found is None:
            return None
        text, rest = found
        if len(text) > SEMANTIC_MAX_CHARS:
            return None
        components = {
            name: canonical(value, name) for name, value in rest.items() if name not in self.policy.ignore
        }
        material = pack(
            [KEY_SCHEMA, "semantic", self.function_id, self.policy.version, self._scoped(), components]
        )
        return SemanticParts(text, self.prefix + hashlib.blake2b(material, digest_size=16).hexdigest())

    def _sampled(self, arguments: Mapping[str, Any]) -> bool:
        extra: Mapping[str, Any] = {}
        for param in self.signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                extra = arguments.get(param.name, {})
        if _TEMPERATURE in arguments or _TEMPERATURE in extra:
            t = arguments[_TEMPERATURE] if _TEMPERATURE in arguments else extra[_TEMPERATURE]
            if t is None:
                return True
            try:
                return float(t) > 0
            except (TypeError, ValueError):
                return True
        # A pass-through of an OpenAI-style request that leaves temperature to the provider.
        return self._var_kw and any(name in extra for name in _PROMPTISH)
