"""Why a similar question's answer was, or was not, served: one explanation for lookup() and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .verify import explain

__all__ = ["SemanticCheck", "judge"]


@dataclass(frozen=True, slots=True)
class SemanticCheck:
    """The semantic tier's verdict on the best stored question for a query.

    ``similarity`` is the cosine of the two prompts' embeddings (None when nothing similar
    is stored); ``candidate`` the stored prompt; ``served`` whether its answer may be served;
    ``reason`` why not (or why yes) in words; ``score`` the learned verifier's probability
    that serving is right, when it was consulted.
    """

    served: bool
    reason: str
    similarity: float | None = None
    candidate: str | None = None
    score: float | None = None


def judge(  # noqa: PLR0911 - one return per verdict
    query: str,
    cached: str,
    similarity: float,
    threshold: float,
    verify: Callable[[str, str, float], bool] | None,
) -> SemanticCheck:
    """The verdict of the threshold, the guards and the verifier on one pair of prompts."""
    from .learned import learned_score, learned_threshold, learned_verifier

    if similarity < threshold:
        return SemanticCheck(False, f"similarity {similarity:.3f} is below the threshold {threshold:.2f}",
                             similarity, cached)  # fmt: skip
    veto = explain(query, cached)
    if veto is not None:
        return SemanticCheck(False, f"a guard refused it: {veto}", similarity, cached)
    if verify is learned_verifier:
        score, needed = learned_score(query, cached, similarity), learned_threshold()
        if not learned_verifier(query, cached, similarity) and score >= needed:
            return SemanticCheck(False, f"similarity {similarity:.3f} is below the verifier's floor",
                                 similarity, cached, score)  # fmt: skip
        if score < needed:
            return SemanticCheck(False, f"the verifier scored it {score:.2f} (it needs {needed:.2f})",
                                 similarity, cached, score)  # fmt: skip
        return SemanticCheck(True, f"the verifier scored it {score:.2f} (it needs {needed:.2f})",
                             similarity, cached, score)  # fmt: skip
    if verify is not None and not verify(query, cached, similarity):
        return SemanticCheck(False, "the policy's verify= refused it", similarity, cached)
    return SemanticCheck(True, "above the threshold, and no guard refused it", similarity, cached)
