"""Whether a fresh answer is the same as a cached one: the feedback of error-bounded semantic hits."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np

from ..usage import text_of
from .embedder import Embedder

__all__ = ["ANSWER_SIMILARITY", "SHORT_ANSWER", "same_answer"]

ANSWER_SIMILARITY = 0.90  # cosine of two long answers' embeddings that counts as the same answer
SHORT_ANSWER = 64  # characters: answers up to this long must match exactly after normalising
_MAX_CHARS = 2000


def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).strip(" .!?")


def same_answer(
    cached: Any,
    fresh: Any,
    embedder: Embedder | None = None,
    *,
    similarity: float = ANSWER_SIMILARITY,
    text: Callable[[Any], str] = text_of,
) -> bool:
    """The default comparison: the same after normalising, or for long answers, similar enough.

    Answers are their text (a string, a completion's message, a stream's deltas). Short answers
    (a label, a number, a name) must be equal once case, spaces and final punctuation are set
    aside; longer ones may differ in wording, and count as the same when their embeddings'
    cosine reaches ``similarity``. Results with no text are compared as they are. ``text``
    reads a result's answer (the policy's ``answer_text``).
    """
    a, b = text(cached), text(fresh)
    if not a and not b:
        return bool(cached == fresh)
    na, nb = _normalised(a), _normalised(b)
    if na == nb:
        return True
    if max(len(na), len(nb)) <= SHORT_ANSWER or embedder is None:
        return False
    vectors = np.asarray(embedder.embed([a[:_MAX_CHARS], b[:_MAX_CHARS]]), dtype=np.float32)
    return float(vectors[0] @ vectors[1]) >= similarity
