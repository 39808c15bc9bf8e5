"""What happened to a cached call: its :class:`Outcome`, and :func:`lookup` to read it.

For example::

    with memollm.lookup() as seen:
        answer = ask(question)
    if seen.outcome is memollm.Outcome.STALE: ...
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .semantic.why import SemanticCheck

__all__ = ["Lookup", "Outcome", "active_lookup", "lookup"]


class Outcome(str, enum.Enum):
    """The outcome of one cached call; each member equals the string users see (``"hit"``)."""

    HIT = "hit"  # served from a tier
    SEMANTIC_HIT = "semantic-hit"  # served from a similar question's entry
    MISS = "miss"  # the model was called and the answer stored
    STALE = "stale"  # the call failed and an expired entry was served
    COALESCED = "coalesced"  # another caller's call was shared
    BYPASS = "bypass"  # bypass(), a disabled policy or a skipped sampled call
    UNCACHEABLE = "uncacheable"  # the arguments could not be keyed: called through
    ERROR = "error"  # in events: the call raised, or went through uncached

    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]  # "hit", not "Outcome.HIT"


SERVED = frozenset({Outcome.HIT, Outcome.SEMANTIC_HIT})  # answered by the cache itself
_REASONS = {
    Outcome.HIT: "the same call was answered before",
    Outcome.SEMANTIC_HIT: "a similar question's answer was served",
    Outcome.MISS: "nothing stored answers it: the model was called",
    Outcome.STALE: "the call failed: an expired answer was served",
    Outcome.COALESCED: "an identical call in flight was shared",
    Outcome.BYPASS: "the cache was bypassed",
    Outcome.UNCACHEABLE: "its arguments cannot be keyed: called through uncached",
}


@dataclass(slots=True)
class Lookup:
    """What happened to the last cached call made inside a :func:`lookup` block.

    ``outcome`` is an :class:`Outcome` (equal to its string: ``"hit"``, ``"semantic-hit"``,
    ``"miss"``, ``"stale"``, ``"coalesced"``, ``"bypass"``, ``"uncacheable"``); ``tier``
    names the tier of a hit, ``similarity`` the cosine of a semantic hit (on a miss, of the
    most similar stored question, which was not served), ``created`` when the served entry
    was stored (wall clock), ``reason`` why it ended so, in words. On a miss of a function
    with a semantic tier, ``semantic`` says why no similar question's answer was served: the
    best stored question, its similarity, and what refused it (the threshold, a rule, the
    verifier's score, or error-bounded mode exploring).
    """

    outcome: Outcome | None = None
    tier: str | None = None
    similarity: float | None = None
    created: float | None = None
    semantic: SemanticCheck | None = None

    @property
    def reason(self) -> str | None:
        """Why the call ended as it did, in words (None before any call)."""
        if self.semantic is not None:
            return self.semantic.reason
        return None if self.outcome is None else _REASONS.get(self.outcome, str(self.outcome))

    @property
    def stale(self) -> bool:
        """Whether the answer was an expired entry served because the call failed."""
        return self.outcome is Outcome.STALE


_record: ContextVar[Lookup | None] = ContextVar("memollm_lookup", default=None)
active_lookup = _record.get
"""The :class:`Lookup` of the innermost :func:`lookup` block, or None."""


@contextmanager
def lookup() -> Iterator[Lookup]:
    """Record what happens to cached calls in this block (context-local)."""
    seen = Lookup()
    token = _record.set(seen)
    try:
        yield seen
    finally:
        _record.reset(token)
