"""What semantic= means (one resolver) and the one check the cache, lookup() and explain share."""

from __future__ import annotations

import pytest

from memollm import Semantic
from memollm.semantic.normal import MAX_CHARS
from memollm.semantic.settings import BOUNDED_FLOOR, SAME_FLOOR, SHADOW_THRESHOLD, check, resolve


def test_true_and_numbers() -> None:
    """True is the recommended cosine with the verifier's own score; a number is the cosine threshold."""
    default = resolve(True)
    assert default is not None and default.mode == "serve" and default.score is not None
    strict = resolve(0.95)
    loose = resolve(0.85)
    assert strict is not None and loose is not None
    assert (strict.threshold, strict.score) == (0.95, default.score)
    assert (loose.threshold, loose.score) == (0.85, default.score)
    assert resolve(0.9) == default  # the recommended cosine is 0.90: the same settings
    assert resolve(None) is None and resolve(False) is None


def test_shadow_bounded_and_verify() -> None:
    """Shadow measures without serving; bounded looks from its floor; verify replaces the rules."""
    shadow = resolve("shadow")
    assert shadow is not None and not shadow.serves and shadow.threshold == SHADOW_THRESHOLD
    bounded = resolve(Semantic(max_error=0.02))
    assert bounded is not None and bounded.mode == "bounded" and bounded.threshold == BOUNDED_FLOOR
    assert bounded.score is None and bounded.rules
    raw = resolve(0.9, False)
    assert raw is not None and not raw.rules and raw.score is None and raw.floor == 0.9
    own = resolve(True, lambda q, c, s: True)
    assert own is not None and own.verify is not None and not own.rules


def test_identical_prompts_are_a_repeat_and_long_ones_never_semantic() -> None:
    """Identical prompts: an exact repeat; over the length limit: never semantic, whatever the score."""
    settings = resolve(True)
    assert settings is not None
    assert check("same", "same", 0.1, settings).served
    long = "why " * (MAX_CHARS // 4 + 1)
    verdict = check(long, long + "?", 0.999, settings)
    assert not verdict.served and verdict.score is None and str(MAX_CHARS) in verdict.reason


@pytest.mark.parametrize("semantic", [True, 0.92, 0.85])
def test_rules_decide_before_the_threshold(semantic: object) -> None:
    """Same questions are served below the threshold; opposites never above it."""
    settings = resolve(semantic)
    assert settings is not None
    same = check("How can I switch Bluetooth on?", "How do I turn Bluetooth on?", SAME_FLOOR + 0.01, settings)
    assert same.served and "same question" in same.reason
    never = check("turn dark mode off", "switch dark mode on", 0.999, settings)
    assert not never.served and "never" in never.reason


def test_an_open_pair_needs_the_threshold_and_the_verifier() -> None:
    """An open pair is served only from the number's cosine, and only when the verifier scores it enough."""
    strict, loose = resolve(0.99), resolve(0.6)
    assert strict is not None and loose is not None
    pair = ("How do I learn Python fast?", "What's the quickest way to learn Python?")
    low = check(*pair, 0.98, strict)
    assert not low.served and "below the threshold 0.99" in low.reason
    verdict = check(*pair, 0.65, loose)
    assert verdict.score is not None and verdict.served is (verdict.score >= 0.95)
    assert "needs 0.95" in verdict.reason
