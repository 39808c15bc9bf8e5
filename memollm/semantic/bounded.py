"""Semantic hits with a promised error rate: when to serve, when to call the model and learn.

Each partition (and each entry within it) keeps what comparisons of cached answers with fresh
ones have shown, counted by similarity bin. A candidate at similarity ``s`` is served only if
some threshold ``t <= s`` is safe: among the comparisons made at ``t`` or above, the posterior
probability that the error rate is at most ``max_error`` reaches ``confidence`` (a Beta
posterior on the error rate, starting from no evidence). Serving everything above a safe
threshold keeps the error of what is served within the bound. Until then the cache explores:
it calls the model as on a miss and compares the fresh answer with the cached one, which is
one more observation. Once a similarity is safe, a share of its candidates is still explored,
in proportion to the doubt left (half when the evidence only just suffices), so the estimate
keeps up with traffic that changes. An entry whose own answer was found wrong at a similarity is never
served at or below it. Pure functions: no I/O, no clock; the randomness is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "BINS", "Evidence", "Verdict", "bin_of", "decide", "observation", "prob_error_at_most", "wilson",
]  # fmt: skip

BINS = 100  # similarity bins over [0, 1]: 0.01 wide


def bin_of(similarity: float) -> int:
    """The bin of a similarity (0 .. BINS - 1)."""
    return max(0, min(BINS - 1, int(similarity * BINS)))


@dataclass(slots=True)
class Evidence:
    """Comparisons by similarity bin: ``seen[b]`` made, ``wrong[b]`` of them found different."""

    seen: dict[int, int] = field(default_factory=dict)
    wrong: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_counts(cls, counts: Mapping[str, object]) -> Evidence:
        """From stored counters (``n<bin>``, ``w<bin>``); anything else is ignored (stored bytes)."""
        evidence = cls()
        for name, value in counts.items():
            if type(value) is not int or value < 0 or name[:1] not in ("n", "w") or not name[1:].isdigit():
                continue
            if int(name[1:]) < BINS:
                (evidence.seen if name[0] == "n" else evidence.wrong)[int(name[1:])] = value
        return evidence

    @property
    def worst(self) -> float | None:
        """The top of the highest bin with a wrong answer (None if none): nothing at or below it is safe."""
        bins = [b for b, w in self.wrong.items() if w > 0]
        return None if not bins else (max(bins) + 1) / BINS

    def at_or_above(self, similarity: float) -> tuple[int, int]:
        """(comparisons, wrong ones) made at ``similarity`` or above."""
        start = bin_of(similarity)
        return (
            sum(n for b, n in self.seen.items() if b >= start),
            sum(w for b, w in self.wrong.items() if b >= start),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a candidate: serve it, or call the model and compare.

    ``eligible``: it would have been served; exploring it samples the error of what is served.
    """

    serve: bool
    eligible: bool
    confidence: float  # posterior probability that the error at this similarity is within bounds


def decide(
    partition: Evidence,
    entry: Evidence,
    similarity: float,
    *,
    max_error: float,
    confidence: float,
    explore_min: float,
    rng: Callable[[], float],
) -> Verdict:
    """Serve, or explore, a candidate at ``similarity``."""
    worst = entry.worst
    if worst is not None and similarity < worst:
        return Verdict(False, False, 0.0)
    # Serve if some threshold at or below this similarity is safe: among the comparisons made
    # at or above it, the error is within bounds with the required confidence. Only thresholds
    # with comparisons between them and this similarity count: evidence from more similar
    # pairs alone says nothing about less similar ones.
    n = k = local = 0
    best, _support = 0.0, 0
    top = bin_of(similarity)
    for b in range(BINS - 1, -1, -1):
        seen = partition.seen.get(b, 0) + entry.seen.get(b, 0)
        n += seen
        k += partition.wrong.get(b, 0) + entry.wrong.get(b, 0)
        if b > top:
            continue
        local += seen
        if not local:
            continue
        sure = prob_error_at_most(max_error, k, n - k)
        if sure > best:
            best, _support = sure, n
        if sure >= confidence:
            break
    if best < confidence:
        return Verdict(False, False, best)
    # Keep exploring where it is safe in proportion to the doubt left: half the candidates
    # when the evidence only just suffices, falling as it mounts, never below explore_min.
    explore = max(explore_min, min(0.5, 0.5 * (1.0 - best) / (1.0 - confidence)))
    return Verdict(rng() >= explore, True, best)


def prob_error_at_most(bound: float, wrong: int, right: int) -> float:
    """P(error rate <= bound) under a Beta(1 + wrong, 1 + right) posterior (uniform prior)."""
    return _incomplete_beta(bound, 1.0 + wrong, 1.0 + right)


def wilson(wrong: int, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """A 95% Wilson interval for an error rate, or None without observations."""
    if total <= 0:
        return None
    p = wrong / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _fraction(x, a, b) / a
    return 1.0 - front * _fraction(1.0 - x, b, a) / b


def _fraction(x: float, a: float, b: float) -> float:
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def observation(similarity: float, same: bool) -> dict[str, int]:
    """The counter increments one comparison adds (see :meth:`Evidence.from_counts`)."""
    b = bin_of(similarity)
    return {f"n{b}": 1, f"w{b}": 0 if same else 1}
