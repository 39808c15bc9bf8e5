"""What "the same call" means: canonical, stable cache keys for function calls.

A key is blake2b (128 bits) over a canonical msgpack encoding of the key schema
version, the function's identity and ``version`` salt, and every bound argument
with defaults applied. Nothing in it depends on ``hash()``, ``repr()`` or dict
order, so the same call gives the same key in any process, on any machine and
any supported Python version.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import inspect
import math
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import msgpack

from ._control import current_tenant
from .errors import UncacheableArgumentError
from .policy import Policy

__all__ = [
    "KEY_SCHEMA",
    "SEMANTIC_MAX_CHARS",
    "KeyBuilder",
    "KeyExplanation",
    "KeyInfo",
    "SemanticParts",
    "canonical",
    "function_id",
]

KEY_SCHEMA = 1
_TAG_EXT = 1
_MAX_DEPTH = 100
_MEMO_LIMIT = 4096
_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
# Names whose value decides whether a call samples (OpenAI's default temperature is 1).
_TEMPERATURE = "temperature"
_PROMPTISH = ("messages", "prompt", "input")
_PROMPT_NAMES = ("prompt", "question", "query", "input")
_PROMPT_SLOT = "\x00memollm:prompt\x00"  # stands for the prompt text in a semantic partition
# Longer prompts are cached exactly, never semantically. The embedding model sees at most 512
# tokens (about 2,000 characters of English): two longer prompts could differ where it cannot
# look. It also bounds what one request can make the embedder and the index hold.
SEMANTIC_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Tagged:
    """A non-native value in canonical form: a type tag and a msgpack-native payload."""

    tag: str
    payload: object


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


class _Unkeyable(Exception):
    def __init__(self, value: object) -> None:
        self.value = value
        self.segments: list[str] = []


def canonical(value: object) -> object:
    """Return ``value`` as a canonical tree of msgpack-native values and ``Tagged`` nodes.

    Raises ``UncacheableArgumentError`` for a value of an unsupported type.
    """
    try:
        return _canonical(value, 0)
    except _Unkeyable as exc:
        raise UncacheableArgumentError("value" + "".join(reversed(exc.segments)), exc.value) from None


def _types_of(values: tuple[Any, ...]) -> tuple[type, ...]:
    return tuple(map(type, values))


# The key memo's probe needs every argument's type on every call: written out per arity
# it costs half of tuple(map(type, args)), a tenth of a microsecond on each hit.
_TYPES_BY_ARITY: dict[int, Callable[[tuple[Any, ...]], tuple[type, ...]]] = {
    0: lambda a: (),
    1: lambda a: (type(a[0]),),
    2: lambda a: (type(a[0]), type(a[1])),
    3: lambda a: (type(a[0]), type(a[1]), type(a[2])),
    4: lambda a: (type(a[0]), type(a[1]), type(a[2]), type(a[3])),
    5: lambda a: (type(a[0]), type(a[1]), type(a[2]), type(a[3]), type(a[4])),
    6: lambda a: (type(a[0]), type(a[1]), type(a[2]), type(a[3]), type(a[4]), type(a[5])),
}
_types = _TYPES_BY_ARITY.get


def _canonical(v: object, depth: int) -> object:  # noqa: C901, PLR0911, PLR0912 - one branch per type
    tp = type(v)
    if tp is str or tp is bool or v is None or tp is bytes:
        return v
    if tp is int:
        return v if -(2**63) <= v < 2**64 else Tagged("bigint", str(v))  # type: ignore[operator]
    if tp is float:
        if v != v:  # noqa: PLR0124 - NaN: every NaN bit pattern becomes one
            return math.nan
        return v + 0.0  # type: ignore[operator]  # -0.0 == 0.0, so they must share a key
    if depth > _MAX_DEPTH:
        raise _Unkeyable(v)
    depth += 1
    if isinstance(v, enum.Enum):
        return Tagged("enum", [_qualname(tp), _canonical(v.value, depth)])
    custom = getattr(v, "__memollm_key__", None)
    if custom is not None and callable(custom) and not isinstance(v, type):
        return Tagged("custom", [_qualname(tp), _canonical(custom(), depth)])
    if isinstance(v, str):
        return str(v)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return _canonical(int(v), depth)
    if isinstance(v, float):
        return _canonical(float(v), depth)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, list):
        return [_item(x, depth, i) for i, x in enumerate(v)]
    if isinstance(v, tuple):
        return Tagged("tuple", [_item(x, depth, i) for i, x in enumerate(v)])
    if isinstance(v, Mapping):
        return _mapping(v, depth)
    if isinstance(v, (set, frozenset)):
        items = [_pack(_item(x, depth, "<set item>")) for x in v]
        return Tagged("set", sorted(items))
    if isinstance(v, type):
        return Tagged("type", _qualname(v))
    if dataclasses.is_dataclass(v):
        fields = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
        return Tagged("dataclass", [_qualname(tp), _mapping(fields, depth)])
    if callable(getattr(tp, "model_dump", None)) and hasattr(tp, "model_fields"):
        dumped = v.model_dump(mode="json")  # type: ignore[attr-defined]
        return Tagged("pydantic", [_qualname(tp), _mapping(dumped, depth)])
    np = sys.modules.get("numpy")
    if np is not None and isinstance(v, (np.ndarray, np.generic)):
        return _numpy(np, v)
    if isinstance(v, _dt.datetime | _dt.date | _dt.time):
        return Tagged(tp.__name__, v.isoformat())
    if isinstance(v, _dt.timedelta):
        return Tagged("timedelta", [v.days, v.seconds, v.microseconds])
    if isinstance(v, decimal.Decimal):
        return Tagged("decimal", str(v))
    if isinstance(v, uuid.UUID):
        return Tagged("uuid", v.hex)
    if isinstance(v, PurePath):
        return Tagged("path", v.as_posix())
    raise _Unkeyable(v)


def _item(x: object, depth: int, segment: object) -> object:
    try:
        return _canonical(x, depth)
    except _Unkeyable as exc:
        exc.segments.append(segment if isinstance(segment, str) else f"[{segment!r}]")
        raise


def _mapping(m: Mapping[Any, Any], depth: int) -> dict[object, object]:
    pairs = []
    for k, val in m.items():
        ck = _item(k, depth, "<dict key>")
        pairs.append((_pack(ck), ck, _item(val, depth, f"[{k!r}]")))
    pairs.sort(key=lambda p: p[0])
    # msgpack keeps insertion order, so the sorted order is what gets hashed.
    return {_hashable(ck): cv for _, ck, cv in pairs}


def _hashable(ck: object) -> object:
    # Canonical dict keys must themselves be dict keys; containers become their bytes.
    return ck if isinstance(ck, (str, bytes, int, float, bool, type(None))) else Tagged("k", _pack(ck))


def _numpy(np: Any, v: Any) -> Tagged:
    arr = np.asarray(v)
    if arr.dtype.hasobject:
        raise _Unkeyable(v)
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    data = np.ascontiguousarray(little).tobytes()
    tag = "ndarray" if isinstance(v, np.ndarray) else "npscalar"
    return Tagged(tag, [little.dtype.str, list(arr.shape), data])


def _default(obj: object) -> object:
    if isinstance(obj, Tagged):
        return msgpack.ExtType(_TAG_EXT, _pack([obj.tag, obj.payload]))
    raise TypeError(f"not canonical: {type(obj)!r}")


def _pack(tree: object) -> bytes:
    # A lone surrogate ("\ud800") is a valid str that UTF-8 cannot hold. surrogatepass gives
    # it bytes no valid string encodes to, so such arguments key too, without collisions.
    return msgpack.packb(  # type: ignore[no-any-return]
        tree, default=_default, use_bin_type=True, strict_types=True, unicode_errors="surrogatepass"
    )


def _qualname(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


def _take_prompt(arguments: dict[str, Any], prompt_arg: str | None) -> tuple[str, dict[str, Any]] | None:
    """The prompt text, and the arguments with a placeholder where the prompt was."""
    places = [arguments]
    for value in arguments.values():
        if isinstance(value, dict) and any(k in value for k in (*_PROMPT_NAMES, "messages")):
            places.append(value)  # an OpenAI-style **kwargs pass-through
    names = (prompt_arg,) if prompt_arg else _PROMPT_NAMES
    for place in places:
        for name in names:
            if isinstance(place.get(name), str) and place[name].strip():
                return place[name], _replaced(arguments, place, name, _PROMPT_SLOT)
        if not prompt_arg or prompt_arg == "messages":
            messages = place.get("messages")
            if isinstance(messages, list):
                for i in range(len(messages) - 1, -1, -1):
                    message = messages[i]
                    if isinstance(message, Mapping) and message.get("role") == "user":
                        text = _text_of(message.get("content"))
                        if text:
                            new = [*messages[:i], {**message, "content": _PROMPT_SLOT}, *messages[i + 1 :]]
                            return text, _replaced(arguments, place, "messages", new)
                        break
    return None


def _replaced(arguments: dict[str, Any], place: dict[str, Any], name: str, value: object) -> dict[str, Any]:
    if place is arguments:
        return {**arguments, name: value}
    return {k: ({**v, name: value} if v is place else v) for k, v in arguments.items()}


def _text_of(content: object) -> str | None:
    if isinstance(content, str):
        return content if content.strip() else None
    if isinstance(content, list):  # content parts: keep the text ones
        texts = [p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        joined = "\n".join(t for t in texts if isinstance(t, str))
        return joined or None
    return None


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


def _readable(tree: object) -> object:
    if isinstance(tree, Tagged):
        return {f"${tree.tag}": _readable(tree.payload)}
    if isinstance(tree, list):
        return [_readable(x) for x in tree]
    if isinstance(tree, dict):
        return {str(_readable(k)): _readable(x) for k, x in tree.items()}
    return tree


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
        types = _types(len(args), _types_of)(args)
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
        return _SCALARS.issuperset(probe[2]) and (len(probe) == 4 or _SCALARS.issuperset(probe[4]))

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
            arguments={name: _readable(v) for name, v in components.items()},
            ignored=tuple(sorted(p.ignore)),
            sampled=info.sampled,
            scope=_readable(self._scoped()),
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
            try:
                components["<key>"] = _canonical(custom, 0)
            except _Unkeyable as exc:
                raise UncacheableArgumentError("key()" + "".join(reversed(exc.segments)), exc.value) from None
        else:
            for name, value in arguments.items():
                if name in self.policy.ignore:
                    continue
                try:
                    components[name] = _canonical(value, 0)
                except _Unkeyable as exc:
                    raise UncacheableArgumentError(
                        name + "".join(reversed(exc.segments)), exc.value
                    ) from None
        material = _pack([KEY_SCHEMA, self.function_id, self.policy.version, self._scoped(), components])
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
            return _canonical(scope, 0)
        except _Unkeyable as exc:
            raise UncacheableArgumentError(
                "<scope>",
                exc.value,
                reason=f"the tenant scope {type(scope).__name__} cannot be part of a key",
            ) from None

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
        found = _take_prompt(arguments, self.policy.prompt_arg)
        if found is None:
            return None
        text, rest = found
        if len(text) > SEMANTIC_MAX_CHARS:
            return None
        components = {
            name: _canonical(value, 0) for name, value in rest.items() if name not in self.policy.ignore
        }
        material = _pack(
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
