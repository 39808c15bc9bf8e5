"""Why a similar question's answer was, or was not, served: one explanation for lookup() and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SemanticCheck"]


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
