"""How an instance is keyed when a cached method is called on it: its class and its state.

The state is a dataclass's, attrs class's or pydantic model's fields, else the entries of
``vars(self)`` (and ``__slots__``). Names starting with ``_`` are left out: private state
(a call counter, a timestamp, a cache dict) changes on every call and would make every call
miss. Values that cannot be keyed (a client, a lock, a connection) are left out too, and
named, so the caller can warn once. ``__memollm_key__()`` replaces all of this.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .canonical import Tagged, canonical, pack, qualname
from .errors import UncacheableArgumentError

__all__ = ["InstanceKey", "StateDrift", "instance_key"]


@dataclass(frozen=True, slots=True)
class InstanceKey:
    """An instance in canonical form, its keyed attributes one by one, and those left out."""

    tree: object
    state: dict[str, object]
    left_out: tuple[str, ...]


def instance_key(obj: object, where: str = "self") -> InstanceKey:
    """Key ``obj`` by its class and its public, keyable state."""
    tp = type(obj)
    if callable(getattr(obj, "__memollm_key__", None)):
        tree = canonical(obj, where)
        return InstanceKey(tree, {"__memollm_key__": tree}, ())
    state: dict[str, object] = {}
    left_out: list[str] = []
    for name, value in _attributes(obj):
        if name.startswith("_"):
            continue
        try:
            state[name] = canonical(value, f"{where}.{name}")
        except UncacheableArgumentError:
            left_out.append(name)
    return InstanceKey(Tagged("instance", [qualname(tp), state]), state, tuple(left_out))


def _attributes(obj: object) -> list[tuple[str, object]]:
    tp = type(obj)
    if dataclasses.is_dataclass(obj):
        names = [f.name for f in dataclasses.fields(obj)]
    elif hasattr(tp, "__attrs_attrs__"):
        names = [a.name for a in tp.__attrs_attrs__]
    elif isinstance(fields := getattr(tp, "model_fields", None), dict) and callable(
        getattr(tp, "model_dump", None)
    ):
        names = list(fields)
    else:
        names = list(getattr(obj, "__dict__", {}))
        for klass in tp.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            slots = [slots] if isinstance(slots, str) else list(slots)
            names += [s for s in slots if s not in ("__dict__", "__weakref__")]
    found = []
    for name in sorted(set(names)):
        try:
            found.append((name, getattr(obj, name)))
        except AttributeError:  # an unset slot
            continue
    return found


class StateDrift:
    """Notices a method whose calls miss only because an attribute of the instance keeps changing.

    ``seen(args_digest, state)`` is told each method call's arguments (as a digest) and the
    instance's keyed state; it returns the name of an attribute that changed between calls
    with the same arguments ``REPEATS`` times in a row, once per attribute.
    """

    REPEATS = 3
    _LIMIT = 256

    def __init__(self) -> None:
        self._last: dict[bytes, dict[str, bytes]] = {}
        self._streak: dict[str, int] = {}
        self._told: set[str] = set()

    def seen(self, args_digest: bytes, state: dict[str, object]) -> str | None:
        """The attribute to warn about now, if any."""
        packed = {name: pack(tree) for name, tree in state.items()}
        before = self._last.get(args_digest)
        if len(self._last) >= self._LIMIT:
            self._last.clear()
        self._last[args_digest] = packed
        if before is None or before == packed:  # new, or unchanged (a hit; or this call keyed twice)
            return None
        changed = {name for name in packed.keys() | before.keys() if packed.get(name) != before.get(name)}
        for name in list(self._streak):
            if name not in changed:
                del self._streak[name]
        for name in sorted(changed):
            self._streak[name] = self._streak.get(name, 0) + 1
            if self._streak[name] >= self.REPEATS and name not in self._told:
                self._told.add(name)
                return name
        return None
