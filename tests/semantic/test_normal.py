"""The normal form of a prompt: what case, spacing, punctuation and fillers change, and what they never do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memollm.semantic.normal import MAX_CHARS, VERBATIM, normal_form, tokens

SAME = [
    ("What is the capital of Germany?", "what is the capital of germany"),
    ("How do I make an HTTP request in C#?", "how do i make an http request in c#"),
    ("What is 7% of 80?", "Quick question: what is 7% of 80?"),
    ("How long is the flight from Berlin to Rome?", "how long is the flight from berlin to rome please"),
    ("How do I encrypt a file with GPG?", "How do you encrypt a file with GPG?"),
    ("Steps to hide a column in Excel?", "How do I hide a column in Excel?"),
    ("Hi! Can you tell me how to sort a list in Python? Thanks!", "how do i sort a list in python"),
    ("I don't know why", "I do not know why"),
    ("What's a monad?", "what is a monad"),
    ("什么是 Python 的装饰器?", "什么是Python的装饰器？"),
    ("请问什么是装饰器", "什么是装饰器"),
    ("Explain “monads”", 'explain "monads"'),
]
DIFFERENT = [
    ("What does `Foo` return?", "What does `foo` return?"),
    ('What does "Foo" mean?', 'What does "foo" mean?'),
    ("What does os.path do?", "What does OS.PATH do?"),
    ("How do I call getElementById?", "How do I call getelementbyid?"),
    ("Is 5 > 3?", "Is 5 < 3?"),
    ("What is -5 squared?", "What is 5 squared?"),
    ("What is 3.5 + 1?", "What is 35 + 1?"),
    ("What is 1,5 + 1?", "What is 15 + 1?"),
    ("What is (a + b)^2?", "What is a + b^2?"),
    ("Is C++ faster than C?", "Is C faster than C?"),
    ("Explain it briefly", "Explain it"),
    ("你好吗", "你好"),
]


@pytest.mark.parametrize(("a", "b"), SAME, ids=[a for a, _ in SAME])
def test_one_question_one_normal_form(a: str, b: str) -> None:
    """Case, spacing, punctuation, fillers and openers leave the normal form as it is."""
    assert normal_form(a) == normal_form(b) is not None


@pytest.mark.parametrize(("a", "b"), DIFFERENT, ids=[a for a, _ in DIFFERENT])
def test_what_changes_the_question_changes_the_normal_form(a: str, b: str) -> None:
    """Code, quoted strings, identifiers, symbols, numbers and meaningful words are kept as written."""
    assert normal_form(a) != normal_form(b)


def test_verbatim_tokens_are_marked() -> None:
    """Tokens kept as written carry the marker; case-folded words never do."""
    found = tokens("Use `Foo` and os.path, not FOO")
    assert f"{VERBATIM}Foo" in found and f"{VERBATIM}os.path" in found and "foo" in found


def test_nothing_but_fillers_and_too_long_have_no_normal_form() -> None:
    """A prompt of fillers only, or over the length limit, is keyed as it is."""
    assert normal_form("Please!") is None
    assert normal_form("x" * (MAX_CHARS + 1)) is None


@given(st.text(max_size=300))
def test_any_text_has_a_normal_form_or_none(text: str) -> None:
    """Whatever a prompt holds, normalising it never raises."""
    result = normal_form(text)
    assert result is None or isinstance(result, str)


WORDS = st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), min_size=1, max_size=8).map(" ".join)


@given(WORDS)
def test_case_never_matters_in_plain_words(text: str) -> None:
    """Plain words in any case have one normal form."""
    assert normal_form(text.upper()) == normal_form(text) == normal_form(text.title() + "?")


@given(st.integers(-10_000, 10_000), st.integers(-10_000, 10_000))
def test_numbers_always_count(a: int, b: int) -> None:
    """Two questions about different numbers never share a normal form."""
    assert (normal_form(f"What is {a} times 3?") == normal_form(f"what is {b} times 3")) is (a == b)
