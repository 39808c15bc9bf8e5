"""The canonical form of a value: the same value gives the same bytes in any process, on any machine.

A tree of msgpack-native values and :class:`Tagged` nodes (a type tag and a payload), with
dict keys sorted by their encoding, ``-0.0`` as ``0.0``, every NaN as one, and nothing
that depends on ``hash()``, ``repr()`` or insertion order. :func:`pack` gives its bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import math
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import msgpack

from .errors import UncacheableArgumentError

__all__ = ["SCALARS", "Tagged", "canonical", "pack", "qualname", "readable", "types_for_arity", "types_of"]

_TAG_EXT = 1
_MAX_DEPTH = 100
SCALARS = frozenset({str, int, float, bool, type(None), bytes})  # types whose equality is value equality


@dataclass(frozen=True, slots=True)
class Tagged:
    """A non-native value in canonical form: a type tag and a msgpack-native payload."""

    tag: str
    payload: object


class _Unkeyable(Exception):
    def __init__(self, value: object) -> None:
        self.value = value
        self.segments: list[str] = []


def canonical(value: object, name: str = "value") -> object:
    """Return ``value`` in canonical form.

    Raises ``UncacheableArgumentError`` for a value of an unsupported type, naming where it
    sits (``name`` plus the path inside it: ``messages[0]['content']``).
    """
    try:
        return _canonical(value, 0)
    except _Unkeyable as exc:
        raise UncacheableArgumentError(name + "".join(reversed(exc.segments)), exc.value) from None


def types_of(values: tuple[Any, ...]) -> tuple[type, ...]:
    """Every value's type."""
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
# Hot path: types_for_arity(len(args), types_of)(args), with no Python call in between.
types_for_arity = _TYPES_BY_ARITY.get


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
        return Tagged("enum", [qualname(tp), _canonical(v.value, depth)])
    custom = getattr(v, "__memollm_key__", None)
    if custom is not None and callable(custom) and not isinstance(v, type):
        return Tagged("custom", [qualname(tp), _canonical(custom(), depth)])
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
        items = [pack(_item(x, depth, "<set item>")) for x in v]
        return Tagged("set", sorted(items))
    if isinstance(v, type):
        return Tagged("type", qualname(v))
    if dataclasses.is_dataclass(v):
        fields = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
        return Tagged("dataclass", [qualname(tp), _mapping(fields, depth)])
    if callable(getattr(tp, "model_dump", None)) and hasattr(tp, "model_fields"):
        dumped = v.model_dump(mode="json")  # type: ignore[attr-defined]
        return Tagged("pydantic", [qualname(tp), _mapping(dumped, depth)])
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
        pairs.append((pack(ck), ck, _item(val, depth, f"[{k!r}]")))
    pairs.sort(key=lambda p: p[0])
    # msgpack keeps insertion order, so the sorted order is what gets hashed.
    return {_hashable(ck): cv for _, ck, cv in pairs}


def _hashable(ck: object) -> object:
    # Canonical dict keys must themselves be dict keys; containers become their bytes.
    return ck if isinstance(ck, (str, bytes, int, float, bool, type(None))) else Tagged("k", pack(ck))


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
        return msgpack.ExtType(_TAG_EXT, pack([obj.tag, obj.payload]))
    raise TypeError(f"not canonical: {type(obj)!r}")


def pack(tree: object) -> bytes:
    """The canonical bytes of a canonical tree."""
    # A lone surrogate ("\ud800") is a valid str that UTF-8 cannot hold. surrogatepass gives
    # it bytes no valid string encodes to, so such arguments key too, without collisions.
    return msgpack.packb(  # type: ignore[no-any-return]
        tree, default=_default, use_bin_type=True, strict_types=True, unicode_errors="surrogatepass"
    )


def qualname(tp: type) -> str:
    """``module.QualName`` of a type."""
    return f"{tp.__module__}.{tp.__qualname__}"


def readable(tree: object) -> object:
    """A canonical tree as plain JSON-like data, for people to read (``explain_key``)."""
    if isinstance(tree, Tagged):
        return {f"${tree.tag}": readable(tree.payload)}
    if isinstance(tree, list):
        return [readable(x) for x in tree]
    if isinstance(tree, dict):
        return {str(readable(k)): readable(x) for k, x in tree.items()}
    return tree
