"""The msgpack envelope every tier stores, and the safe restoring of typed results.

An envelope is a msgpack array ``[format, kind, created, expires, meta, payload]``.
Plain values (None, bool, int, float, str, bytes, lists, dicts) are stored as
msgpack natives; tuples, sets and big ints as extension types; dataclasses,
pydantic models, named tuples and enums as their class name plus fields. A class
is only ever restored if the function's return annotation names it or the user
called :func:`register_type`: nothing found in cached bytes is ever imported.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, cast

import msgpack

from .errors import CodecError, IncompatibleEntryError

__all__ = [
    "KIND_STREAM", "KIND_VALUE", "Codec", "Entry", "classes_in", "register_type", "restorable_types",
    "return_annotation",
]  # fmt: skip

FORMAT_VERSION = 1
KIND_VALUE = 0
KIND_STREAM = 1

_EXT_TUPLE = 1
_EXT_SET = 2
_EXT_FROZENSET = 3
_EXT_BIGINT = 4
_EXT_OBJECT = 5
_EXT_ENUM = 6

_registry: dict[str, type] = {}
_TIMES = (float, int)


def register_type(cls: type) -> type:
    """Allow instances of ``cls`` (a dataclass, pydantic model, named tuple or enum) to be restored.

    Returns ``cls`` so it can be used as a class decorator.
    """
    if not isinstance(cls, type) or _object_kind(cls) is None:
        raise TypeError(
            f"register_type() takes a dataclass, pydantic model, named tuple or enum class, got {cls!r}"
        )
    _registry[_name(cls)] = cls
    return cls


class Entry(NamedTuple):
    """A decoded, validated envelope (a named tuple: cheap to make on every read)."""

    value: Any
    kind: int
    created: float
    expires: float | None
    meta: dict[str, Any]


# A named tuple's own __new__ is Python code; tuple.__new__ builds the same object in C. Reads
# make an Entry on every hit.
_new_entry = functools.partial(tuple.__new__, Entry)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _object_kind(cls: type) -> str | None:
    if issubclass(cls, enum.Enum):
        return "enum"
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    if callable(getattr(cls, "model_validate", None)) and hasattr(cls, "model_fields"):
        return "pydantic"
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return "namedtuple"
    return None


def restorable_types(annotation: object) -> set[type]:
    """Classes named anywhere in ``annotation`` (and in their dataclass fields) that the codec may restore."""
    found: set[type] = set()
    _collect(annotation, found, 0)
    return found


def classes_in(value: object, limit: int = 1000) -> set[type]:
    """The restorable classes of a result: its own, its items', their fields'.

    For a function with no return annotation: what it really returned is what it may get back.
    """
    found: set[type] = set()
    todo, seen = [value], 0
    while todo and seen < limit:
        item = todo.pop()
        seen += 1
        if isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif _object_kind(type(item)) is not None:
            _collect(type(item), found, 0)
            if dataclasses.is_dataclass(item):
                todo.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return found


def _collect(tp: object, found: set[type], depth: int) -> None:
    if depth > 20:
        return
    if isinstance(tp, type):
        if tp in found or _object_kind(tp) is None:
            return
        found.add(tp)
        if dataclasses.is_dataclass(tp):
            try:
                hints = typing.get_type_hints(tp)
            except Exception:  # noqa: BLE001 - unresolvable hints only narrow what is restorable
                hints = {}
            for hint in hints.values():
                _collect(hint, found, depth + 1)
        return
    for arg in typing.get_args(tp):
        _collect(arg, found, depth + 1)


class Codec:
    """Encodes results into envelopes and decodes them back, bounded and without pickle."""

    def __init__(self, allowed: Iterable[type] = (), *, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._allowed = {_name(cls): cls for cls in allowed}
        self.max_bytes = max_bytes

    def allow(self, types: Iterable[type]) -> bool:
        """Add classes this codec may restore; whether any was new."""
        new = False
        for cls in types:
            new = new or self._allowed.get(_name(cls)) is not cls
            self._allowed[_name(cls)] = cls
        return new

    def _lookup(self, name: str) -> type | None:
        return self._allowed.get(name) or _registry.get(name)

    def encode(
        self,
        value: object,
        *,
        kind: int = KIND_VALUE,
        created: float,
        expires: float | None,
        meta: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` into an envelope; ``CodecError`` if it cannot be stored."""
        envelope = [FORMAT_VERSION, kind, created, expires, dict(meta or {}), value]
        try:
            data: bytes = msgpack.packb(envelope, default=self._default, use_bin_type=True, strict_types=True)
        except CodecError:
            raise
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise CodecError(f"cannot encode a result of type {type(value).__qualname__}: {exc}") from None
        if len(data) > self.max_bytes:
            raise CodecError(f"encoded result is {len(data)} bytes, above the limit of {self.max_bytes}")
        return data

    def decode(self, data: bytes) -> Entry:
        """Decode an envelope and check every field: the one validator of stored bytes.

        Stored bytes are untrusted: ``CodecError`` for anything malformed, oversized or
        unknown, or a wrong type anywhere (a string ``created``, metadata that is not a map,
        an unknown kind, a stream that is not a list); ``IncompatibleEntryError`` for
        another format version.
        """
        obj = self._unpack_envelope(data, self._ext_hook)
        if obj[0] != FORMAT_VERSION:
            raise IncompatibleEntryError(f"entry format {obj[0]!r}, this version reads {FORMAT_VERSION}")
        _, kind, created, expires, meta, value = obj
        if (
            (kind != KIND_VALUE and kind != KIND_STREAM)  # noqa: PLR1714 - 0 == False: no `in`
            or type(kind) is not int
            or type(created) not in _TIMES
            or not (expires is None or (type(expires) in _TIMES and expires == expires))  # noqa: PLR0124 - NaN
            or type(meta) is not dict
            or (kind == KIND_STREAM and type(value) is not list)
        ):
            raise CodecError("corrupt entry: malformed envelope fields")
        return _new_entry((value, kind, created, expires, meta))

    def describe(self, data: bytes) -> list[Any]:
        """Unpack an envelope for people to read: objects stay ``{"__type__": name, "value": ...}``.

        Never restores or imports a class; for ``memollm inspect``.
        """

        def hook(code: int, payload: bytes) -> object:
            if code == _EXT_BIGINT:
                return int(payload.decode("ascii"))
            inner = msgpack.unpackb(payload, ext_hook=hook, strict_map_key=False)
            if type(inner) is not list:
                raise CodecError("corrupt entry: malformed container")
            if code in (_EXT_OBJECT, _EXT_ENUM) and len(inner) == 2:
                return {"__type__": inner[0], "value": inner[1]}
            if code == _EXT_TUPLE:
                return tuple(inner)
            if code in (_EXT_SET, _EXT_FROZENSET):  # as a list: members may be unhashable here
                return inner
            raise CodecError(f"corrupt entry: unknown extension type {code}")

        return self._unpack_envelope(data, hook)

    def _unpack_envelope(self, data: bytes, hook: Callable[[int, bytes], object]) -> list[Any]:
        if len(data) > self.max_bytes:
            raise CodecError(f"entry is {len(data)} bytes, above the limit of {self.max_bytes}")
        try:
            obj = msgpack.unpackb(data, ext_hook=hook, strict_map_key=False)
        except CodecError:
            raise
        except (ValueError, TypeError, KeyError, RecursionError, msgpack.UnpackException) as exc:
            raise CodecError(f"corrupt entry: {exc}") from None
        if type(obj) is not list or len(obj) != 6:
            raise CodecError("corrupt entry: not an envelope")
        return obj

    def _default(self, obj: object) -> object:  # noqa: PLR0911 - one return per type
        if isinstance(obj, enum.Enum):
            return self._ext_object(_EXT_ENUM, obj, obj.value)
        if isinstance(obj, tuple):
            if type(obj) is tuple:
                return msgpack.ExtType(_EXT_TUPLE, self._pack(list(obj)))
            if hasattr(obj, "_fields"):
                return self._ext_object(_EXT_OBJECT, obj, list(obj))
        if isinstance(obj, (set, frozenset)):
            code = _EXT_SET if isinstance(obj, set) else _EXT_FROZENSET
            return msgpack.ExtType(code, self._pack(list(obj)))
        if type(obj) is int:  # only reaches here when it does not fit 64 bits
            return msgpack.ExtType(_EXT_BIGINT, str(obj).encode())
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
            return self._ext_object(_EXT_OBJECT, obj, fields)
        if callable(getattr(obj, "model_dump", None)) and hasattr(type(obj), "model_fields"):
            dumped = obj.model_dump(mode="json", by_alias=True, round_trip=True)  # type: ignore[attr-defined]
            return self._ext_object(_EXT_OBJECT, obj, dumped)
        return _plain(obj)

    def _ext_object(self, code: int, obj: object, payload: object) -> msgpack.ExtType:
        name = _name(type(obj))
        if self._lookup(name) is not type(obj):
            raise CodecError(
                f"{name} cannot be restored from the cache: name it in the function's return "
                f"annotation or call memollm.register_type({type(obj).__qualname__})"
            )
        return msgpack.ExtType(code, self._pack([name, payload]))

    def _pack(self, value: object) -> bytes:
        return msgpack.packb(value, default=self._default, use_bin_type=True, strict_types=True)  # type: ignore[no-any-return]

    def _unpack(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=self._ext_hook, strict_map_key=False)

    def _ext_hook(self, code: int, data: bytes) -> object:
        if code == _EXT_TUPLE:
            return tuple(self._unpack_list(data))
        if code == _EXT_SET:
            return set(self._unpack_list(data))
        if code == _EXT_FROZENSET:
            return frozenset(self._unpack_list(data))
        if code == _EXT_BIGINT:
            return int(data.decode("ascii"))
        if code in (_EXT_OBJECT, _EXT_ENUM):
            pair = self._unpack(data)
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise CodecError("corrupt entry: malformed object")
            name, payload = pair
            cls = self._lookup(name)
            if cls is None:  # sound, but not ours to restore (yet): skipped, never deleted
                raise IncompatibleEntryError(f"entry holds a {name}, which this function may not restore")
            return _restore(cls, payload, code)
        raise CodecError(f"corrupt entry: unknown extension type {code}")

    def _unpack_list(self, data: bytes) -> list[Any]:
        items = self._unpack(data)
        if type(items) is not list:
            raise CodecError("corrupt entry: malformed container")
        return items


