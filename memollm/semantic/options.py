"""What a user may ask of the semantic tier beyond a threshold: the :class:`Semantic` value.

Pure Python: the core install builds and checks it without the ``semantic`` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["Semantic", "checked_semantic"]


@dataclass(frozen=True, slots=True)
class Semantic:
    """The semantic tier's settings, for more than a threshold: ``semantic=Semantic(max_error=0.02)``.

    With ``max_error``, the cache learns on your own traffic when a similar question's answer
    may be served: a candidate above ``threshold`` is served only once comparisons of cached
    answers with fresh ones at that similarity show, with probability ``confidence``, an error
    rate of at most ``max_error``. Until then (and for a falling share of candidates after, at
    least ``explore_min``) the model is called and its answer compared with the cached one by
    ``same_answer(cached, fresh) -> bool``. Without ``max_error``, ``threshold`` is a fixed
    cosine threshold, as ``semantic=0.92`` is.

    Args:
        max_error: The share of wrong semantic answers you accept (e.g. 0.02); None for a
            fixed threshold.
        threshold: The cosine below which nothing is considered (default 0.80 with
            ``max_error``, else the recommended threshold).
        verify: A check every candidate must pass: a callable, ``True`` for the vetoes and the
            learned verifier, ``False`` for none (default: the hard vetoes alone with
            ``max_error``, where the learned bound does the rest; else as ``True``).
        same_answer: Decides whether a fresh answer is the cached one (default: equal after
            normalising for short answers, embeddings within ``answer_similarity`` for long
            ones). One that raises counts as "not the same".
        confidence: How sure the cache must be that the error is within ``max_error``.
        explore_min: The smallest share of safe candidates still checked against the model.
        answer_similarity: The cosine of two long answers' embeddings that makes them the same.
        seed: Seeds the draws that pick which safe candidates are checked (reproducible runs);
            None draws from the system's entropy.
    """

    max_error: float | None = None
    threshold: float | None = None
    verify: Callable[[str, str, float], bool] | bool | None = None
    same_answer: Callable[[Any, Any], bool] | None = None
    confidence: float = 0.95
    explore_min: float = 0.01
    answer_similarity: float = 0.90
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_error is not None and not _fraction_in(self.max_error, 0.0, 0.5):
            raise ConfigError(f"Semantic.max_error must be a fraction in (0, 0.5), got {self.max_error!r}")
        if self.threshold is not None and not _fraction_in(self.threshold, 0.0, 1.0, closed=True):
            raise ConfigError(f"Semantic.threshold must be a cosine in (0, 1], got {self.threshold!r}")
        if not _fraction_in(self.confidence, 0.5, 1.0):
            raise ConfigError(f"Semantic.confidence must be in (0.5, 1), got {self.confidence!r}")
        if not _fraction_in(self.explore_min, 0.0, 0.5, closed=True) and self.explore_min != 0:
            raise ConfigError(f"Semantic.explore_min must be in [0, 0.5], got {self.explore_min!r}")
        if not _fraction_in(self.answer_similarity, 0.0, 1.0, closed=True):
            raise ConfigError(f"Semantic.answer_similarity must be in (0, 1], got {self.answer_similarity!r}")
        if self.same_answer is not None and not callable(self.same_answer):
            raise ConfigError(f"Semantic.same_answer must be callable, got {self.same_answer!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"Semantic.seed must be an integer or None, got {self.seed!r}")
        if self.verify not in (None, True, False) and not callable(self.verify):
            raise ConfigError(f"Semantic.verify must be a callable, True, False or None, got {self.verify!r}")


def _fraction_in(value: object, low: float, high: float, *, closed: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return low < value < high or (closed and value == high)


def checked_semantic(sem: object) -> float | str | bool | Semantic | None:
    """``semantic=`` checked: None for off, else True, a cosine, ``"shadow"`` or a :class:`Semantic`."""
    if sem is None or sem is False:
        return None
    if sem is True or sem == "shadow" or isinstance(sem, Semantic):
        return sem
    if isinstance(sem, bool) or not isinstance(sem, (int, float)) or not 0.0 < sem <= 1.0:
        raise ConfigError(
            f"semantic must be True, a cosine threshold in (0, 1], 'shadow' or None, got {sem!r}"
        )
    return float(sem)
