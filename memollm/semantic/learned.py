"""The learned verifier: a small gradient-boosted tree model over ``features``, scored in pure Python.

The model ships as JSON (``verifier.json``, fitted by ``scripts/train_verifier.py`` on
pairs whose licence allows it); scoring needs no training library.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from .features import FEATURES, features
from .verify import explain

__all__ = ["LearnedModel", "learned_score", "learned_threshold", "learned_verifier", "recommended_threshold"]

_MODEL = Path(__file__).with_name("verifier.json")


class LearnedModel:
    """Trees exported as arrays: feature, threshold, children, leaf value."""

    def __init__(self, spec: dict[str, Any]) -> None:
        if list(spec["features"]) != list(FEATURES):
            raise ValueError("the verifier model was fitted on other features than this version computes")
        self.init = float(spec["init"])
        self.rate = float(spec["rate"])
        self.threshold = float(spec["threshold"])
        self.gate = float(spec.get("gate", 0.0))
        self.default_cosine = float(spec.get("default_cosine", 0.9))
        self.trees = [(t["f"], t["t"], t["l"], t["r"], t["v"]) for t in spec["trees"]]

    def score(self, row: list[float]) -> float:
        """The model's probability that serving is correct."""
        raw = self.init
        for feat, thresh, left, right, value in self.trees:
            node = 0
            while left[node] != -1:
                node = left[node] if row[feat[node]] <= thresh[node] else right[node]
            raw += self.rate * value[node]
        return 1.0 / (1.0 + math.exp(-raw))


@cache
def _shipped() -> LearnedModel:
    return LearnedModel(json.loads(_MODEL.read_text(encoding="utf-8")))


def recommended_threshold() -> float:
    """The cosine threshold ``semantic=True`` means: where the shipped model keeps 95% precision."""
    return _shipped().default_cosine


def learned_score(query: str, cached: str, similarity: float) -> float:
    """The shipped model's probability that serving ``cached``'s answer for ``query`` is right."""
    return _shipped().score(features(query, cached, similarity))


def learned_threshold() -> float:
    """The score the learned verifier needs to let a candidate through."""
    return _shipped().threshold


def learned_verifier(query: str, cached: str, similarity: float) -> bool:
    """Hard vetoes first, then the learned model's score against its threshold."""
    if explain(query, cached) is not None:
        return False
    model = _shipped()
    if similarity < model.gate:
        return False
    return model.score(features(query, cached, similarity)) >= model.threshold
