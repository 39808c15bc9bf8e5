"""Entries as the core reads them, and the pure rules about them: live, stale, remaining, shareable.

An :class:`~memollm.codec.Entry` is what the codec's one validator gives back for stored
bytes. A :class:`Memo` is the decoded value the memory tier may keep beside an entry's bytes,
when every caller may share it, so repeated hits skip decoding.
"""

from __future__ import annotations

import enum
import itertools
from typing import TYPE_CHECKING, Any, NamedTuple

from ..codec import KIND_STREAM, Codec, Entry
from ..errors import CodecError, IncompatibleEntryError

if TYPE_CHECKING:
    from ..backends.memory import MemoryItem
    from ..statistics import Tally

__all__ = [
    "END",
    "MISSING",
    "Memo",
    "Rejected",
    "accept",
    "fresh_memo",
    "live",
    "remaining",
    "shareable",
    "stale_ok",
]


class _Missing(enum.Enum):
    MISSING = enum.auto()


MISSING = _Missing.MISSING  # no value (a miss); None is a value a function may return
END: Any = object()  # a stream that ended before its first chunk


class Memo(NamedTuple):
    """A decoded immutable value kept beside a memory-tier entry, with its lock-free hit counter."""

    kind: int
    expires: float | None
    value: Any
    hits: itertools.count[int]  # next() on it counts a hit (see StatsRecorder.tally)
    tally: Tally


class Rejected(enum.Enum):
    """Why stored bytes are not used."""

    DROP = "drop"  # corrupt, or not this function's kind: delete it from its tier
    KEEP = "keep"  # written by a newer memollm: leave it for that one


_IMMUTABLE = frozenset({str, bytes, int, float, bool, type(None)})


def accept(codec: Codec, data: bytes, kind: int) -> Entry | Rejected:
    """The entry in ``data`` if it is sound and of ``kind``; else why not."""
    try:
        entry = codec.decode(data)
    except IncompatibleEntryError:
        return Rejected.KEEP
    except CodecError:
        return Rejected.DROP
    return entry if entry.kind == kind else Rejected.DROP


def live(entry: Entry, now: float) -> bool:
    """Whether the entry may be served as a hit."""
    return entry.expires is None or entry.expires > now


def stale_ok(entry: Entry, window: float | None, now: float) -> bool:
    """Whether an expired entry is recent enough to serve if the call fails."""
    return window is not None and entry.expires is not None and entry.expires + window > now


def remaining(ttl: float | None, stale: float | None, expires: float | None, now: float) -> float | None:
    """How long a tier should keep an entry copied from another: what it has left, never more."""
    return ttl if expires is None else expires - now + (stale or 0.0)


def fresh_memo(item: MemoryItem, kind: int, now: float) -> Memo | None:
    """The item's memo, if it is of ``kind`` and not expired at ``now``."""
    memo: Memo | None = item.memo
    if memo is not None and memo.kind == kind and (memo.expires is None or memo.expires > now):
        return memo
    return None


def shareable(entry: Entry) -> Any:
    """The entry's value if every caller may share one decoded copy of it, else MISSING."""
    value = entry.value
    if _frozen(value, 0):
        return value
    if entry.kind == KIND_STREAM and all(_frozen(chunk, 1) for chunk in value):
        return tuple(value)  # a stream replays its chunks, never the list itself
    return MISSING


def _frozen(value: Any, depth: int) -> bool:
    """Immutable all the way down: a scalar, or a tuple of such (nested a few levels at most)."""
    if type(value) in _IMMUTABLE:
        return True
    return type(value) is tuple and depth < 4 and all(_frozen(item, depth + 1) for item in value)
