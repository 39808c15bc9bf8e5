"""What "the same call" means: canonical, stable cache keys for function calls.

A key is blake2b (128 bits) over the canonical encoding (:mod:`memollm.canonical`) of the key
schema version, the function's identity (its name, and its code's fingerprint or the
``version`` that replaces it), the tenant scope, and every bound argument with defaults
applied; "not given" sentinels of SDKs count as not passed, and a method's instance is keyed
by its class and public state (:mod:`memollm.instances`). The same call to the same code gives
the same key in any process and on any machine (the code fingerprint follows the bytecode,
so it may differ between Python versions).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._log import warn_once
from .canonical import SCALARS, canonical, pack, readable, types_for_arity, types_of
from .errors import UncacheableArgumentError
from .fingerprint import fingerprint
from .identity import function_id, not_given
from .instances import StateDrift, instance_key
from .policy import Policy
from .prompt import SEMANTIC_MAX_CHARS, find_prompt
from .semantic.parts import SemanticParts
from .switches import current_tenant

__all__ = ["KEY_SCHEMA", "KeyBuilder", "KeyExplanation", "KeyInfo", "SemanticParts", "function_id"]

KEY_SCHEMA = 2  # 2: the function's code fingerprint, instances by state, SDK sentinels left out
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
    code: str | None = None  # the code fingerprint (None when ``version`` replaces it)
    left_out: tuple[str, ...] = ()  # closure values and instance attributes that could not be keyed
    normalised: str | None = None  # a semantic policy keys the prompt by this normal form


def _is_instance(value: object, instance: object, name: str) -> bool:
    """Whether a method's first argument is an instance to key by its state (not a class)."""
    return value is not None and not isinstance(value, type) and (value is instance or name == "self")


