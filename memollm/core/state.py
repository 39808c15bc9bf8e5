"""What one cached function keeps between calls: its counters, codec, flights and current plan."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from types import MethodType
from typing import TYPE_CHECKING, Any

from .._install import extra as _extra
from .._log import warn_once
from ..coalesce.streams import AsyncStreamFlights, StreamFlights
from ..coalesce.threads import SingleFlight
from ..codec import Codec, classes_in, restorable_types, return_annotation
from ..config import generation, resolve
from ..keys import function_id
from ..policy import Policy, Semantic
from ..statistics import StatsRecorder
from . import plan as plans
from .entry import END
from .keeping import Heat, Refreshes

if TYPE_CHECKING:
    from ..semantic.tier import SemanticTier

__all__ = ["State"]


class State:
    """The state behind one cached function; the steps of a call read and update it."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        settings: Mapping[str, Any] | None = None,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # A bound method keys like any method: its function's signature, self included
        # (wrapt passes the bound object as the instance).
        raw = func.__func__ if isinstance(func, (classmethod, staticmethod, MethodType)) else func
        self.raw: Callable[..., Any] = raw
        # The helpers take the call's arguments; for a bound method its object is known.
        self.bound = func.__self__ if isinstance(func, MethodType) else None
        self.function_id = function_id(raw)
        self.name = name or self.function_id
        self.settings = dict(settings or {})
        self.clock = clock
        self.stats = StatsRecorder()
        self.codec = Codec()
        self.flights = SingleFlight()
        self.stream_flights = StreamFlights(END)
        self.astream_flights = AsyncStreamFlights(END)
        self.refreshes = Refreshes()
        self.heat = Heat()
        self.random = random.Random().random  # exploration draws (error-bounded semantic hits)
        self.plan: plans.Plan | None = None
        self._types_resolved = False
        self._semantic: SemanticTier | None = None
        self._semantic_shape: tuple[object, ...] | None = None

    def current(self) -> plans.Plan:
        """The plan for the current configuration generation (rebuilt when it moved)."""
        plan = self.plan
        if plan is None or plan.generation != generation.value:
            plan = self.build()
        return plan

    def build(self) -> plans.Plan:
        """Resolve the policy and build a new plan (a bad setting raises ConfigError here)."""
        current = generation.value
        policy = resolve(self.name, self.settings)
        self.ensure_types()
        self.codec.max_bytes = policy.max_entry_bytes
        semantic = self._semantic_tier(policy)
        if isinstance(policy.semantic, Semantic) and policy.semantic.seed is not None:
            self.random = random.Random(policy.semantic.seed).random
        plan = plans.build(
            current, policy, self.raw, self.function_id, hit_counter=self.stats.hit_counter, semantic=semantic
        )
        self.plan = plan
        return plan

    def ensure_types(self) -> bool:
        """Let the codec restore the classes the return annotation names (once it resolves)."""
        if not self._types_resolved:
            annotation = return_annotation(self.raw)
            if isinstance(annotation, str):  # a forward reference not defined yet: try again later
                return False
            self.codec.allow(restorable_types(annotation))
            self._types_resolved = True
        return True

    def learn_types(self, value: Any) -> bool:
        """Let the codec restore the classes a result really has, when the annotation names none.

        (No annotation, ``Any``, ``Iterator[Any]``.) Whether any class was new, so encoding may
        retry. The classes come from the function's own result in this process, never from
        stored bytes.
        """
        annotation = return_annotation(self.raw)
        if isinstance(annotation, str) or restorable_types(annotation):  # it names what may come back
            return False
        return self.codec.allow(classes_in(value))

    def ensure_types_late(self) -> bool:
        """Whether a return annotation that did not resolve before does now (so encoding may retry)."""
        return not self._types_resolved and self.ensure_types()

    def count_coalesced(self, looked: bool = True) -> None:
        """Count a call that got another's answer (``looked``: after its own lookup missed)."""
        self.stats.coalesced(looked=looked)

    def count_retry(self) -> None:
        """Count a retried upstream call."""
        self.stats.add("retries")

    def _semantic_tier(self, policy: Policy) -> SemanticTier | None:
        """This function's semantic tier (kept across configuration changes while it fits)."""
        if policy.semantic is None:
            return None
        try:
            from ..semantic.tier import SemanticTier
        except ImportError as exc:
            warn_once(
                ("semantic-extra",),
                "semantic caching needs the 'semantic' extra (%s): %s; caching exact matches, and "
                "questions that differ only in case, punctuation or filler words",
                _extra("semantic"),
                exc,
            )
            return None
        shape = (id(policy.embedder), policy.semantic_top_k, policy.semantic_max_entries,
                 policy.semantic_max_bytes)  # fmt: skip
        if self._semantic is None or self._semantic_shape != shape:
            self._semantic = SemanticTier(
                embedder=policy.embedder,
                top_k=policy.semantic_top_k,
                max_entries=policy.semantic_max_entries,
                max_bytes=policy.semantic_max_bytes,
                clock=self.clock,
            )
            self._semantic_shape = shape
        return self._semantic