_BUILTINS: tuple[type, ...] = (bool, int, str, float, bytes, list, dict)


def _plain(obj: object) -> object:
    """Subclasses of built-in types (str, int, dict, ...) are stored as the built-in."""
    for base in _BUILTINS:
        if isinstance(obj, base):
            return cast("Callable[[object], object]", base)(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise CodecError(f"values of type {type(obj).__qualname__} cannot be cached")


def _restore(cls: type, payload: Any, code: int) -> object:
    kind = _object_kind(cls)
    try:
        if code == _EXT_ENUM:
            if kind != "enum":
                raise CodecError(f"{_name(cls)} is not an enum")
            return cls(payload)
        if kind == "pydantic":
            return cls.model_validate(payload)  # type: ignore[attr-defined]
        if kind == "namedtuple" and type(payload) is list:
            return cls(*payload)
        if kind == "dataclass" and type(payload) is dict:
            return cls(**payload)
    except CodecError:
        raise
    except Exception as exc:  # noqa: BLE001 - a class rejecting old fields is a miss, not a crash
        raise CodecError(f"cannot restore {_name(cls)}: {exc}") from None
    raise CodecError(f"corrupt entry: bad payload for {_name(cls)}")


def return_annotation(func: Callable[..., Any]) -> object:
    """``func``'s return annotation, resolved where possible (a string if not yet definable)."""
    # A class defined inside a function is not in the module's globals, but the body
    # that returns it holds it in a closure cell.
    local: dict[str, Any] = {}
    code, closure = getattr(func, "__code__", None), getattr(func, "__closure__", None)
    if code is not None and closure:
        for name, cell in zip(code.co_freevars, closure, strict=False):
            try:
                local[name] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
    try:
        return typing.get_type_hints(func, localns=local).get("return")
    except Exception:  # noqa: BLE001 - unresolvable forward references
        return getattr(func, "__annotations__", {}).get("return")
