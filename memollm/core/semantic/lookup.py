"""The semantic step: answer a re-phrased question from a verified similar entry, and index new prompts.

Only reached when the exact lookup missed and the policy has a semantic tier. Everything
here is sync (embedding is CPU work, the vector log a tier call): the async face runs it on a
worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ..._log import logger, warn_once
from ...keys import SemanticParts
from ...outcomes import Outcome, active_lookup
from ...semantic.bounded import decide
from ...semantic.why import SemanticCheck
from ...statistics import Worth
from ..entry import MISSING
from ..observe import explored, note, why
from ..sync import lifetime, tiers
from . import evidence, vectors

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ...policy import Semantic
    from ...semantic.index import Candidate
    from ...semantic.tier import Pending
    from ..calls import Call
    from ..plan import Plan
    from ..state import State

__all__ = ["Prepared", "find", "index_many", "prepare", "remember"]


class Prepared(NamedTuple):
    """A call's prompt and partition, and the prompt's vector."""

    parts: SemanticParts
    vector: npt.NDArray[np.float32]


def prepare(
    state: State, plan: Plan, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Prepared | None:
    """The call's prompt vector, or None if it has no usable prompt (or the model cannot be used)."""
    semantic = plan.semantic
    assert semantic is not None
    try:
        parts = plan.keys.semantic(instance, args, kwargs)
    except Exception:  # noqa: BLE001 - the exact path has already reported it
        return None
    if parts is None:
        return None
    parts = semantic.routed(parts)
    vector = semantic.vector(state.name, parts.text)
    if vector is None:
        return None
    return Prepared(parts, vector)


def find(state: State, plan: Plan, instance: object, made: Call, kind: int) -> tuple[Any, Pending | None]:
    """A verified similar entry's value (or MISSING), and what to index after the call."""
    from ...semantic.tier import Pending

    _, args, kwargs = made
    prepared = prepare(state, plan, instance, args, kwargs)
    if prepared is None:
        return MISSING, None
    semantic = plan.semantic
    assert semantic is not None
    parts, vector = prepared
    pending = Pending(parts.partition, parts.text, vector)
    for candidate in vectors.candidates(state, plan, parts.partition, vector, parts.text):
        found = tiers.quiet(state, plan, candidate.key, kind)
        if found is None:  # its entry expired or was evicted: the vector is dangling
            vectors.remove(state, plan, parts.partition, candidate.key)
            continue
        if plan.shadow:
            pending.shadow, pending.shadow_value = candidate, found.entry.value
            state.stats.add("shadow_hits")
            return MISSING, pending
        if plan.bounded is not None and not _safe(state, plan, parts.partition, candidate, pending):
            pending.check_value = found.entry.value
            state.stats.add("explorations")
            explored()
            if active_lookup() is not None:
                why(SemanticCheck(False, "error-bounded mode called the model to check this candidate: "
                                  "not yet enough evidence that hits at this similarity are right",
                                  candidate.similarity, candidate.text))  # fmt: skip
            return MISSING, pending
        worth = Worth.from_meta(found.entry.meta)
        state.stats.hit("semantic")
        if worth is not None:
            state.stats.saved(worth)
        lifetime.warm(state, plan, candidate.key, kind)
        note(Outcome.SEMANTIC_HIT, "semantic", candidate.similarity, found.entry.created, worth)
        return found.entry.value, None
    if active_lookup() is not None:  # someone asks why: worth a second search
        assert plan.settings is not None
        why(semantic.why_not(parts.partition, vector, parts.text, plan.settings))
    return MISSING, pending


def _safe(state: State, plan: Plan, partition: str, candidate: Candidate, pending: Pending) -> bool:
    """Error-bounded mode: whether to serve ``candidate``; if not, ``pending`` notes what to check."""
    bounded = plan.bounded
    assert bounded is not None
    assert bounded.max_error is not None
    verdict = decide(
        evidence.read(state, plan, partition),
        evidence.read(state, plan, candidate.key, entry=True),
        candidate.similarity,
        max_error=bounded.max_error,
        confidence=bounded.confidence,
        explore_min=bounded.explore_min,
        rng=state.random,
    )
    if not verdict.serve:
        pending.check, pending.eligible = candidate, verdict.eligible
    return verdict.serve