class KeyBuilder:
    """Computes keys for calls to one function under one policy."""

    def __init__(self, func: Callable[..., Any], policy: Policy, *, fid: str | None = None) -> None:
        raw = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
        self.policy = policy
        self.function_id = fid or function_id(raw)
        self.signature = inspect.signature(raw)
        self._var_kw_name = next(
            (p.name for p in self.signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD),
            None,
        )
        self._var_kw = self._var_kw_name is not None
        fn_digest = hashlib.blake2b(self.function_id.encode(), digest_size=8).hexdigest()
        self.prefix = f"{policy.namespace}:{fn_digest}:"
        self._memo: dict[tuple[Any, ...], KeyInfo] = {}
        self._first = next(iter(self.signature.parameters), None)
        self._self_ignored = self._first is not None and self._first in policy.ignore
        self._scope: Callable[[], object] = policy.scope or current_tenant
        self._drift = StateDrift()
        self._last: tuple[tuple[Any, ...], dict[str, Any], object, object, KeyInfo] | None = None
        self.code, self.left_out = self._fingerprint(raw)
        # Prompts that differ only in case, punctuation or fillers share one entry under a
        # policy that serves semantic hits: they are one question (memollm.semantic.normal).
        self._normalise = _serves_semantic(policy)
        # What the function is: its code, unless an explicit version stands for it.
        self._identity = ["version", policy.version] if policy.version is not None else ["code", self.code]

    def _fingerprint(self, raw: Callable[..., Any]) -> tuple[str | None, tuple[str, ...]]:
        if self.policy.version is not None:
            return None, ()
        try:
            found = fingerprint(raw)
        except Exception as exc:  # noqa: BLE001 - keyed by name alone, as before fingerprints
            warn_once(("fingerprint", self.function_id), "%s: its code could not be fingerprinted (%r); "
                      "it is identified by its name alone", self.function_id, exc)  # fmt: skip
            return None, ()
        if found.left_out:
            warn_once(
                ("closure", self.function_id, found.left_out),
                "%s: closure value(s) %s cannot be keyed and are left out of its identity; versions of "
                "the function that differ only in them share answers (pass them as arguments, or set "
                "version=)", self.function_id, ", ".join(found.left_out),
            )  # fmt: skip
        return found.digest, found.left_out

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
        except TypeError:  # an unhashable argument: only this same call's key can be reused
            last = self._last
            # The same argument objects (a call keyed twice: the flat path, then the full one).
            if (
                last is not None and last[0] is args and last[1] is kwargs and last[2] is instance
                and last[3] == scope
            ):  # fmt: skip
                return last[4]
            found = self._compute(instance, args, kwargs)[0]
            self._last = (args, kwargs, instance, scope, found)
            return found
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
            code=self.code,
            left_out=self.left_out,
            normalised=components.get("<prompt>"),  # type: ignore[arg-type]
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
            keyed, prompt = self._normalised(arguments)
            for name, value in keyed.items():
                if name in self.policy.ignore:
                    continue
                if name == self._first and _is_instance(value, instance, name):
                    components[name] = self._instance(value, arguments)
                else:
                    components[name] = canonical(value, name)
            if prompt is not None:
                components["<prompt>"] = prompt
        material = pack([KEY_SCHEMA, self.function_id, self._identity, self._scoped(), components])
        digest = hashlib.blake2b(material, digest_size=16).hexdigest()
        return KeyInfo(self.prefix + digest, self._sampled(arguments)), components

    def _normalised(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The arguments with the prompt set apart, and its normal form (when the policy normalises)."""
        if not self._normalise:
            return arguments, None
        found = find_prompt(arguments, self.policy.prompt_arg)
        if found is None:
            return arguments, None
        from .semantic.normal import normal_form

        normal = normal_form(found[0])
        return (arguments, None) if normal is None else (found[1], normal)

    def _instance(self, obj: object, arguments: dict[str, Any]) -> object:
        """A method's instance in the key: its class and public state; warns about what is left out."""
        found = instance_key(obj, self._first or "self")
        cls = type(obj).__qualname__
        for name in found.left_out:
            warn_once(
                ("instance", self.function_id, cls, name),
                "%s: self.%s (%s) cannot be keyed and is left out of the key; instances that differ "
                "only in it share answers (give %s a __memollm_key__ method to decide)",
                self.function_id, name, type(getattr(obj, name, None)).__name__, cls,
            )  # fmt: skip
        if found.state:
            ignore = self.policy.ignore
            rest = [canonical(v, n) for n, v in arguments.items() if n != self._first and n not in ignore]
            moved = self._drift.seen(hashlib.blake2b(pack(rest), digest_size=8).digest(), found.state)
            if moved is not None:
                warn_once(
                    ("drift", self.function_id, moved),
                    "%s: self.%s changes between calls with the same arguments, so they keep missing; "
                    "if it does not change the answer, name it _%s or give %s a __memollm_key__ method",
                    self.function_id, moved, moved, cls,
                )  # fmt: skip
        return found.tree

    def _bind(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        full = (instance, *args) if instance is not None else args
        bound = self.signature.bind(*full, **kwargs)
        bound.apply_defaults()
        # An SDK's "not given" is not an argument: a call that passes it is the call without it.
        arguments = {}
        for name, value in bound.arguments.items():
            if not_given(value):
                continue
            if name == self._var_kw_name and type(value) is dict:
                # A **kwargs pass-through: its entries are arguments too (ignore= and sentinels).
                ignore = self.policy.ignore
                arguments[name] = {k: v for k, v in value.items() if not (k in ignore or not_given(v))}
            else:
                arguments[name] = value
        return arguments

    def model_of(self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The ``model`` a call names, defaults applied (or in a request dict it passes), for pricing."""
        try:
            arguments = self._bind(instance, args, kwargs)
        except TypeError:
            return None
        places = [arguments, *(v for v in arguments.values() if isinstance(v, Mapping))]
        for place in places:
            model = place.get("model")
            if isinstance(model, str):
                return model
        model = getattr(instance, "model", None)  # a method's instance that holds its model
        return model if isinstance(model, str) else None

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


def _serves_semantic(policy: Policy) -> bool:
    if policy.semantic is None or policy.semantic == "shadow":
        return False
    from .semantic.settings import resolve

    settings = resolve(policy.semantic, policy.verify)
    return settings is not None and settings.normalise
