"""The error-bounded decision rule on synthetic observations: no I/O, no model."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from memollm.semantic.bounded import Evidence, bin_of, decide, observation, prob_error_at_most, wilson

RULE = {"max_error": 0.02, "confidence": 0.95, "explore_min": 0.01}


def add(evidence: Evidence, similarity: float, same: bool) -> None:
    for name, delta in observation(similarity, same).items():
        target = evidence.seen if name[0] == "n" else evidence.wrong
        target[int(name[1:])] = target.get(int(name[1:]), 0) + delta


def verdict(partition: Evidence, entry: Evidence, similarity: float, draw: float = 0.99) -> tuple[bool, bool]:
    v = decide(partition, entry, similarity, rng=lambda: draw, **RULE)  # type: ignore[arg-type]
    return v.serve, v.eligible


def test_without_evidence_nothing_is_served() -> None:
    """No comparisons yet: every candidate, however similar, is explored."""
    assert verdict(Evidence(), Evidence(), 0.999) == (False, False)


def test_agreeing_comparisons_lead_to_serving() -> None:
    """Once enough comparisons at a similarity agree, candidates there are served."""
    partition, entry = Evidence(), Evidence()
    served_after = None
    for n in range(1, 400):
        add(partition, 0.93, True)
        if verdict(partition, entry, 0.93)[0]:
            served_after = n
            break
    # (1 - 0.02)^n <= 0.05: about 148 agreeing comparisons for 95% confidence in 2%.
    assert served_after is not None
    assert 140 <= served_after <= 160
    assert verdict(partition, entry, 0.95)[0]  # evidence at 0.93 covers higher similarities
    assert not verdict(partition, entry, 0.90)[0]  # but not lower ones


def test_disagreements_stop_serving() -> None:
    """A partition whose comparisons keep disagreeing never gets there; one that starts to does stop."""
    partition = Evidence()
    for i in range(300):
        add(partition, 0.95, i % 10 != 0)  # 10% wrong
    assert not verdict(partition, Evidence(), 0.95)[0]
    good = Evidence()
    for _ in range(400):
        add(good, 0.95, True)
    assert verdict(good, Evidence(), 0.95)[0]
    for _ in range(20):
        add(good, 0.95, False)
    assert not verdict(good, Evidence(), 0.95)[0]


def test_an_entry_found_wrong_is_not_served_below_that_similarity() -> None:
    """One wrong comparison of an entry's own answer stops it being served at or below there."""
    partition = Evidence()
    for _ in range(500):
        add(partition, 0.90, True)
    entry = Evidence()
    add(entry, 0.97, False)
    assert not verdict(partition, entry, 0.95)[0]
    assert not verdict(partition, entry, 0.975)[0]
    assert verdict(partition, Evidence(), 0.95)[0]


def test_exploration_falls_with_evidence_but_not_below_the_minimum() -> None:
    """Safe candidates are still checked: often at first, at least explore_min always."""
    partition = Evidence()
    for _ in range(200):
        add(partition, 0.95, True)
    rng = random.Random(7)
    early = sum(not decide(partition, Evidence(), 0.95, rng=rng.random, **RULE).serve for _ in range(4000))  # type: ignore[arg-type]
    sure = prob_error_at_most(0.02, 0, 200)
    expected = 4000 * 0.5 * (1 - sure) / 0.05
    assert expected * 0.8 < early < expected * 1.2
    for _ in range(20_000):
        add(partition, 0.95, True)
    late = sum(not decide(partition, Evidence(), 0.95, rng=rng.random, **RULE).serve for _ in range(4000))  # type: ignore[arg-type]
    assert 4000 * 0.01 * 0.5 < late < 4000 * 0.01 * 1.6  # the floor: explore_min


@given(b=st.integers(1, 400), x=st.floats(0.001, 0.5))
def test_the_posterior_matches_its_closed_form(b: int, x: float) -> None:
    """With no wrong answers, P(error <= x) is 1 - (1 - x)^(right + 1)."""
    assert math.isclose(prob_error_at_most(x, 0, b - 1), 1 - (1 - x) ** b, rel_tol=1e-9, abs_tol=1e-12)


@given(st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.floats(), st.text(), st.none())))
def test_stored_counters_are_read_defensively(counts: dict[str, object]) -> None:
    """Whatever the stored counters hold, reading them never raises and keeps only sound counts."""
    evidence = Evidence.from_counts(counts)
    assert all(type(v) is int and v >= 0 for v in (*evidence.seen.values(), *evidence.wrong.values()))
    assert all(0 <= b < 100 for b in (*evidence.seen, *evidence.wrong))


def test_wilson_interval_brackets_the_rate() -> None:
    """The reported interval contains the estimate and narrows with observations."""
    assert wilson(0, 0) is None
    low, high = wilson(2, 100)  # type: ignore[misc]
    assert low < 0.02 < high
    narrow = wilson(20, 1000)
    assert narrow is not None and narrow[1] - narrow[0] < high - low
    assert bin_of(0.999) == 99 and bin_of(1.0) == 99 and bin_of(-1) == 0