def remember(
    state: State, plan: Plan, key: str, pending: Pending, *, result: Any, data: bytes | None
) -> None:
    """Index the new entry's prompt; in shadow mode, compare the answer with the would-be hit."""
    semantic = plan.semantic
    assert semantic is not None
    if data is not None:
        vectors.add(state, plan, pending.partition, key=key, text=pending.text, vector=pending.vector)
    if pending.shadow is not None:
        same = _same(state, plan, pending.shadow_value, result, plan.bounded)
        if not same:
            state.stats.add("shadow_mismatches")
        logger.info(
            "%s: shadow semantic hit at similarity %.3f on entry %s; answers %s",
            state.name, pending.shadow.similarity, pending.shadow.key, "agree" if same else "differ",
        )  # fmt: skip
    if pending.check is not None:
        _learn(state, plan, pending, result)


def _same(state: State, plan: Plan, cached: Any, fresh: Any, bounded: Semantic | None) -> bool:
    """Whether a fresh answer is the cached one: ``same_answer``, or the default on their answer texts."""
    from ...semantic.answers import ANSWER_SIMILARITY, same_answer
    from ...usage import text_of

    try:
        if bounded is not None and bounded.same_answer is not None:
            return bool(bounded.same_answer(cached, fresh))
        embedder = plan.semantic.embedder if plan.semantic is not None else None
        similarity = ANSWER_SIMILARITY if bounded is None else bounded.answer_similarity
        return same_answer(cached, fresh, embedder, similarity=similarity,
                           text=plan.policy.answer_text or text_of)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a comparison that fails counts as "not the same"
        warn_once(("same_answer", state.name, type(exc)), "%s: same_answer raised %r; counted as different",
                  state.name, exc)  # fmt: skip
        return False


def _learn(state: State, plan: Plan, pending: Pending, fresh: Any) -> None:
    """Compare the fresh answer with the explored candidate's and count it as evidence."""
    check, bounded = pending.check, plan.bounded
    assert check is not None
    assert bounded is not None
    same = _same(state, plan, pending.check_value, fresh, bounded)
    evidence.record(state, plan, pending.partition, check.key, similarity=check.similarity, same=same)
    state.stats.add("semantic_checks")
    if pending.eligible:
        state.stats.add("eligible_checks")
    if not same:
        state.stats.add("semantic_wrong")
        if pending.eligible:
            state.stats.add("eligible_wrong")


def index_many(state: State, plan: Plan, stored: list[tuple[str, SemanticParts]], batch: int = 256) -> None:
    """Embed stored prompts in batches and index them, partition by partition (``store_many``)."""
    from ...semantic.embedder import EmbedderUnavailable

    semantic = plan.semantic
    assert semantic is not None
    stored = [(key, semantic.routed(parts)) for key, parts in stored]
    for start in range(0, len(stored), batch):
        chunk = stored[start : start + batch]
        try:
            embedded = semantic.embedder.embed([parts.text for _, parts in chunk])
        except EmbedderUnavailable as exc:
            warn_once(("embedder", str(exc)), "%s: semantic caching is off, exact caching goes on: %s",
                      state.name, exc)  # fmt: skip
            return
        except Exception as exc:  # noqa: BLE001 - the answers are stored; only their prompts go unindexed
            warn_once(("embed", state.name, type(exc)), "%s: embedding failed, prompts not indexed: %r",
                      state.name, exc)  # fmt: skip
            return
        groups: dict[str, list[int]] = {}
        for i, (_, parts) in enumerate(chunk):
            groups.setdefault(parts.partition, []).append(i)
        for partition, rows in groups.items():
            keys = [chunk[i][0] for i in rows]
            texts = [chunk[i][1].text for i in rows]
            vectors.add_many(state, plan, partition, keys=keys, texts=texts, vectors=embedded[rows])
