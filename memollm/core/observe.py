"""What one call did, as it happens: notes for ``memollm.lookup()`` and, with hooks, a CacheEvent.

The steps of a call :func:`note` their outcome. With no :func:`memollm.lookup` block and no
event hook, a note is two context-variable reads: the hit path pays nothing more. The calls
observed whole, with their event delivered, are :mod:`memollm.core.aio.observed` and its twin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..outcomes import Outcome, active_lookup
from ..statistics import Worth

if TYPE_CHECKING:
    from ..semantic.why import SemanticCheck

__all__ = ["Observation", "decided", "explored", "note", "observe", "why"]


@dataclass(slots=True)
class Observation:
    """What one call did, gathered for its :class:`~memollm.events.CacheEvent`.

    ``looked`` is when the lookup ended (the first outcome noted); ``worth`` is the
    :class:`~memollm.stats.Worth` of the entry served, or of the fresh result stored.
    """

    outcome: Outcome | None = None
    tier: str | None = None
    similarity: float | None = None
    looked: float | None = None
    worth: Worth | None = None
    explored: bool = False  # error-bounded mode called the model to check a similar entry


_observe: ContextVar[Observation | None] = ContextVar("memollm_observe", default=None)


@contextmanager
def observe(seen: Observation | None = None) -> Iterator[Observation]:
    """Gather what the cached call made in this block does (``seen``: continue that observation)."""
    seen = Observation() if seen is None else seen
    token = _observe.set(seen)
    try:
        yield seen
    finally:
        _observe.reset(token)


def note(
    outcome: Outcome,
    tier: str | None = None,
    similarity: float | None = None,
    created: float | None = None,
    worth: Worth | None = None,
) -> None:
    """Write to the active ``lookup()`` record and call observation, if there are any."""
    seen = active_lookup()
    if seen is not None:
        seen.outcome, seen.tier, seen.similarity, seen.created = outcome, tier, similarity, created
        if outcome is not Outcome.MISS:  # a miss keeps what the semantic step found
            seen.semantic = None
        elif seen.semantic is not None:  # and the similarity of the question it did not serve
            seen.similarity = seen.semantic.similarity
    obs = _observe.get()
    if obs is not None:
        if obs.looked is None:
            obs.looked = time.perf_counter()
        obs.outcome, obs.tier, obs.similarity = outcome, tier, similarity
        if worth is not None:
            obs.worth = worth


def why(check: SemanticCheck | None) -> None:
    """Tell the active ``lookup()`` why the semantic step served nothing (None: forget it)."""
    seen = active_lookup()
    if seen is not None:
        seen.semantic = check


def explored() -> None:
    """Note that this call checked a similar entry against the model instead of serving it."""
    obs = _observe.get()
    if obs is not None:
        obs.explored = True


def decided(decide: Callable[[], Any]) -> tuple[Any, Observation, float, float]:
    """Run a stream's decision observed: (what it decided, the observation, start times)."""
    wall, started = time.time(), time.perf_counter()
    with observe() as seen:
        decision = decide()
    return decision, seen, started, wall
