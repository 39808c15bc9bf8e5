"""What ``semantic=`` means, decided in one place, and the one check every path applies to a candidate.

:func:`resolve` turns a policy's ``semantic`` and ``verify`` into frozen :class:`Settings`
the plan carries; :func:`check` is the verdict on one (query, stored prompt, similarity) for
the cache, ``lookup()`` and ``memollm explain`` alike:

- identical prompts are an exact repeat, prompts over :data:`MAX_CHARS` never semantic;
- the difference rules (:mod:`memollm.semantic.difference`): **never** refuses, **same**
  serves (at any similarity the search found it at, from :data:`SAME_FLOOR`);
- otherwise the similarity must reach ``threshold`` and the learned verifier ``score``; the
  verifier knows English, so Chinese, Japanese and Korean pairs are served on the rules alone.

``semantic=True`` is the recommended threshold (0.90) with the verifier at its own score
(0.95). A number is the cosine threshold; the rules and the verifier (at its own score) apply
as with ``True``: ``0.85`` serves more open pairs and errs more, ``0.95`` fewer (measured in
docs/semantic.md; a number as the verifier's score too made 0.90 serve unseen pairs at P 0.89
where ``True`` serves them at 0.94). ``"shadow"`` measures at 0.90 without serving;
``Semantic(max_error=...)`` looks from 0.80 and lets the learned error bound decide, with the
rules' vetoes. ``verify=False`` leaves cosine alone; a callable replaces rules and verifier.
Pure Python: the core install resolves and checks too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .difference import compare
from .normal import MAX_CHARS, has_cjk
from .options import Semantic
from .why import SemanticCheck

__all__ = ["BOUNDED_FLOOR", "SAME_FLOOR", "SHADOW_THRESHOLD", "Settings", "check", "resolve"]

SHADOW_THRESHOLD = 0.90  # the cosine shadow mode measures would-be hits at
BOUNDED_FLOOR = 0.80  # below this cosine, error-bounded mode considers nothing
SAME_FLOOR = 0.70  # the rules may find a pair the same from this cosine (a sanity floor)

Mode = Literal["serve", "shadow", "bounded"]


@dataclass(frozen=True, slots=True)
class Settings:
    """A policy's semantic tier, resolved: how candidates are found and judged."""

    mode: Mode
    threshold: float  # the cosine a candidate needs when the rules leave it open
    score: float | None  # the learned verifier's probability needed (None: not consulted)
    rules: bool  # the difference rules (same / never) apply
    verify: Callable[[str, str, float], bool] | None  # a policy's own check, instead of rules and score
    normalise: bool  # prompts with one normal form share one entry (served without a model)

    @property
    def floor(self) -> float:
        """The lowest cosine a search returns candidates from."""
        return min(self.threshold, SAME_FLOOR) if self.rules else self.threshold

    @property
    def serves(self) -> bool:
        """Whether hits are served (not shadow mode)."""
        return self.mode != "shadow"


def _recommended() -> tuple[float, float]:
    from .learned import learned_threshold, recommended_threshold

    return recommended_threshold(), learned_threshold()


def resolve(semantic: object, verify: object = None) -> Settings | None:
    """The settings ``semantic=`` and ``verify=`` mean (None: no semantic tier)."""
    if semantic is None or semantic is False:
        return None
    if isinstance(semantic, Semantic):
        if semantic.verify is not None:
            verify = semantic.verify
        if semantic.max_error is not None:
            bounded_own = _own(verify)
            threshold = semantic.threshold if semantic.threshold is not None else BOUNDED_FLOOR
            builtin = bounded_own is None and verify is not False
            return Settings("bounded", threshold, None, builtin, bounded_own, True)
        semantic = semantic.threshold if semantic.threshold is not None else True
    own = _own(verify)
    builtin = own is None and verify is not False
    if semantic == "shadow":
        cosine, score = SHADOW_THRESHOLD, _recommended()[1]
        mode: Mode = "shadow"
    elif semantic is True:
        (cosine, score), mode = _recommended(), "serve"
    else:
        cosine, mode = float(semantic), "serve"  # type: ignore[arg-type]  # Policy checked it
        score = _recommended()[1]
    return Settings(mode, cosine, score if builtin else None, builtin, own, mode != "shadow")


def _own(verify: object) -> Callable[[str, str, float], bool] | None:
    return verify if callable(verify) else None


def check(query: str, cached: str, similarity: float, settings: Settings) -> SemanticCheck:
    """Whether ``cached``'s answer may be served for ``query`` at ``similarity``, and why."""
    ruled = _ruled(query, cached, similarity, settings)
    if ruled is not None:
        return ruled
    if similarity < settings.threshold:
        return _below(similarity, settings, cached)
    if settings.verify is not None:
        accepted = bool(settings.verify(query, cached, similarity))
        reason = "the policy's verify= " + ("accepted it" if accepted else "refused it")
        return SemanticCheck(accepted, reason, similarity, cached)
    if settings.score is None:
        return SemanticCheck(True, "above the threshold, and no rule refused it", similarity, cached)
    if has_cjk(query) or has_cjk(cached):  # the verifier knows English
        reason = "Chinese, Japanese or Korean: served only when the rules find it the same question"
        return SemanticCheck(False, reason, similarity, cached)
    from .learned import learned_score

    score = learned_score(query, cached, similarity)
    reason = f"the verifier scored it {score:.2f} (it needs {settings.score:.2f})"
    return SemanticCheck(score >= settings.score, reason, similarity, cached, score)


def _below(similarity: float, settings: Settings, cached: str) -> SemanticCheck:
    reason = f"similarity {similarity:.3f} is below the threshold {settings.threshold:.2f}"
    return SemanticCheck(False, reason, similarity, cached)


def _ruled(query: str, cached: str, similarity: float, settings: Settings) -> SemanticCheck | None:
    """The verdict of what needs no threshold: repeats, length, the difference rules (None: none)."""
    if query == cached:
        return SemanticCheck(True, "identical prompts: an exact repeat", 1.0, cached)
    if len(query) > MAX_CHARS or len(cached) > MAX_CHARS:
        reason = f"a prompt over {MAX_CHARS} characters is never semantic"
        return SemanticCheck(False, reason, similarity, cached)
    if similarity < settings.floor:  # not even a candidate: the rules never see it
        return _below(similarity, settings, cached)
    return _rules(query, cached, similarity) if settings.rules else None


def _rules(query: str, cached: str, similarity: float) -> SemanticCheck | None:
    """The difference rules' verdict: never, same (None: open, for the threshold and the verifier)."""
    difference = compare(query, cached)
    if difference.kind == "never":
        return SemanticCheck(False, f"never served: {difference.reason}", similarity, cached)
    if difference.kind == "same" and similarity >= SAME_FLOOR:
        return SemanticCheck(True, f"the same question: {difference.reason}", similarity, cached)
    return None
